//! `gatehouse lint [DIR]`: every finding in a policy pack, in one run.
//!
//! Exit 0 when the pack has no errors, 1 when it has (or, with `--strict`, when it has any
//! finding), 2 when the folder cannot be read at all. SARIF output lets code-scanning UIs show
//! pack findings inline on pull requests.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::{out, outln};
use anyhow::Context;

/// Output formats of `lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LintFormat {
    /// file:line:column, a source snippet with a caret, and a hint per finding.
    #[default]
    Text,
    /// `{"diagnostics": [...], "errors": N, "warnings": N}`.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

/// Arguments of `gatehouse lint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pack folder.
    #[arg(default_value = "gatehouse")]
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub format: LintFormat,
    /// Exit 1 on warnings too, not only on errors.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = gatehouse_pack::load(&args.dir)
        .with_context(|| format!("cannot lint {}", args.dir.display()))?;
    match args.format {
        LintFormat::Text => {
            if loaded.diagnostics.is_empty() {
                outln!(
                    "{}: {} documents, 0 errors, 0 warnings",
                    args.dir.display(),
                    loaded.pack.document_count()
                );
            } else {
                out!(
                    "{}",
                    gatehouse_pack::render::text(&loaded.diagnostics, &loaded.sources)
                );
            }
        }
        LintFormat::Json => crate::output::print_json(&gatehouse_pack::render::json(
            &loaded.diagnostics,
            &loaded.sources,
        ))?,
        LintFormat::Sarif => crate::output::print_json(&gatehouse_pack::render::sarif(
            &loaded.diagnostics,
            &loaded.sources,
        ))?,
    }
    let failing = loaded.has_errors() || (args.strict && !loaded.diagnostics.is_empty());
    Ok(if failing {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_OK
    })
}
