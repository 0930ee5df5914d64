//! Diagnostics for people (text), for scripts (JSON) and for code-scanning UIs (SARIF 2.1.0).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Severity, Sources};

/// Human-readable report: each finding with position, snippet and hint, then a summary line.
///
/// ```text
/// error[unknown-key]: unknown field `sevrity`, expected one of …
///  --> pack/alerts.yaml:4:1
///   |
/// 4 | sevrity: Critical
///   | ^^^^^^^
///   = hint: …
/// ```
pub fn text(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let _ = writeln!(out, "{}[{}]: {}", d.severity.as_str(), d.code, d.message);
        if let Some(location) = &d.location {
            let _ = writeln!(out, " --> {location}");
            if let Some(snippet) = sources
                .get(&location.file)
                .and_then(|source| d.snippet(source))
            {
                let _ = writeln!(out, "{snippet}");
            }
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out.push('\n');
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let _ = writeln!(
        out,
        "{errors} error{}, {warnings} warning{}",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    );
    out
}

/// `{"diagnostics": [...], "errors": N, "warnings": N}`; each diagnostic has `severity`,
/// `code`, `message`, `file`, `line`, `column` (null when unknown), `hint` and `snippet`.
pub fn json(diagnostics: &[Diagnostic], sources: &Sources) -> Value {
    let items: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let location = d.location.as_ref();
            let positioned = location.filter(|l| l.has_position());
            json!({
                "severity": d.severity.as_str(),
                "code": d.code,
                "message": d.message,
                "file": location.map(|l| l.file.display().to_string()),
                "line": positioned.map(|l| l.line),
                "column": positioned.map(|l| l.column.max(1)),
                "hint": d.hint,
                "snippet": location
                    .and_then(|l| sources.get(&l.file))
                    .and_then(|s| d.snippet(s)),
            })
        })
        .collect();
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    json!({
        "diagnostics": items,
        "errors": errors,
        "warnings": diagnostics.len() - errors,
    })
}

/// A SARIF 2.1.0 log with one run of the `gatehouse` tool. Each distinct code is a rule in
/// `tool.driver.rules`; each finding a result with a physical location (file URI relative to
/// the working directory, `region.startLine/startColumn` when known).
pub fn sarif(diagnostics: &[Diagnostic], sources: &Sources) -> Value {
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    for d in diagnostics {
        let next = rule_index.len();
        rule_index.entry(d.code).or_insert(next);
    }
    let mut rules: Vec<(&str, usize)> = rule_index.iter().map(|(k, v)| (*k, *v)).collect();
    rules.sort_by_key(|(_, i)| *i);
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|(code, _)| {
            json!({
                "id": code,
                "name": code,
                "shortDescription": { "text": rule_description(code) },
                "helpUri": "https://example.invalid/gatehouse/docs/pack.md",
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let mut message = d.message.clone();
            if let Some(hint) = &d.hint {
                message.push_str("\nhint: ");
                message.push_str(hint);
            }
            let mut result = json!({
                "ruleId": d.code,
                "ruleIndex": rule_index.get(d.code).copied().unwrap_or(0),
                "level": match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                "message": { "text": message },
            });
            if let Some(location) = &d.location {
                let uri = location.file.to_string_lossy().replace('\\', "/");
                let mut physical = json!({ "artifactLocation": { "uri": uri } });
                if location.has_position() {
                    let mut region = json!({
                        "startLine": location.line,
                        "startColumn": location.column.max(1),
                    });
                    if let Some(line) = sources
                        .get(&location.file)
                        .and_then(|s| s.lines().nth(location.line as usize - 1))
                    {
                        region["snippet"] = json!({ "text": line });
                    }
                    physical["region"] = region;
                }
                result["locations"] = json!([{ "physicalLocation": physical }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "gatehouse",
                    "informationUri": "https://example.invalid/gatehouse",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// One-line description of each rule code, for SARIF rule metadata.
pub fn rule_description(code: &str) -> &'static str {
    match code {
        "yaml-syntax" => "The file is not valid YAML.",
        "yaml-limit" => {
            "The document exceeds a safety limit (nesting depth, alias expansion, size)."
        }
        "wrong-type" => "A value has the wrong type for its key.",
        "invalid-value" => "A value is out of range or not one of the allowed values.",
        "unknown-key" => "A key that the document kind does not define.",
        "missing-key" => "A required key is missing.",
        "duplicate-key" => "The same key appears twice in one mapping.",
        "missing-kind" => "A document has no `kind:`.",
        "unknown-kind" => "A document's `kind:` is not a known kind.",
        "missing-id" => "A document has no `id:`.",
        "invalid-id" => "A document id contains characters ids may not use.",
        "duplicate-id" => "Two documents share an id.",
        "dangling-reference" => "A reference or trace points to an id no document has.",
        "wrong-reference-kind" => "A reference names a document of the wrong kind.",
        "role-without-holder" => "An approver step or escalation names a role no person holds.",
        "quorum-unreachable" => "An approver quorum is larger than the number of role holders.",
        "empty-approver-path" => "A release class has no approver steps.",
        "invalid-cron" => "A cron expression does not parse.",
        "invalid-rrule" => "An RFC 5545 RRULE does not parse.",
        "invalid-recurrence" => "A recurrence needs exactly one of cron or rrule.",
        "invalid-time-zone" => "A time zone is not a known IANA name.",
        "invalid-time" => "A time or date-time does not parse.",
        "invalid-date" => "A date does not parse.",
        "sla-order" => "SLA durations must satisfy acknowledge ≤ initial response ≤ resolution.",
        "kpi-threshold-order" => "KPI thresholds are out of order for the KPI's direction.",
        "kpi-target-not-green" => "A KPI target lies outside its green band.",
        "overlapping-phases" => "Playbook phases overlap in time.",
        "empty-phase" => "A playbook phase ends before it starts.",
        "phase-gap" => "The first playbook phase does not start at T+0.",
        "score-out-of-range" => "A score or level is outside 1–3.",
        "invalid-trigger" => "An alert needs exactly one trigger.",
        "invalid-remediation" => "Automatic or suggested remediation needs a runbook.",
        "overlapping-bands" => "Risk score bands overlap.",
        "invalid-band" => "A risk score band has max below min.",
        "duplicate-entry" => "The same entry is listed twice.",
        "band-gap" => "Some risk scores fall in no band.",
        "lead-not-member" => "A team lead is not a member of the team.",
        "trace-cycle" => "Documents derive from each other in a cycle.",
        "file-too-large" => "A pack file is over the size limit.",
        "empty-pack" => "The pack folder has no YAML files.",
        "pack-too-large" => "The pack's files together are over the size limit.",
        "too-many-files" => "The pack has more files than the limit.",
        "too-deep" => "Folders are nested deeper than the limit.",
        "not-utf8" => "A pack file is not valid UTF-8.",
        "symlink-loop" => "A symbolic link loops back into the pack folder.",
        "io-error" => "A pack file or folder could not be read.",
        _ => "gatehouse pack finding.",
    }
}
