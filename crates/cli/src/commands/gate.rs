//! `gatehouse gate …`: the release gate from a pipeline or a terminal — `check` (the CI step:
//! exit 0 pass, 1 blocked, 3 pending, 2 error), `approve`/`reject`, `except`, `bypass` and
//! `memo`. Every command talks to a running `gatehouse serve`; the verdict is computed there,
//! with the pack in force and the server's clock, and rendered here with the same core
//! renderers the server uses.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use gatehouse_core::gate::render::{markdown_summary, text_summary};
use gatehouse_core::gate::{
    ApprovalDecision, ExceptionScope, FindingScope, GateDecision, GateVerdict,
};
use gatehouse_server::routes::gate::{ApprovalBody, BypassBody, ExceptionBody, GateReceipt};
use jiff::{SignedDuration, Timestamp};

use crate::client::{ApiClient, ServerArgs};

/// How often `gate check --wait` asks again while the verdict is pending.
const POLL_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: GateCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum GateCommand {
    /// The gate's verdict for a release. Exit status: 0 pass, 1 blocked, 3 pending, 2 error.
    /// Writes a Markdown summary to $GITHUB_STEP_SUMMARY when that variable is set.
    Check(CheckArgs),
    /// Approve a step of the release class's approver path (or a risk escalation).
    Approve(DecideArgs),
    /// Reject a step of the approver path (a comment saying why is required).
    Reject(DecideArgs),
    /// Record an exception (you are its approver) for a finding, requirement or evidence kind.
    Except(ExceptArgs),
    /// Release despite the gate: needs the gate.bypass permission; recorded and counted.
    Bypass(BypassArgs),
    /// The security release memo (Markdown or HTML), optionally appended to a readiness log.
    Memo(MemoArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Release id (UUID).
    pub release: String,
    /// Keep asking while the verdict is pending, up to this long (e.g. 10m, 30s, 1h).
    #[arg(long, value_parser = parse_wait)]
    pub wait: Option<Duration>,
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// Release id (UUID).
    pub release: String,
    /// Step of the approver path, 1-based as shown in the verdict (1 = first step).
    #[arg(long, conflicts_with = "risk", required_unless_present = "risk")]
    pub step: Option<usize>,
    /// Accept the escalation of this risk instead of approving a step.
    #[arg(long)]
    pub risk: Option<String>,
    #[arg(long, default_value = "")]
    pub comment: String,
    /// The revision you reviewed (from `gate check`); defaults to the current one, which is
    /// printed so you can see what you approved.
    #[arg(long)]
    pub revision: Option<u64>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExceptArgs {
    /// Release id (UUID).
    pub release: String,
    /// Except all results of this SARIF rule.
    #[arg(long, group = "scope")]
    pub sarif_rule: Option<String>,
    /// Except this vulnerability (CVE, GHSA, … id).
    #[arg(long, group = "scope")]
    pub vulnerability: Option<String>,
    /// Except this security requirement of the class.
    #[arg(long, group = "scope")]
    pub requirement: Option<String>,
    /// Except this required evidence kind of the class.
    #[arg(long, group = "scope")]
    pub evidence_kind: Option<String>,
    #[arg(long)]
    pub justification: String,
    /// A compensating control (repeatable).
    #[arg(long = "control")]
    pub controls: Vec<String>,
    /// The role you approve in (must approve the release class).
    #[arg(long)]
    pub role: String,
    /// How long the exception lasts (e.g. 30d); every exception expires.
    #[arg(long, value_parser = parse_wait)]
    pub expires_in: Duration,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct BypassArgs {
    /// Release id (UUID).
    pub release: String,
    /// Why the gate is bypassed (at least 10 characters); kept with the release.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MemoFormat {
    Md,
    Html,
}

#[derive(Debug, clap::Args)]
pub struct MemoArgs {
    /// Release id (UUID).
    pub release: String,
    #[arg(long, value_enum, default_value_t = MemoFormat::Md)]
    pub format: MemoFormat,
    /// Append a tagged readiness entry to this log (a Test_Result_Analysis.md-style file)
    /// instead of printing the memo.
    #[arg(long, requires = "tag")]
    pub log: Option<PathBuf>,
    /// Tag of the readiness entry, e.g. SEC-PH5.
    #[arg(long, requires = "log")]
    pub tag: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Parses `30s`, `10m`, `2h`, `7d` (a whole number and a unit).
fn parse_wait(input: &str) -> Result<Duration, String> {
    let input = input.trim();
    let split = input
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{input:?} needs a unit: s, m, h or d (e.g. 10m)"))?;
    let (amount, unit) = input.split_at(split);
    let amount: u64 = amount
        .parse()
        .map_err(|_| format!("{input:?} must start with a whole number (e.g. 10m)"))?;
    let seconds = match unit {
        "s" => Some(amount),
        "m" => amount.checked_mul(60),
        "h" => amount.checked_mul(3600),
        "d" => amount.checked_mul(86_400),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {input:?}; use s, m, h or d"
            ));
        }
    };
    seconds
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{input:?} is too long"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::runtime::block_on(async move {
        match args.command {
            GateCommand::Check(a) => check(a).await,
            GateCommand::Approve(a) => decide(a, ApprovalDecision::Approve).await,
            GateCommand::Reject(a) => decide(a, ApprovalDecision::Reject).await,
            GateCommand::Except(a) => except(a).await,
            GateCommand::Bypass(a) => bypass(a).await,
            GateCommand::Memo(a) => memo(a).await,
        }
    })?
}

fn release_path(release: &str, rest: &str) -> anyhow::Result<String> {
    // The id goes into a URL path: refuse anything that is not a plain id rather than escape.
    if release.is_empty()
        || !release
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!("{release:?} is not a release id (a UUID like 0195f0c2-…)");
    }
    Ok(format!("api/v1/releases/{release}/{rest}"))
}

async fn verdict(client: &ApiClient, release: &str) -> anyhow::Result<GateVerdict> {
    client
        .get(&release_path(release, "verdict")?)
        .await
        .with_context(|| format!("cannot get the gate verdict of release {release}"))
}

async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let started = Instant::now();
    let verdict = loop {
        let verdict = verdict(&client, &args.release).await?;
        let waited = started.elapsed();
        match args.wait {
            Some(limit) if verdict.decision == GateDecision::Pending && waited < limit => {
                eprintln!(
                    "gate pending for release {} (revision {}); asking again in {}s",
                    args.release,
                    verdict.revision,
                    POLL_INTERVAL.as_secs()
                );
                tokio::time::sleep(POLL_INTERVAL.min(limit - waited)).await;
            }
            _ => break verdict,
        }
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        CheckFormat::Text => out.write_all(text_summary(&verdict).as_bytes())?,
        CheckFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &verdict)?;
            out.write_all(b"\n")?;
        }
        CheckFormat::Markdown => out.write_all(markdown_summary(&verdict).as_bytes())?,
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "cannot open $GITHUB_STEP_SUMMARY ({})",
                    PathBuf::from(&path).display()
                )
            })?;
        file.write_all(markdown_summary(&verdict).as_bytes())
            .context("cannot write the step summary")?;
    }
    Ok(ExitCode::from(verdict.exit_code()))
}

async fn decide(args: DecideArgs, decision: ApprovalDecision) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let seen_revision = match args.revision {
        Some(r) => r,
        None => {
            let current = verdict(&client, &args.release).await?;
            eprintln!(
                "deciding on revision {} of release {} (gate: {})",
                current.revision,
                args.release,
                current.decision.as_str()
            );
            current.revision
        }
    };
    let step = match args.step {
        Some(0) => bail!("--step is 1-based: the first step of the approver path is 1"),
        Some(n) => Some(n - 1),
        None => None,
    };
    let body = ApprovalBody {
        step,
        risk: args.risk,
        decision,
        comment: args.comment,
        seen_revision,
    };
    let receipt: GateReceipt = client
        .post(&release_path(&args.release, "approvals")?, &body)
        .await?;
    println!(
        "{} recorded as {} at revision {}",
        decision.as_str(),
        receipt.id,
        receipt.revision
    );
    Ok(super::EXIT_OK)
}

async fn except(args: ExceptArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let scope = if let Some(rule_id) = args.sarif_rule {
        ExceptionScope::Finding {
            finding: FindingScope::SarifRule { rule_id },
        }
    } else if let Some(id) = args.vulnerability {
        ExceptionScope::Finding {
            finding: FindingScope::Vulnerability { id },
        }
    } else if let Some(id) = args.requirement {
        ExceptionScope::Requirement { id }
    } else if let Some(kind) = args.evidence_kind {
        ExceptionScope::Evidence { kind }
    } else {
        bail!(
            "say what is excepted: --sarif-rule, --vulnerability, --requirement or --evidence-kind"
        );
    };
    let lasts = SignedDuration::try_from(args.expires_in).context("--expires-in is too long")?;
    let expires_at = Timestamp::now()
        .checked_add(lasts)
        .context("--expires-in is too long")?;
    let body = ExceptionBody {
        scope,
        justification: args.justification,
        compensating_controls: args.controls,
        approver_role: args.role,
        expires_at,
    };
    let receipt: GateReceipt = client
        .post(&release_path(&args.release, "exceptions")?, &body)
        .await?;
    println!(
        "exception {} recorded at revision {}, expires {expires_at}",
        receipt.id, receipt.revision
    );
    Ok(super::EXIT_OK)
}

async fn bypass(args: BypassArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let receipt: GateReceipt = client
        .post(
            &release_path(&args.release, "bypass")?,
            &BypassBody {
                reason: args.reason,
            },
        )
        .await?;
    println!(
        "gate bypass {} recorded at revision {}",
        receipt.id, receipt.revision
    );
    Ok(super::EXIT_OK)
}

async fn memo(args: MemoArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let query = match (&args.log, &args.tag) {
        (Some(_), Some(tag)) => {
            if !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                bail!("--tag {tag:?} may hold only letters, digits, '-', '_' and '.'");
            }
            format!("memo?log_tag={tag}")
        }
        _ => match args.format {
            MemoFormat::Md => "memo?format=md".to_owned(),
            MemoFormat::Html => "memo?format=html".to_owned(),
        },
    };
    let (status, body) = client
        .send_raw::<()>(
            reqwest::Method::GET,
            &release_path(&args.release, &query)?,
            None,
        )
        .await?;
    if !status.is_success() {
        bail!(crate::client::describe_failure(status, &body));
    }
    match args.log {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open the log {}", path.display()))?;
            file.write_all(&body)
                .with_context(|| format!("cannot append to {}", path.display()))?;
            println!("readiness entry appended to {}", path.display());
        }
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(super::EXIT_OK)
}

/// Options of `gatehouse serve` for the release gate.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeGateArgs {
    /// Largest evidence upload in bytes; larger uploads are refused naming this limit.
    #[arg(
        long,
        env = "GATEHOUSE_MAX_EVIDENCE_BYTES",
        default_value_t = gatehouse_server::routes::gate::DEFAULT_MAX_EVIDENCE_BYTES
    )]
    pub max_evidence_bytes: u64,
}

/// Opens the gate store over the database `config` names (already migrated by the control
/// plane store) and attaches the release gate to the server.
pub async fn attach_to_server(
    state: &gatehouse_server::AppState,
    config: &gatehouse_store::StoreConfig,
    args: &ServeGateArgs,
) -> anyhow::Result<()> {
    let store = gatehouse_store::SqlGateStore::connect(config)
        .await
        .with_context(|| format!("cannot open the release gate store ({})", config.describe()))?;
    state.attach_gate(std::sync::Arc::new(
        gatehouse_server::routes::gate::Gate::new(
            std::sync::Arc::new(store),
            args.max_evidence_bytes,
        ),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_durations_parse_with_units() {
        assert_eq!(parse_wait("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_wait("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_wait("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_wait("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_wait("10").unwrap_err().contains("unit"));
        assert!(parse_wait("5w").unwrap_err().contains("unknown unit"));
        assert!(parse_wait("m").is_err());
    }

    #[test]
    fn release_ids_with_path_characters_are_refused() {
        assert!(release_path("../audit", "verdict").is_err());
        assert!(release_path("", "verdict").is_err());
        assert_eq!(
            release_path("0195f0c2-aaaa", "verdict").unwrap(),
            "api/v1/releases/0195f0c2-aaaa/verdict"
        );
    }
}
