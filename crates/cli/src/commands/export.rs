//! `gatehouse export …`: renders documents from the policy pack for people and tools outside
//! gatehouse: the SABSA Layer 6 document (`sabsa-l6`), the improvement backlog as an OSCAL
//! POA&M (`oscal-poam`) and the KPI targets as an OSCAL assessment plan (`oscal-ap`).
//!
//! Output goes to standard output (or `--output`), so `export … | gatehouse validate … -`
//! works; the SABSA column coverage report goes to standard error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_sabsa::export::{choose_policy, export, to_html, to_json, to_markdown};
use gatehouse_sabsa::{oscal, serde_json};

/// Arguments of `gatehouse export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub kind: Kind,
}

/// What to export.
#[derive(Debug, clap::Subcommand)]
pub enum Kind {
    /// The SABSA Layer 6 (Operational) document, rendered from the pack.
    #[command(name = "sabsa-l6")]
    SabsaL6(SabsaL6Args),
    /// The improvement backlog as an OSCAL plan of action and milestones (JSON).
    #[command(name = "oscal-poam")]
    OscalPoam(OscalArgs),
    /// The KPI targets as an OSCAL assessment plan (JSON).
    #[command(name = "oscal-ap")]
    OscalAp(OscalApArgs),
}

#[derive(Debug, clap::Args)]
pub struct OscalArgs {
    #[command(flatten)]
    pub pack: PackArgs,
    /// The policy the documents belong to; default: the only policy the pack's traces name.
    #[arg(long)]
    pub policy: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct OscalApArgs {
    #[command(flatten)]
    pub oscal: OscalArgs,
    /// `import-ssp` reference to the system security plan; `#` when there is none.
    #[arg(long, default_value = "#")]
    pub ssp: String,
}

/// Where the pack is; shared by the pack-reading SABSA commands.
#[derive(Debug, Clone, clap::Args)]
pub struct PackArgs {
    /// The policy pack folder.
    #[arg(long, value_name = "DIR", default_value = "gatehouse")]
    pub pack: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SabsaL6Args {
    #[command(flatten)]
    pub pack: PackArgs,
    /// The policy the layer belongs to (`POL-2026-001`); default: the only policy the pack's
    /// traces name.
    #[arg(long)]
    pub policy: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Json,
    Md,
    Html,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.kind {
        Kind::SabsaL6(args) => sabsa_l6(args),
        Kind::OscalPoam(args) => oscal_poam(args),
        Kind::OscalAp(args) => oscal_ap(args),
    }
}

fn oscal_poam(args: OscalArgs) -> anyhow::Result<ExitCode> {
    let pack = load_pack(&args.pack.pack)?;
    let policy = choose_policy(&pack, args.policy.as_deref())?;
    let document = oscal::poam(&pack, &policy, oscal::Timestamp::now())?;
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    emit(&text, args.output.as_deref())?;
    Ok(super::EXIT_OK)
}

fn oscal_ap(args: OscalApArgs) -> anyhow::Result<ExitCode> {
    let pack = load_pack(&args.oscal.pack.pack)?;
    let policy = choose_policy(&pack, args.oscal.policy.as_deref())?;
    let document = oscal::assessment_plan(&pack, &policy, &args.ssp, oscal::Timestamp::now())?;
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    emit(&text, args.oscal.output.as_deref())?;
    Ok(super::EXIT_OK)
}

/// Loads and lints the pack; refuses a pack with errors (printing them), as `serve` does, so
/// nothing is rendered from a pack gatehouse would not run on.
pub fn load_pack(dir: &Path) -> anyhow::Result<gatehouse_pack::Pack> {
    let loaded = gatehouse_pack::load(dir)?;
    if loaded.has_errors() {
        eprint!(
            "{}",
            gatehouse_pack::render::text(&loaded.diagnostics, &loaded.sources)
        );
        bail!(
            "the pack in {} has {} error(s); fix them first (`gatehouse lint`)",
            dir.display(),
            loaded.error_count()
        );
    }
    Ok(loaded.pack)
}

/// Writes `text` to `output` or standard output.
pub fn emit(text: &str, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("writing to standard output")?,
    }
    Ok(())
}

fn sabsa_l6(args: SabsaL6Args) -> anyhow::Result<ExitCode> {
    let pack = load_pack(&args.pack.pack)?;
    let exported = export(&pack, args.policy.as_deref())?;
    let text = match args.format {
        Format::Json => to_json(&exported.document)?,
        Format::Md => to_markdown(&exported),
        Format::Html => to_html(&exported),
    };
    emit(&text, args.output.as_deref())?;
    eprint!("{}", exported.coverage.text());
    Ok(super::EXIT_OK)
}
