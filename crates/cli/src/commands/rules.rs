//! `gatehouse rules check DIR`: load every Sigma document under DIR and report coverage.
//!
//! Every document is accounted for: loaded, unsupported (the feature is named) or invalid
//! (the reason is given), each with file and line. Nothing is dropped silently.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use gatehouse_detect::engine::Engine;
use gatehouse_detect::rule::{LoadOptions, ProblemKind, RuleSet};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RulesCommand {
    /// Load Sigma rules and print a coverage report (loaded / unsupported / invalid).
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// A rule file or a directory searched recursively for .yml/.yaml files.
    #[arg(required_unless_present = "pack")]
    path: Option<PathBuf>,
    /// Policy pack whose `DetectionRules` folders are checked (besides PATH).
    #[arg(long)]
    pack: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Values for `expand` placeholders, `NAME=value1,value2` (repeatable).
    #[arg(long = "placeholder", value_name = "NAME=VALUES")]
    placeholders: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        RulesCommand::Check(a) => check(a),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the report")
        }
        _ => Ok(()),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut load = LoadOptions::default();
    for p in &args.placeholders {
        load.add_placeholder_arg(p).map_err(anyhow::Error::msg)?;
    }
    let mut set = RuleSet::default();
    if let Some(dir) = &args.pack {
        crate::detection::pack_rules(dir, &load, &mut set)?;
    }
    if let Some(path) = &args.path {
        set.add_path(path, &load)
            .with_context(|| format!("reading rules from {}", path.display()))?;
    }
    set.resolve();
    // Compile too: what loads must also compile into the shared plan.
    let engine = Engine::compile(&set);
    let unsupported: Vec<_> = set
        .problems
        .iter()
        .filter_map(|p| match &p.kind {
            ProblemKind::Unsupported { feature } => {
                Some(json!({"file": p.file, "line": p.line, "rule": p.rule, "feature": feature}))
            }
            ProblemKind::Invalid { .. } => None,
        })
        .collect();
    let invalid: Vec<_> = set
        .problems
        .iter()
        .filter_map(|p| match &p.kind {
            ProblemKind::Invalid { reason } => {
                Some(json!({"file": p.file, "line": p.line, "rule": p.rule, "reason": reason}))
            }
            ProblemKind::Unsupported { .. } => None,
        })
        .collect();
    match args.format {
        Format::Json => {
            let plan = engine.plan_stats();
            let report = json!({
                "total": set.total,
                "loaded": set.loaded(),
                "detection_rules": set.rules.len(),
                "correlation_rules": set.correlations.len(),
                "filters": set.filters.len(),
                "plan": {
                    "atoms": plan.atoms,
                    "atoms_by_automaton": plan.automaton_atoms,
                    "fields_with_automata": plan.fields_with_automata,
                    "rules_without_prefilter": plan.untriggered_rules,
                },
                "unsupported": unsupported,
                "invalid": invalid,
            });
            print_out(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
        }
        Format::Text => {
            let mut text = String::new();
            for p in &set.problems {
                text.push_str(&format!("{p}\n"));
            }
            text.push_str(&format!(
                "{} documents: {} loaded ({} detection, {} correlation, {} filter), {} unsupported, {} invalid\n",
                set.total,
                set.loaded(),
                set.rules.len(),
                set.correlations.len(),
                set.filters.len(),
                unsupported.len(),
                invalid.len()
            ));
            print_out(&text)?;
        }
    }
    Ok(if set.problems.is_empty() {
        super::EXIT_OK
    } else {
        super::EXIT_FINDINGS
    })
}
