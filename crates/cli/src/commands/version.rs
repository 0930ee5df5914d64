//! `gatehouse version`: the binary's version, for bug reports and CI logs.

use std::process::ExitCode;

use crate::output::{OutputFormat, outln, print_json};

/// Arguments of `gatehouse version`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    match args.format {
        OutputFormat::Text => outln!("gatehouse {version}"),
        OutputFormat::Json => print_json(&serde_json::json!({ "version": version }))?,
    }
    Ok(super::EXIT_OK)
}
