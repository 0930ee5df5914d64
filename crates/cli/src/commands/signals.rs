//! `gatehouse signals list`: the signals Sigma rules raised over ingested events.

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_server::routes::events::SignalList;

use crate::client::{ApiClient, ServerArgs};
use crate::output::{OutputFormat, print_json};

/// Arguments of `gatehouse signals`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SignalsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SignalsCommand {
    /// List signals, oldest first (page with --after).
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only signals of this Sigma rule id.
    #[arg(long = "rule")]
    pub rule_id: Option<String>,
    /// Only signals with a larger id (the `next_after` of the previous page).
    #[arg(long, default_value_t = 0)]
    pub after: i64,
    /// At most this many signals (1–1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::runtime::block_on(async move {
        match args.command {
            SignalsCommand::List(a) => list(a).await,
        }
    })?
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let mut path = format!("api/v1/signals?limit={}&after={}", args.limit, args.after);
    if let Some(rule) = &args.rule_id {
        path.push_str("&rule_id=");
        path.push_str(&encode(rule));
    }
    let list: SignalList = client.get(&path).await.context("cannot list signals")?;
    match args.format {
        OutputFormat::Json => print_json(&list)?,
        OutputFormat::Text => print_table(&list),
    }
    Ok(super::EXIT_OK)
}

fn print_table(list: &SignalList) {
    if list.signals.is_empty() {
        println!("no signals");
        return;
    }
    println!(
        "{:<8} {:<20} {:<13} {:<38} {:<10} MATCHED",
        "ID", "CREATED", "SEVERITY", "RULE", "EVENT"
    );
    for s in &list.signals {
        let fields: Vec<String> = s
            .signal
            .matched_fields
            .iter()
            .map(|f| format!("{}={}", f.field, f.value))
            .collect();
        println!(
            "{:<8} {:<20} {:<13} {:<38} {:<10} {}",
            s.id,
            s.signal.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            s.signal.severity.as_str(),
            s.signal.rule_id,
            s.signal.event_id,
            fields.join(" ")
        );
        println!("{:<8} {}", "", s.signal.rule_title);
    }
    if let Some(next) = list.next_after {
        println!("(next page: --after {next})");
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
