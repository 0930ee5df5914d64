//! `gatehouse version`: the binary's version, for bug reports and CI logs.

use std::process::ExitCode;

/// Arguments of `gatehouse version`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    println!("gatehouse {}", env!("CARGO_PKG_VERSION"));
    Ok(super::EXIT_OK)
}
