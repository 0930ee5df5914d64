//! Writes a sample audit export and verifies export files, for `scripts/bench-ledger` and for
//! regenerating the test fixtures. Not the product CLI: `gatehouse audit export|verify` is.
//!
//!   cargo run --release -p gatehouse-ledger --example audit_file -- sample FILE ENTRIES [HEAD_EVERY]
//!   cargo run --release -p gatehouse-ledger --example audit_file -- verify FILE
//!
//! `sample` signs with a fixed, publicly known demo key so that its output is reproducible.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::process::ExitCode;
use std::time::Instant;

use gatehouse_ledger::{AuditOutcome, AuditRecord, Ledger, LogSigningKey, export, verify};
use jiff::{SignedDuration, Timestamp};

/// The demo key's secret: never use it for a real log.
const DEMO_SECRET: [u8; 32] = [7; 32];

fn sample_record(i: u64, start: Timestamp) -> AuditRecord {
    let actions = [
        "release.create",
        "release.approve",
        "token.create",
        "evidence.upload",
        "release.deny",
    ];
    let action = actions[(i % actions.len() as u64) as usize];
    AuditRecord {
        at: start
            .saturating_add(SignedDuration::from_millis(i as i64 * 1500))
            .unwrap_or(start),
        actor: format!("user:engineer-{}", i % 17),
        action: action.to_owned(),
        target: format!("release:0192f3a4-7b1c-7d2e-9f00-{:012x}", i / 3),
        outcome: if action == "release.deny" {
            AuditOutcome::Denied
        } else {
            AuditOutcome::Succeeded
        },
        detail: serde_json::json!({
            "service": "payments",
            "version": format!("1.{}.{}", i / 100, i % 100),
            "reason": "gate verdict recorded by the release pipeline",
            "request_id": format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }),
    }
}

fn sample(path: &str, entries: u64, head_every: u64) -> Result<(), Box<dyn std::error::Error>> {
    let key = LogSigningKey::from_secret_bytes(&DEMO_SECRET);
    let start: Timestamp = "2026-11-27T09:00:00Z".parse()?;
    let mut ledger = Ledger::new();
    let mut encoded = Vec::with_capacity(entries as usize);
    let mut heads = Vec::new();
    for i in 0..entries {
        let appended = ledger.append(sample_record(i, start));
        encoded.push(appended.encoded);
        if head_every > 0 && appended.tree_size.is_multiple_of(head_every) {
            heads.push(ledger.sign_head(&key, appended.entry.record.at));
        }
    }
    if heads.last().map(|h| h.tree_size) != Some(ledger.tree_size()) {
        heads.push(ledger.sign_head(&key, start.saturating_add(SignedDuration::from_hours(24))?));
    }
    let summary = export(
        &encoded,
        &heads,
        &[key.verifying_key()],
        BufWriter::new(File::create(path)?),
    )?;
    eprintln!(
        "wrote {path}: {} entries, {} signed tree heads, {} bytes",
        summary.entries, summary.heads, summary.bytes
    );
    Ok(())
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["sample", path, n] => sample(path, n.parse()?, 1000).map(|()| true),
        ["sample", path, n, every] => sample(path, n.parse()?, every.parse()?).map(|()| true),
        ["verify", path] => {
            let started = Instant::now();
            // `verify` buffers on its own; a BufReader would only add a copy.
            let report = verify(File::open(path)?, None)?;
            let secs = started.elapsed().as_secs_f64();
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = write!(std::io::stdout().lock(), "{report}");
            eprintln!(
                "verified {} bytes in {:.3} s: {:.1} MB/s",
                report.bytes,
                secs,
                report.bytes as f64 / secs / 1e6
            );
            Ok(report.is_intact())
        }
        _ => Err(
            "usage: audit_file sample FILE ENTRIES [HEAD_EVERY] | audit_file verify FILE".into(),
        ),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
