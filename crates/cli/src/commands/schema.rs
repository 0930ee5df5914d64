//! `gatehouse schema`: the JSON Schema of pack documents, generated from the Rust types, so
//! editors can validate and complete pack files.

use std::process::ExitCode;

/// Arguments of `gatehouse schema`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    crate::output::print_json(&gatehouse_pack::json_schema())?;
    Ok(super::EXIT_OK)
}
