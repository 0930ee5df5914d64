//! Human-readable rendering of parsed evidence, for `gatehouse evidence inspect` and the
//! release memo. The JSON form is the serde serialization of [`crate::Parsed`].

use std::fmt::Write as _;

use std::fs::File;
use std::path::Path;

use crate::intoto::SignatureCheck;
use crate::{EvidenceError, EvidenceKind, Facts, Limits, Parsed, TrustedKey};

/// Output format of [`inspect_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectFormat {
    Text,
    Json,
}

/// What `gatehouse evidence inspect` prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectOutcome {
    pub stdout: String,
    pub stderr: String,
    /// 0 parsed, 1 the evidence is invalid (or of another kind, or untrusted), 2 I/O error or
    /// unusable key.
    pub exit_code: u8,
}

/// Parses `path` as `kind` and renders the facts; with `key_files`, in-toto envelopes must be
/// signed by one of those PEM public keys. Shared by the CLI and the conformance tooling so
/// both behave identically.
pub fn inspect_file(
    path: &Path,
    kind: &EvidenceKind,
    key_files: &[&Path],
    limits: &Limits,
    format: InspectFormat,
) -> InspectOutcome {
    let failure = |err: EvidenceError| InspectOutcome {
        stdout: String::new(),
        stderr: format!("error: {}: {err}\n", path.display()),
        exit_code: if err.is_input_error() { 1 } else { 2 },
    };
    let mut keys = Vec::with_capacity(key_files.len());
    for key_file in key_files {
        let pem = match std::fs::read_to_string(key_file) {
            Ok(pem) => pem,
            Err(err) => {
                return InspectOutcome {
                    stdout: String::new(),
                    stderr: format!("error: cannot read key {}: {err}\n", key_file.display()),
                    exit_code: 2,
                };
            }
        };
        match TrustedKey::from_pem(&key_file.display().to_string(), &pem) {
            Ok(key) => keys.push(key),
            Err(err) => return failure(err),
        }
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) => return failure(EvidenceError::Io(err)),
    };
    let parsed = if key_files.is_empty() {
        crate::parse(kind, file, limits)
    } else if *kind == EvidenceKind::InToto {
        crate::parse_attestation(file, limits, &keys)
    } else {
        return InspectOutcome {
            stdout: String::new(),
            stderr: format!("error: --key applies to in-toto evidence only, not {kind}\n"),
            exit_code: 2,
        };
    };
    match parsed {
        Ok(parsed) => {
            let stdout = match format {
                InspectFormat::Text => render_text(&parsed),
                InspectFormat::Json => match serde_json::to_string_pretty(&parsed) {
                    Ok(json) => json + "\n",
                    Err(err) => return failure(EvidenceError::Io(std::io::Error::other(err))),
                },
            };
            InspectOutcome {
                stdout,
                stderr: String::new(),
                exit_code: 0,
            }
        }
        Err(err) => failure(err),
    }
}

/// Renders `parsed` as indented text lines.
pub fn render_text(parsed: &Parsed) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "kind:          {}", parsed.kind);
    let _ = writeln!(out, "size:          {} bytes", parsed.size_bytes);
    let _ = writeln!(out, "sha256:        {}", parsed.sha256);
    match &parsed.facts {
        Facts::Sarif(f) => {
            let _ = writeln!(
                out,
                "sarif version: {}",
                f.sarif_version.as_deref().unwrap_or("-")
            );
            let _ = writeln!(out, "runs:          {} ({})", f.runs, f.tools.join(", "));
            let _ = writeln!(out, "results:       {}", f.total_results);
            let l = &f.by_level;
            let _ = writeln!(
                out,
                "  by level:    error {}, warning {}, note {}, none {}",
                l.error, l.warning, l.note, l.none
            );
            let u = &f.unsuppressed_by_level;
            let _ = writeln!(
                out,
                "  unsuppressed: error {}, warning {}, note {}, none {}",
                u.error, u.warning, u.note, u.none
            );
            let _ = writeln!(
                out,
                "  suppressed:  {} (with suppressions: {})",
                f.suppressed, f.with_suppressions
            );
            let s = &f.by_security_severity;
            let _ = writeln!(
                out,
                "  security-severity: critical {}, high {}, medium {}, low {}, none {}, unscored {}",
                s.critical, s.high, s.medium, s.low, s.none, s.unscored
            );
            if !f.baseline_state.is_empty() {
                let _ = writeln!(
                    out,
                    "  baseline:    {}",
                    join_counts(f.baseline_state.iter())
                );
            }
            let _ = writeln!(
                out,
                "rules:         {} distinct rule ids{}",
                f.rule_ids.len(),
                truncated(f.rule_ids_truncated)
            );
        }
        Facts::CycloneDx(f) => {
            let _ = writeln!(
                out,
                "cyclonedx:     {} ({})",
                f.spec_version.as_deref().unwrap_or("-"),
                f.serialization
            );
            let _ = writeln!(
                out,
                "components:    {} ({} top level, nesting depth {})",
                f.components, f.components_top_level, f.components_max_depth
            );
            let _ = writeln!(out, "vulnerabilities: {}", f.vulnerabilities);
            let s = &f.by_severity;
            let _ = writeln!(
                out,
                "  by severity: critical {}, high {}, medium {}, low {}, info {}, none {}, unknown {}, no ratings {}",
                s.critical, s.high, s.medium, s.low, s.info, s.none, s.unknown, s.no_ratings
            );
            if !f.by_analysis_state.is_empty() {
                let _ = writeln!(
                    out,
                    "  analysis:    {}",
                    join_counts(f.by_analysis_state.iter())
                );
            }
        }
        Facts::Spdx(f) => {
            let _ = writeln!(
                out,
                "spdx:          {} ({})",
                f.spdx_version.as_deref().unwrap_or("-"),
                f.serialization
            );
            let _ = writeln!(out, "packages:      {}", f.packages);
            let _ = writeln!(out, "files:         {}", f.files);
            let _ = writeln!(out, "relationships: {}", f.relationships);
            if !f.relationship_types.is_empty() {
                let _ = writeln!(
                    out,
                    "  by type:     {}",
                    join_counts(f.relationship_types.iter())
                );
            }
            if !f.licenses_declared.is_empty() {
                let _ = writeln!(
                    out,
                    "licenses:      {} distinct declared",
                    f.licenses_declared.len()
                );
            }
        }
        Facts::OpenVex(f) => {
            let _ = writeln!(
                out,
                "openvex:       {}",
                f.openvex_version.as_deref().unwrap_or("-")
            );
            let _ = writeln!(out, "statements:    {}", f.statements);
            let _ = writeln!(out, "  by status:   {}", join_counts(f.by_status.iter()));
            for statement in f.statement_list.iter().take(20) {
                let _ = writeln!(
                    out,
                    "  - {} {} ({} products)",
                    statement.vulnerability.as_deref().unwrap_or("?"),
                    statement.status.as_deref().unwrap_or("?"),
                    statement.products.len()
                );
            }
        }
        Facts::Junit(f) => {
            let _ = writeln!(
                out,
                "tests:         {} (passed {}, failures {}, errors {}, skipped {})",
                f.tests, f.passed, f.failures, f.errors, f.skipped
            );
            let _ = writeln!(
                out,
                "testsuites:    {}{}",
                f.testsuites,
                if f.nested_testsuites { " (nested)" } else { "" }
            );
            if !f.attributes_agree {
                let a = &f.suite_attribute_totals;
                let _ = writeln!(
                    out,
                    "  note: suite attributes say tests {}, failures {}, errors {}, skipped {}; the counts above are from the test cases",
                    a.tests, a.failures, a.errors, a.skipped
                );
            }
            for case in f.failed_testcases.iter().take(20) {
                let _ = writeln!(
                    out,
                    "  {} {}.{}",
                    case.status,
                    case.classname.as_deref().unwrap_or("-"),
                    case.name.as_deref().unwrap_or("-")
                );
            }
        }
        Facts::InToto(f) => {
            let _ = writeln!(out, "container:     {}", f.container);
            let _ = writeln!(
                out,
                "payload type:  {}",
                f.payload_type.as_deref().unwrap_or("-")
            );
            let _ = writeln!(
                out,
                "predicate:     {}",
                f.predicate_type.as_deref().unwrap_or("-")
            );
            if let Some(slsa) = &f.slsa {
                let _ = writeln!(
                    out,
                    "builder:       {}",
                    slsa.builder_id.as_deref().unwrap_or("-")
                );
                let _ = writeln!(
                    out,
                    "source:        {}",
                    slsa.source_repository.as_deref().unwrap_or("-")
                );
            }
            let _ = writeln!(out, "subjects:      {}", f.subjects.len());
            for subject in &f.subjects {
                let _ = writeln!(
                    out,
                    "  {}  {}",
                    subject.sha256.as_deref().unwrap_or("(no sha256)"),
                    subject.name.as_deref().unwrap_or("-")
                );
            }
            for (index, envelope) in f.envelopes.iter().enumerate() {
                let check = match &envelope.signature_check {
                    SignatureCheck::NotChecked => "signatures not checked".to_string(),
                    SignatureCheck::Unsigned => "unsigned statement".to_string(),
                    SignatureCheck::Verified(by) => format!("verified by key {}", by.key_id),
                };
                let _ = writeln!(
                    out,
                    "envelope {}:    {} signature(s), {check}",
                    index + 1,
                    envelope.signatures
                );
            }
        }
        Facts::Document(f) => {
            let _ = writeln!(out, "document:      {} ({})", f.document_kind, f.media_type);
            if let Some(link) = &f.link {
                let _ = writeln!(out, "link:          {link}");
            }
        }
    }
    out
}

fn join_counts<'a>(entries: impl Iterator<Item = (&'a String, &'a u64)>) -> String {
    entries
        .map(|(name, count)| format!("{name} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn truncated(flag: bool) -> &'static str {
    if flag { " (list truncated)" } else { "" }
}
