//! Stand-alone `evidence inspect` for the conformance script: the same code path as
//! `gatehouse evidence inspect` (both call `report::inspect_file`) without building the whole
//! `gatehouse` binary and its server dependencies.
//!
//! Usage: evidence-inspect --kind KIND [--format text|json] [--key PEM]... FILE

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_evidence::report::{InspectFormat, inspect_file};
use gatehouse_evidence::{EvidenceKind, Limits};

fn main() -> ExitCode {
    let mut kind = None;
    let mut format = InspectFormat::Text;
    let mut keys: Vec<PathBuf> = Vec::new();
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kind" => kind = args.next().and_then(|k| k.parse::<EvidenceKind>().ok()),
            "--format" => {
                format = match args.next().as_deref() {
                    Some("json") => InspectFormat::Json,
                    _ => InspectFormat::Text,
                }
            }
            "--key" => keys.extend(args.next().map(PathBuf::from)),
            _ => file = Some(PathBuf::from(arg)),
        }
    }
    let (Some(kind), Some(file)) = (kind, file) else {
        eprintln!("usage: evidence-inspect --kind KIND [--format text|json] [--key PEM]... FILE");
        return ExitCode::from(2);
    };
    let key_refs: Vec<&std::path::Path> = keys.iter().map(PathBuf::as_path).collect();
    let outcome = inspect_file(&file, &kind, &key_refs, &Limits::default(), format);
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.exit_code)
}
