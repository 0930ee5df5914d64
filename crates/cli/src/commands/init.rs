//! `gatehouse init [DIR]`: writes the example policy pack, a complete starting point that
//! lints clean.
//!
//! Existing files are never overwritten unless `--force` is given, and the check happens before
//! anything is written, so a refused `init` leaves the folder exactly as it was.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::json;

use crate::output::outln;
use crate::output::{OutputFormat, print_json};

/// Arguments of `gatehouse init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write the example pack into (created if missing).
    #[arg(default_value = "gatehouse")]
    pub dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let written = write_example_pack(&args.dir, args.force)?;
    match args.format {
        OutputFormat::Json => print_json(&json!({
            "dir": args.dir.display().to_string(),
            "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        }))?,
        OutputFormat::Text => {
            outln!(
                "wrote the example pack ({} files) to {}",
                written.len(),
                args.dir.display()
            );
            for path in &written {
                outln!("  {}", path.display());
            }
            outln!("next: gatehouse lint {}", args.dir.display());
        }
    }
    Ok(super::EXIT_OK)
}

/// Writes every example file under `dir`; refuses (writing nothing) if any exists and `force`
/// is false. Returns the paths written.
pub fn write_example_pack(dir: &std::path::Path, force: bool) -> anyhow::Result<Vec<PathBuf>> {
    let files = gatehouse_pack::example::files();
    let targets: Vec<(PathBuf, &str)> = files
        .iter()
        .map(|(relative, content)| (dir.join(relative), *content))
        .collect();
    if !force {
        let existing: Vec<String> = targets
            .iter()
            .filter(|(path, _)| path.symlink_metadata().is_ok())
            .map(|(path, _)| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            bail!(
                "refusing to overwrite existing files (use --force to replace them): {}",
                existing.join(", ")
            );
        }
    }
    let mut written = Vec::with_capacity(targets.len());
    for (path, content) in targets {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
