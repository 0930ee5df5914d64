//! `gatehouse release list|show|create`: release records on a running server; and
//! `release approve|reject|memo`, the gate commands under the names of the release workflow
//! (the same code as `gate approve|reject|memo`).

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_server::api::{ChangeContextBody, CreateRelease, ReleaseList, ReleaseView};

use crate::client::{ApiClient, ServerArgs};
use crate::output::outln;
use crate::output::{OutputFormat, print_json};

/// Arguments of `gatehouse release`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ReleaseCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReleaseCommand {
    /// List releases, newest first.
    List(ListArgs),
    /// Show one release.
    Show(ShowArgs),
    /// Record a new release.
    Create(CreateArgs),
    /// Approve a step of the approver path (same as `gate approve`).
    Approve(super::gate::DecideArgs),
    /// Reject a step of the approver path, saying why (same as `gate reject`).
    Reject(super::gate::DecideArgs),
    /// The security release memo, `--format md|html`; `--log FILE --tag SEC-PH5` appends a
    /// tagged readiness entry instead (same as `gate memo`).
    Memo(super::gate::MemoArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only releases of this service.
    #[arg(long)]
    pub service: Option<String>,
    /// At most this many releases (1–1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Release id (UUID).
    pub id: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The service being released, e.g. payments.
    #[arg(long)]
    pub service: String,
    /// The version being released, e.g. 2.14.0.
    #[arg(long)]
    pub version: String,
    /// Release class id from the pack, e.g. normal or emergency.
    #[arg(long = "class")]
    pub release_class: String,
    /// Artifact digest (sha256:<64 hex>); repeat for several artifacts.
    #[arg(long = "digest")]
    pub digests: Vec<String>,
    /// Accountable owner: a Team or Person id from the pack.
    #[arg(long)]
    pub owner: String,
    /// What changes and why.
    #[arg(long)]
    pub summary: String,
    /// Ticket reference or URL.
    #[arg(long)]
    pub ticket: Option<String>,
    /// Pull-request reference or URL.
    #[arg(long)]
    pub pull_request: Option<String>,
    /// Target environment.
    #[arg(long, default_value = "production")]
    pub environment: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::runtime::block_on(async move {
        match args.command {
            ReleaseCommand::List(a) => list(a).await,
            ReleaseCommand::Show(a) => show(a).await,
            ReleaseCommand::Create(a) => create(a).await,
            ReleaseCommand::Approve(a) => {
                super::gate::decide(a, gatehouse_core::gate::ApprovalDecision::Approve).await
            }
            ReleaseCommand::Reject(a) => {
                super::gate::decide(a, gatehouse_core::gate::ApprovalDecision::Reject).await
            }
            ReleaseCommand::Memo(a) => super::gate::memo(a).await,
        }
    })?
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let mut path = format!("api/v1/releases?limit={}", args.limit);
    if let Some(service) = &args.service {
        path.push_str("&service=");
        path.push_str(&percent_encode(service));
    }
    let list: ReleaseList = client.get(&path).await.context("cannot list releases")?;
    match args.format {
        OutputFormat::Json => print_json(&list)?,
        OutputFormat::Text => print_table(&list.releases),
    }
    Ok(super::EXIT_OK)
}

async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let release: ReleaseView = client
        .get(&format!("api/v1/releases/{}", percent_encode(&args.id)))
        .await
        .with_context(|| format!("cannot show release {}", args.id))?;
    match args.format {
        OutputFormat::Json => print_json(&release)?,
        OutputFormat::Text => print_release(&release),
    }
    Ok(super::EXIT_OK)
}

async fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let body = CreateRelease {
        service: args.service,
        version: args.version,
        release_class: args.release_class,
        artifact_digests: args.digests,
        owner: args.owner,
        change: ChangeContextBody {
            summary: args.summary,
            ticket: args.ticket,
            pull_request: args.pull_request,
        },
        target_environment: args.environment,
    };
    let release: ReleaseView = client
        .post("api/v1/releases", &body)
        .await
        .context("cannot create the release")?;
    match args.format {
        OutputFormat::Json => print_json(&release)?,
        OutputFormat::Text => {
            outln!("created release {}", release.id);
            print_release(&release);
        }
    }
    Ok(super::EXIT_OK)
}

fn print_table(releases: &[ReleaseView]) {
    if releases.is_empty() {
        outln!("no releases");
        return;
    }
    let rows: Vec<[String; 7]> = releases
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.service.clone(),
                r.version.clone(),
                r.release_class.clone(),
                r.target_environment.clone(),
                r.submitter.clone(),
                r.created_at.to_string(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "SERVICE",
        "VERSION",
        "CLASS",
        "ENVIRONMENT",
        "SUBMITTER",
        "CREATED",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row.iter()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths.iter())
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        outln!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn print_release(r: &ReleaseView) {
    outln!("id:          {}", r.id);
    outln!("service:     {}", r.service);
    outln!("version:     {}", r.version);
    outln!("class:       {}", r.release_class);
    outln!("owner:       {}", r.owner);
    outln!("environment: {}", r.target_environment);
    outln!("submitter:   {}", r.submitter);
    outln!("created:     {}", r.created_at);
    outln!("summary:     {}", r.change.summary);
    if let Some(ticket) = &r.change.ticket {
        outln!("ticket:      {ticket}");
    }
    if let Some(pr) = &r.change.pull_request {
        outln!("pull request: {pr}");
    }
    if r.artifact_digests.is_empty() {
        outln!("artifacts:   none");
    } else {
        outln!("artifacts:");
        for digest in &r.artifact_digests {
            outln!("  {digest}");
        }
    }
}

/// Percent-encodes a query or path value (everything but unreserved characters).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(percent_encode("pay-ments_1.0~x"), "pay-ments_1.0~x");
        assert_eq!(percent_encode("a b&c/d"), "a%20b%26c%2Fd");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
