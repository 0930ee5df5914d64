//! `gatehouse evidence …`: evidence commands. `inspect` runs the release gate's evidence
//! parser offline (no server) and prints the normalized facts, so users can see what the gate
//! will read from a SARIF log, SBOM, VEX, JUnit report or attestation before uploading it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use gatehouse_evidence::report::{InspectFormat, inspect_file};
use gatehouse_evidence::{EvidenceKind, Limits};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: EvidenceCommand,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Parse an evidence file offline and print its normalized facts.
    ///
    /// Exit status: 0 parsed, 1 invalid evidence (malformed, wrong kind, over a limit, or
    /// not signed by a given key; the message names the location), 2 usage or I/O error.
    Inspect(InspectArgs),
    /// Attach an evidence file to a release on a running server (streamed; a progress bar
    /// on a terminal). The server parses it before storing; re-uploads are idempotent.
    Add(super::evidence_add::AddArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Evidence kind: sarif, cyclonedx, spdx, openvex, junit, in-toto, threat-model,
    /// code-review, ci-run, rollback-plan, monitoring-plan.
    #[arg(long, value_parser = parse_kind)]
    pub kind: EvidenceKind,
    /// The evidence file.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// PEM public key (Ed25519, ECDSA P-256 or RSA) that must have signed every DSSE envelope
    /// (in-toto only; repeatable).
    #[arg(long = "key", value_name = "PEM")]
    pub keys: Vec<PathBuf>,
    /// Refuse input larger than this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,
}

fn parse_kind(name: &str) -> Result<EvidenceKind, String> {
    name.parse::<EvidenceKind>().map_err(|err| err.to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        EvidenceCommand::Inspect(args) => inspect(args),
        EvidenceCommand::Add(args) => super::evidence_add::run(args),
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut limits = Limits::default();
    if let Some(max_bytes) = args.max_bytes {
        limits.max_bytes = max_bytes;
    }
    let format = match args.format {
        Format::Text => InspectFormat::Text,
        Format::Json => InspectFormat::Json,
    };
    let keys: Vec<&std::path::Path> = args.keys.iter().map(PathBuf::as_path).collect();
    let outcome = inspect_file(&args.file, &args.kind, &keys, &limits, format);
    std::io::stdout().write_all(outcome.stdout.as_bytes())?;
    std::io::stderr().write_all(outcome.stderr.as_bytes())?;
    Ok(ExitCode::from(outcome.exit_code))
}
