//! Renders a validation [`Report`] for people (text), for scripts (JSON) and for code-scanning
//! dashboards (SARIF 2.1.0). All three carry the same facts: rule id, checklist line, JSON
//! Pointer, `line:column`, whether a heuristic decided, and the outcome of every checklist line.

use serde_json::{Value, json};

use crate::validate::{Check, Outcome, Report};

/// `FILE:LINE:COL: error[L6-05] /pointer: message` lines, then the checklist with outcomes.
pub fn text(report: &Report, path: &str) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let kind = if f.heuristic { " (heuristic)" } else { "" };
        let pointer = if f.pointer.is_empty() {
            "/"
        } else {
            &f.pointer
        };
        out.push_str(&format!(
            "{path}:{}:{}: error[{}]{kind} {pointer}: {}\n    checklist: {}\n",
            f.line,
            f.column,
            f.check.id(),
            f.message,
            f.check.checklist_line()
        ));
    }
    out.push_str("\nQuality checklist (003_*):\n");
    for (check, outcome) in &report.outcomes {
        let status = match outcome {
            Outcome::Passed => "pass",
            Outcome::Failed => "FAIL",
            Outcome::NotEvaluated(_) => "n/a ",
        };
        out.push_str(&format!(
            "  [{status}] {} {}\n",
            check.id(),
            check.checklist_line()
        ));
        if let Outcome::NotEvaluated(reason) = outcome {
            out.push_str(&format!("         not evaluated: {reason}\n"));
        }
        if let Some(method) = check.heuristic() {
            out.push_str(&format!("         heuristic: {method}\n"));
        }
    }
    let failed = report
        .outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Failed)
        .count();
    out.push_str(&format!(
        "\n{} finding(s); {failed} of {} checklist items failed\n",
        report.findings.len(),
        report.outcomes.len()
    ));
    out
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::NotEvaluated(_) => "not_evaluated",
    }
}

/// A JSON object with `findings` and `checklist`; stable field names for scripts.
pub fn json(report: &Report, path: &str) -> Value {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.check.id(),
                "checklist": f.check.checklist_line(),
                "pointer": f.pointer,
                "line": f.line,
                "column": f.column,
                "message": f.message,
                "heuristic": f.heuristic,
            })
        })
        .collect();
    let checklist: Vec<Value> = report
        .outcomes
        .iter()
        .map(|(check, outcome)| {
            let mut item = json!({
                "rule": check.id(),
                "checklist": check.checklist_line(),
                "outcome": outcome_name(outcome),
                "heuristic": check.heuristic(),
            });
            if let (Outcome::NotEvaluated(reason), Some(map)) = (outcome, item.as_object_mut()) {
                map.insert("reason".to_owned(), Value::String(reason.clone()));
            }
            item
        })
        .collect();
    json!({
        "file": path,
        "valid": report.is_clean(),
        "findings": findings,
        "checklist": checklist,
    })
}

/// SARIF 2.1.0 with one rule per checklist line; heuristic findings are `warning`s with
/// `properties.heuristic = true`, structural ones `error`s. Columns count code points.
pub fn sarif(report: &Report, path: &str) -> Value {
    let rules: Vec<Value> = Check::ALL
        .iter()
        .map(|check| {
            let mut help = format!("003_* quality checklist: {}", check.checklist_line());
            if let Some(method) = check.heuristic() {
                help.push_str(&format!(" Heuristic: {method}"));
            }
            json!({
                "id": check.id(),
                "name": format!("{:?}", check),
                "shortDescription": { "text": check.checklist_line() },
                "fullDescription": { "text": help },
                "properties": { "heuristic": check.heuristic().is_some() },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.check.id(),
                "level": if f.heuristic { "warning" } else { "error" },
                "message": { "text": format!("{} (checklist: {})", f.message, f.check.checklist_line()) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": path },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    },
                    "logicalLocations": [{ "fullyQualifiedName": f.pointer, "kind": "member" }],
                }],
                "properties": { "heuristic": f.heuristic, "jsonPointer": f.pointer },
            })
        })
        .collect();
    let not_evaluated: Vec<Value> = report
        .outcomes
        .iter()
        .filter_map(|(check, outcome)| match outcome {
            Outcome::NotEvaluated(reason) => Some(json!({
                "level": "note",
                "message": { "text": format!("{} not evaluated: {reason}", check.id()) },
                "descriptor": { "id": check.id() },
            })),
            _ => None,
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "gatehouse",
                "informationUri": "https://example.invalid/gatehouse",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": not_evaluated,
            }],
        }],
    })
}
