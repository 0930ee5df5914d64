//! Rego policies of a release class: loaded with the pack, evaluated at verdict time over the
//! release and its normalized evidence facts, conftest-style, failing closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fixtures/gate/support.rs"]
mod support;

use gatehouse_core::gate::{GateCategory, GateDecision, GateVerdict, ReasonLevel};
use gatehouse_pack::model::RegoPolicy;
use gatehouse_pack::{Diagnostic, LoadedPack};
use support::{Scenario, t};

const SARIF_ERRORS: &str = include_str!("fixtures/gate/policies/sarif_errors.rego");
const BROKEN: &str = include_str!("fixtures/gate/policies/broken.rego");
const RUNTIME_ERROR: &str = include_str!("fixtures/gate/policies/runtime_error.rego");

/// Loads a one-class pack whose class names `file` with `query`, `rego` holding the files.
fn load(file: &str, query: &str, rego: &[(&str, &str)]) -> LoadedPack {
    let class = format!(
        "kind: ReleaseClass\nid: normal\napprover_path: [{{role: security-lead}}]\n\
         policies:\n  - file: {file}\n    query: {query}\n"
    );
    let mut files = vec![("classes.yaml", class.as_str())];
    files.extend_from_slice(rego);
    gatehouse_pack::load_files(files)
}

fn policies(loaded: &LoadedPack) -> Vec<RegoPolicy> {
    loaded
        .pack
        .release_class("normal")
        .expect("class loaded")
        .policies
        .clone()
}

fn rego_diagnostics(loaded: &LoadedPack) -> Vec<&Diagnostic> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.code.starts_with("rego-"))
        .collect()
}

/// The fixture scenario's passing release (clean SARIF attached) under `policies`, with
/// `sarif` attached as well.
fn verdict(policies: Vec<RegoPolicy>, sarif: Option<&str>) -> GateVerdict {
    let mut s = Scenario::passing_normal();
    s.class.policies = policies;
    if let Some(sarif) = sarif {
        s.attach("sarif", sarif, t(1));
    }
    s.verdict(t(3))
}

fn policy_reasons(verdict: &GateVerdict) -> Vec<(ReasonLevel, String, String, String)> {
    verdict
        .category(GateCategory::Findings)
        .unwrap()
        .reasons
        .iter()
        .filter(|r| r.code.starts_with("policy_"))
        .map(|r| {
            (
                r.level,
                r.code.clone(),
                r.rule.field.clone(),
                r.message.clone(),
            )
        })
        .collect()
}

#[test]
fn a_deny_blocks_naming_the_policy_and_a_warn_warns() {
    let loaded = load(
        "policies/sarif_errors.rego",
        "data.gatehouse.sarif.deny",
        &[("policies/sarif_errors.rego", SARIF_ERRORS)],
    );
    assert!(
        rego_diagnostics(&loaded).is_empty(),
        "{:?}",
        loaded.diagnostics
    );
    let policies = policies(&loaded);
    assert!(policies[0].source.as_deref() == Some(SARIF_ERRORS));

    let verdict = verdict(policies, Some("sarif_two_errors_one_warning.sarif"));
    assert_eq!(verdict.decision, GateDecision::Blocked);
    let reasons = policy_reasons(&verdict);
    let deny: Vec<_> = reasons.iter().filter(|r| r.1 == "policy_deny").collect();
    assert_eq!(deny.len(), 1, "{reasons:?}");
    let (level, _, field, message) = deny[0];
    assert_eq!(*level, ReasonLevel::Block);
    assert_eq!(field, "policies[0]");
    assert!(
        message.contains("policies/sarif_errors.rego")
            && message.contains("data.gatehouse.sarif.deny")
            && message.contains("2 unsuppressed SARIF errors")
            && message.contains("payments"),
        "{message}"
    );
    let reason = verdict
        .category(GateCategory::Findings)
        .unwrap()
        .reasons
        .iter()
        .find(|r| r.code == "policy_deny")
        .unwrap();
    assert!(reason.evidence.iter().any(|e| e.kind == "sarif"));

    let warn: Vec<_> = reasons.iter().filter(|r| r.1 == "policy_warn").collect();
    assert_eq!(warn.len(), 1, "{reasons:?}");
    assert_eq!(warn[0].0, ReasonLevel::Warning);
    assert!(
        warn[0].3.contains("1 unsuppressed SARIF warnings"),
        "{}",
        warn[0].3
    );
}

#[test]
fn no_deny_passes() {
    let loaded = load(
        "policies/sarif_errors.rego",
        "data.gatehouse.sarif.deny",
        &[("policies/sarif_errors.rego", SARIF_ERRORS)],
    );
    let verdict = verdict(policies(&loaded), None);
    assert!(policy_reasons(&verdict).is_empty(), "{verdict:?}");
    assert_eq!(
        verdict.category(GateCategory::Findings).unwrap().decision,
        GateDecision::Pass
    );
    assert_eq!(verdict.decision, GateDecision::Pass);
}

#[test]
fn a_syntax_error_is_a_located_pack_error_and_blocks() {
    let loaded = load(
        "policies/broken.rego",
        "data.gatehouse.broken.deny",
        &[("policies/broken.rego", BROKEN)],
    );
    let found = rego_diagnostics(&loaded);
    assert_eq!(found.len(), 1, "{:?}", loaded.diagnostics);
    let d = found[0];
    assert_eq!(d.code, "rego-policy-syntax");
    let at = d.location.as_ref().expect("located");
    assert_eq!(at.file, std::path::Path::new("policies/broken.rego"));
    assert!(at.line >= 6 && at.column > 0, "{at:?} {}", d.message);
    assert!(!d.message.contains("-->"), "{}", d.message);
    assert!(loaded.has_errors());
    assert!(policies(&loaded)[0].prepared.is_none());

    // Even if a broken pack were used, the gate fails closed.
    let verdict = verdict(policies(&loaded), None);
    let reasons = policy_reasons(&verdict);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0].0, ReasonLevel::Block);
    assert_eq!(reasons[0].1, "policy_error");
    assert_eq!(verdict.decision, GateDecision::Blocked);
}

#[test]
fn a_runtime_error_fails_closed() {
    let loaded = load(
        "policies/runtime_error.rego",
        "data.gatehouse.runtime.deny",
        &[("policies/runtime_error.rego", RUNTIME_ERROR)],
    );
    assert!(
        rego_diagnostics(&loaded).is_empty(),
        "{:?}",
        loaded.diagnostics
    );
    let verdict = verdict(policies(&loaded), None);
    let reasons = policy_reasons(&verdict);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    let (level, code, field, message) = &reasons[0];
    assert_eq!(
        (*level, code.as_str()),
        (ReasonLevel::Block, "policy_error")
    );
    assert_eq!(field, "policies[0]");
    assert!(
        message.contains("policies/runtime_error.rego")
            && message.contains("could not parse string as number (line 7"),
        "{message}"
    );
    assert_eq!(verdict.decision, GateDecision::Blocked);
}

#[test]
fn a_query_naming_no_rule_fails_closed() {
    let loaded = load(
        "policies/sarif_errors.rego",
        "data.gatehouse.sarif.nothing_here",
        &[("policies/sarif_errors.rego", SARIF_ERRORS)],
    );
    let verdict = verdict(policies(&loaded), None);
    let reasons = policy_reasons(&verdict);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0].1, "policy_error");
    assert!(reasons[0].3.contains("nothing_here"), "{}", reasons[0].3);
    assert_eq!(verdict.decision, GateDecision::Blocked);
}

#[test]
fn a_missing_file_is_a_pack_error_and_blocks() {
    let loaded = load("policies/absent.rego", "data.gatehouse.deny", &[]);
    let found = rego_diagnostics(&loaded);
    assert_eq!(found.len(), 1, "{:?}", loaded.diagnostics);
    assert_eq!(found[0].code, "rego-policy-unreadable");
    let at = found[0].location.as_ref().unwrap();
    assert_eq!(at.file, std::path::Path::new("classes.yaml"));
    assert_eq!(at.line, 5);

    let verdict = verdict(policies(&loaded), None);
    let reasons = policy_reasons(&verdict);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0].1, "policy_error");
    assert_eq!(verdict.decision, GateDecision::Blocked);
}

#[test]
fn the_loader_prepares_each_policy_once_and_a_changed_text_is_parsed_again() {
    let loaded = load(
        "policies/sarif_errors.rego",
        "data.gatehouse.sarif.deny",
        &[("policies/sarif_errors.rego", SARIF_ERRORS)],
    );
    let prepared = policies(&loaded);
    let p = prepared[0]
        .prepared
        .as_ref()
        .expect("prepared with the pack");
    assert!(p.is_for(SARIF_ERRORS));
    assert_eq!(p.package(), "data.gatehouse.sarif");

    // The prepared engine and a parse at verdict time decide the same.
    let mut unprepared = prepared.clone();
    unprepared[0].prepared = None;
    let sarif = Some("sarif_two_errors_one_warning.sarif");
    let with = policy_reasons(&verdict(prepared.clone(), sarif));
    assert_eq!(with, policy_reasons(&verdict(unprepared, sarif)));
    assert_eq!(with.iter().filter(|r| r.1 == "policy_deny").count(), 1);
    // Evaluations share nothing: the same prepared policy decides the same again.
    assert_eq!(policy_reasons(&verdict(prepared.clone(), sarif)), with);

    // A policy whose text was replaced after loading is not judged by the old engine.
    let mut edited = prepared;
    edited[0].source = Some(SARIF_ERRORS.replace("n > 0", "n > 100"));
    let after = verdict(edited, sarif);
    assert!(
        policy_reasons(&after).iter().all(|r| r.1 != "policy_deny"),
        "{after:?}"
    );
}
