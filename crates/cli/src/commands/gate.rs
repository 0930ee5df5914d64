//! `gatehouse gate …`: the release gate from a pipeline or a terminal — `check` (the CI step:
//! exit 0 pass, 1 blocked, 3 pending, 2 error), `approve`/`reject`, `except`, `requirement`,
//! `risk`, `bypass`, `memo` and `metrics`. `gatehouse release approve|reject|memo` are the same
//! commands under the names the release workflow uses. Every command talks to a running `gatehouse serve`; the verdict is computed there,
//! with the pack in force and the server's clock, and rendered here with the same core
//! renderers the server uses.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use gatehouse_core::gate::RiskStatus;
use gatehouse_core::gate::render::{markdown_summary, text_summary};
use gatehouse_core::gate::{
    ApprovalDecision, ExceptionScope, FindingScope, GateDecision, GateVerdict,
};
use gatehouse_server::routes::gate::{
    ApprovalBody, BypassBody, ExceptionBody, GateReceipt, RequirementBody, RiskBody,
};
use gatehouse_server::routes::gate_metrics::GateMetricsReport;
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
    /// Record where a security requirement of the class stands: complete (with evidence),
    /// deferred (you approve, in a role, until a due date) or excepted.
    Requirement(RequirementArgs),
    /// Add a risk to the release's risk register (or a new version of one with --id).
    Risk(RiskArgs),
    /// Gate metrics for a period: bypasses, emergency releases, evidence completeness,
    /// review latency p50/p90, overdue retrospectives.
    Metrics(MetricsArgs),
}

#[derive(Debug, clap::Args)]
pub struct RequirementArgs {
    /// Release id (UUID).
    pub release: String,
    /// Security requirement id of the release class, e.g. SR-ENC-1.
    pub requirement: String,
    /// The requirement is done; --evidence names what shows it.
    #[arg(long, group = "status", requires = "evidence")]
    pub complete: bool,
    /// Evidence showing it (an item id such as ev-1, or the sha256 of an attached file);
    /// repeatable.
    #[arg(long)]
    pub evidence: Vec<String>,
    /// Not done yet: you accept finishing it by --due, in --approver-role.
    #[arg(long, group = "status", requires_all = ["due", "approver_role"])]
    pub defer: bool,
    /// Due date of a deferral (YYYY-MM-DD, end of that day UTC, or an RFC 3339 time).
    #[arg(long)]
    pub due: Option<String>,
    /// The role you approve the deferral in (must approve the release class).
    #[arg(long)]
    pub approver_role: Option<String>,
    /// Not done; this exception (e.g. ex-1) accepts that.
    #[arg(long, group = "status")]
    pub excepted_by: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RiskStatusArg {
    Open,
    Mitigated,
    Closed,
}

#[derive(Debug, clap::Args)]
pub struct RiskArgs {
    /// Release id (UUID).
    pub release: String,
    #[arg(long)]
    pub title: String,
    /// Likelihood on the pack's RiskModel scale.
    #[arg(long)]
    pub likelihood: u32,
    /// Impact on the pack's RiskModel scale.
    #[arg(long)]
    pub impact: u32,
    /// Who owns the risk (a Person or Team id).
    #[arg(long)]
    pub owner: String,
    #[arg(long, value_enum, default_value_t = RiskStatusArg::Open)]
    pub status: RiskStatusArg,
    /// Id of an existing risk this is a new version of (e.g. rk-1).
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricsFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// The period ends now and starts this long ago (e.g. 30d, 12h).
    #[arg(long, value_parser = parse_wait, conflicts_with_all = ["from", "to"])]
    pub since: Option<Duration>,
    /// Start of the period (YYYY-MM-DD or RFC 3339); default: 30 days before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the period (YYYY-MM-DD or RFC 3339, exclusive); default: now.
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, value_enum, default_value_t = MetricsFormat::Text)]
    pub format: MetricsFormat,
    #[command(flatten)]
    pub server: ServerArgs,
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
            GateCommand::Requirement(a) => requirement(a).await,
            GateCommand::Risk(a) => risk(a).await,
            GateCommand::Metrics(a) => metrics(a).await,
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

pub(crate) async fn decide(
    args: DecideArgs,
    decision: ApprovalDecision,
) -> anyhow::Result<ExitCode> {
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

pub(crate) async fn memo(args: MemoArgs) -> anyhow::Result<ExitCode> {
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
            append_to_log(&path, &body)?;
            println!("readiness entry appended to {}", path.display());
        }
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(super::EXIT_OK)
}

/// First lines of a readiness log that did not exist yet.
const LOG_HEADER: &str = "# Test Result Analysis\n\n\
Release readiness entries appended by `gatehouse release memo --log`, newest last. Each entry \
is tagged (e.g. [SEC-PH5]); earlier entries are never rewritten.\n";

/// Appends `entry` to the readiness log at `path`: creates it with [`LOG_HEADER`] when absent,
/// and only ever appends (a missing final newline is completed first so the entry starts on a
/// line of its own), so existing lines are never rewritten.
fn append_to_log(path: &std::path::Path, entry: &[u8]) -> anyhow::Result<()> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read the log {}", path.display()))?
        .len();
    let mut prefix = Vec::new();
    if len == 0 {
        prefix.extend_from_slice(LOG_HEADER.as_bytes());
    } else {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))
            .and_then(|_| file.read_exact(&mut last))
            .with_context(|| format!("cannot read the log {}", path.display()))?;
        if last[0] != b'\n' {
            prefix.push(b'\n');
        }
    }
    prefix.extend_from_slice(entry);
    file.write_all(&prefix)
        .with_context(|| format!("cannot append to {}", path.display()))
}

/// Parses `YYYY-MM-DD` (the end of that day, UTC, when `end_of_day`; else its start) or an
/// RFC 3339 timestamp.
fn parse_time(flag: &str, input: &str, end_of_day: bool) -> anyhow::Result<Timestamp> {
    if let Ok(ts) = input.parse::<Timestamp>() {
        return Ok(ts);
    }
    let date: jiff::civil::Date = input.parse().with_context(|| {
        format!("{flag} {input:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time")
    })?;
    let time = if end_of_day { "23:59:59" } else { "00:00:00" };
    format!("{date}T{time}Z")
        .parse()
        .with_context(|| format!("{flag} {input:?} is out of range"))
}

async fn requirement(args: RequirementArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let body = if args.complete {
        RequirementBody::Complete {
            evidence: args.evidence,
        }
    } else if args.defer {
        let (Some(due), Some(role)) = (args.due, args.approver_role) else {
            bail!("--defer needs --due and --approver-role");
        };
        RequirementBody::Deferred {
            role,
            due: parse_time("--due", &due, true)?,
        }
    } else if let Some(exception) = args.excepted_by {
        RequirementBody::Excepted { exception }
    } else {
        bail!("say where the requirement stands: --complete, --defer or --excepted-by");
    };
    if args.requirement.is_empty()
        || !args
            .requirement
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!(
            "{:?} is not a requirement id (letters, digits, '-', '_', '.')",
            args.requirement
        );
    }
    let receipt: GateReceipt = client
        .post(
            &release_path(&args.release, &format!("requirements/{}", args.requirement))?,
            &body,
        )
        .await?;
    println!(
        "requirement {} recorded at revision {}",
        receipt.id, receipt.revision
    );
    Ok(super::EXIT_OK)
}

async fn risk(args: RiskArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let body = RiskBody {
        id: args.id,
        title: args.title,
        likelihood: args.likelihood,
        impact: args.impact,
        status: match args.status {
            RiskStatusArg::Open => RiskStatus::Open,
            RiskStatusArg::Mitigated => RiskStatus::Mitigated,
            RiskStatusArg::Closed => RiskStatus::Closed,
        },
        owner: args.owner,
    };
    let receipt: GateReceipt = client
        .post(&release_path(&args.release, "risks")?, &body)
        .await?;
    println!(
        "risk {} recorded at revision {}",
        receipt.id, receipt.revision
    );
    Ok(super::EXIT_OK)
}

async fn metrics(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let (from, to) = match args.since {
        Some(since) => {
            let to = Timestamp::now();
            let span = SignedDuration::try_from(since).context("--since is too long")?;
            (
                Some(to.checked_sub(span).context("--since is too long")?),
                Some(to),
            )
        }
        None => (
            args.from
                .as_deref()
                .map(|f| parse_time("--from", f, false))
                .transpose()?,
            args.to
                .as_deref()
                .map(|t| parse_time("--to", t, false))
                .transpose()?,
        ),
    };
    let mut query = Vec::new();
    if let Some(from) = from {
        query.push(format!("from={from}"));
    }
    if let Some(to) = to {
        query.push(format!("to={to}"));
    }
    let path = if query.is_empty() {
        "api/v1/metrics/gate".to_owned()
    } else {
        format!("api/v1/metrics/gate?{}", query.join("&"))
    };
    let report: GateMetricsReport = client
        .get(&path)
        .await
        .context("cannot get the gate metrics")?;
    let mut out = std::io::stdout().lock();
    match args.format {
        MetricsFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.write_all(b"\n")?;
        }
        MetricsFormat::Text => out.write_all(metrics_text(&report).as_bytes())?,
    }
    Ok(super::EXIT_OK)
}

/// The metrics report for a terminal.
fn metrics_text(report: &GateMetricsReport) -> String {
    use std::fmt::Write as _;
    let m = &report.metrics;
    let seconds = |s: Option<i64>| {
        s.map_or_else(
            || "n/a (no decided release)".to_owned(),
            |s| format!("{}", SignedDuration::from_secs(s)),
        )
    };
    let mut out = String::new();
    let _ = writeln!(out, "gate metrics {} → {}", m.period.start, m.period.end);
    let _ = writeln!(out, "  releases submitted:        {}", m.releases);
    let _ = writeln!(out, "  gate bypasses:             {}", m.gate_bypasses);
    let _ = writeln!(out, "  emergency releases:        {}", m.emergency_releases);
    let _ = writeln!(
        out,
        "  evidence completeness:     {}",
        m.evidence_completeness_percent.map_or_else(
            || "n/a (no evidence required)".to_owned(),
            |p| format!(
                "{p:.1}% ({} of {})",
                m.evidence_present, m.evidence_required
            )
        )
    );
    let _ = writeln!(out, "  decided releases:          {}", m.decided_releases);
    let _ = writeln!(
        out,
        "  review latency p50 / p90:  {} / {}",
        seconds(m.review_latency_p50_seconds),
        seconds(m.review_latency_p90_seconds)
    );
    let _ = writeln!(
        out,
        "  overdue retrospectives:    {}",
        m.overdue_retrospectives.len()
    );
    for overdue in &m.overdue_retrospectives {
        let _ = writeln!(
            out,
            "    {} ({}) due {}{}",
            overdue.release,
            overdue.service,
            overdue.due,
            overdue
                .completed_at
                .map_or_else(String::new, |at| format!(", done late at {at}"))
        );
    }
    if !m.releases_without_class.is_empty() {
        let _ = writeln!(
            out,
            "  releases whose class the pack no longer defines: {}",
            m.releases_without_class.join(", ")
        );
    }
    if !report.complete {
        let _ = writeln!(
            out,
            "  note: computed over the newest {} releases only",
            report.releases_scanned
        );
    }
    out
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
    fn readiness_log_is_created_with_a_header_and_only_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("Test_Result_Analysis.md");
        append_to_log(&log, b"\n## [SEC-PH5] first\n").unwrap();
        let first = std::fs::read_to_string(&log).unwrap();
        assert!(first.starts_with("# Test Result Analysis\n"), "{first}");
        assert!(first.ends_with("## [SEC-PH5] first\n"));
        // An existing log without a final newline: its lines stay as they are.
        std::fs::write(&log, "# Mine\nkept line").unwrap();
        append_to_log(&log, b"## [SEC-PH5] second\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "# Mine\nkept line\n## [SEC-PH5] second\n"
        );
    }

    #[test]
    fn dates_parse_as_day_bounds_or_timestamps() {
        assert_eq!(
            parse_time("--due", "2026-12-01", true).unwrap().to_string(),
            "2026-12-01T23:59:59Z"
        );
        assert_eq!(
            parse_time("--from", "2026-12-01", false)
                .unwrap()
                .to_string(),
            "2026-12-01T00:00:00Z"
        );
        assert_eq!(
            parse_time("--to", "2026-12-01T10:00:00Z", false)
                .unwrap()
                .to_string(),
            "2026-12-01T10:00:00Z"
        );
        assert!(parse_time("--due", "next week", true).is_err());
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
