//! `gatehouse pack status|reload`: the pack a running server is enforcing.

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_server::api::{PackStatus, ReloadResult};
use reqwest::Method;

use crate::client::{ApiClient, ServerArgs, describe_failure};
use crate::output::outln;
use crate::output::{OutputFormat, print_json};

/// Arguments of `gatehouse pack`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: PackCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PackCommand {
    /// Show the digest, size and load time of the pack the server enforces.
    Status(CommonArgs),
    /// Ask the server to reload its pack folder; exit 1 (old pack kept) when it has errors.
    Reload(CommonArgs),
}

#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::runtime::block_on(async move {
        match args.command {
            PackCommand::Status(a) => status(a).await,
            PackCommand::Reload(a) => reload(a).await,
        }
    })?
}

async fn status(args: CommonArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let status: PackStatus = client
        .get("api/v1/pack")
        .await
        .context("cannot read the pack status")?;
    match args.format {
        OutputFormat::Json => print_json(&status)?,
        OutputFormat::Text => print_status(&status),
    }
    Ok(super::EXIT_OK)
}

async fn reload(args: CommonArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let (status, body) = client
        .send_raw::<()>(Method::POST, "api/v1/pack/reload", None)
        .await
        .context("cannot reload the pack")?;
    // 422 and 503 carry a ReloadResult explaining why the old pack was kept.
    let result: ReloadResult = match serde_json::from_slice(&body) {
        Ok(result) if status.is_success() || status.as_u16() == 422 || status.as_u16() == 503 => {
            result
        }
        _ => anyhow::bail!(
            "cannot reload the pack: {}",
            describe_failure(status, &body)
        ),
    };
    match args.format {
        OutputFormat::Json => print_json(&result)?,
        OutputFormat::Text => {
            if result.outcome == "swapped" {
                outln!(
                    "reloaded: now serving {} (was {})",
                    result.pack.digest,
                    result.previous_digest
                );
            } else {
                outln!(
                    "rejected: {}",
                    result
                        .reason
                        .as_deref()
                        .unwrap_or("the new pack was refused")
                );
                if let Some(diagnostics) = &result.diagnostics {
                    print_diagnostics(diagnostics);
                }
            }
            print_status(&result.pack);
        }
    }
    Ok(if result.outcome == "swapped" {
        super::EXIT_OK
    } else {
        super::EXIT_FINDINGS
    })
}

fn print_status(status: &PackStatus) {
    outln!("digest:    {}", status.digest);
    outln!("documents: {}", status.document_count);
    outln!("loaded at: {}", status.loaded_at);
    outln!("source:    {}", status.source);
}

/// One line per finding of `gatehouse_pack::render::json` output: `file:line:col: severity[code]: message`.
fn print_diagnostics(report: &serde_json::Value) {
    let Some(items) = report.get("diagnostics").and_then(|d| d.as_array()) else {
        return;
    };
    for item in items {
        let text = |key: &str| item.get(key).and_then(|v| v.as_str()).unwrap_or("");
        let number = |key: &str| item.get(key).and_then(serde_json::Value::as_u64);
        let mut location = text("file").to_owned();
        if let Some(line) = number("line") {
            location.push_str(&format!(":{line}"));
            if let Some(column) = number("column") {
                location.push_str(&format!(":{column}"));
            }
        }
        outln!(
            "  {location}: {}[{}]: {}",
            text("severity"),
            text("code"),
            text("message")
        );
    }
}
