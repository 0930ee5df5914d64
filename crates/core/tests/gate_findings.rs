//! Findings against the class's thresholds, from real SARIF, CycloneDX, OpenVEX and JUnit
//! fixtures parsed by `gatehouse-evidence`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fixtures/gate/support.rs"]
mod support;

use gatehouse_core::gate::{
    Actor, Attachment, EvidenceFacts, Exception, ExceptionScope, FindingScope, FindingTally,
    GateCategory, GateDecision, ReasonLevel,
};
use gatehouse_evidence::Facts;
use support::{Scenario, codes, days, parse, t};

fn except(s: &mut Scenario, id: &str, finding: FindingScope) {
    let erin = support::person("erin");
    let revision = s.state.next_revision();
    s.state.exceptions.push(Exception {
        id: id.into(),
        scope: ExceptionScope::Finding { finding },
        justification: "reviewed and accepted for this release".into(),
        compensating_controls: vec!["WAF rule 9400 blocks the payload".into()],
        approver: Actor::from_principal(&erin, true),
        approver_role: "ciso".into(),
        approved_at: t(1),
        expires_at: t(0) + days(30),
        withdrawn_at: None,
        revision,
    });
}

#[test]
fn unsuppressed_sarif_errors_block_on_the_high_threshold() {
    let mut s = Scenario::passing_normal();
    let id = s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    let verdict = s.verdict(t(3));
    assert_eq!(
        verdict.findings,
        FindingTally {
            critical: 0,
            high: 2,
            medium: 1,
            low: 0
        }
    );
    let findings = verdict.category(GateCategory::Findings).unwrap();
    assert_eq!(findings.decision, GateDecision::Blocked);
    let over = findings
        .reasons
        .iter()
        .find(|r| r.code == "findings_over_threshold")
        .unwrap();
    assert_eq!(over.rule.field, "finding_thresholds.high");
    assert!(
        over.message
            .contains("2 open high finding(s), the class allows 0")
    );
    assert_eq!(over.evidence[0].id, id);
    // One warning is within `medium: 5`.
    assert!(
        findings
            .reasons
            .iter()
            .any(|r| r.code == "findings_within_threshold" && r.rule.field.ends_with("medium"))
    );
}

#[test]
fn a_suppressed_sarif_error_does_not_count() {
    let mut s = Scenario::passing_normal();
    s.attach("sarif", "sarif_error_suppressed.sarif", t(1));
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings, FindingTally::default());
    assert_eq!(
        verdict.category(GateCategory::Findings).unwrap().decision,
        GateDecision::Pass
    );
}

#[test]
fn a_sarif_rule_exception_clears_a_report_whose_results_it_covers() {
    let mut s = Scenario::passing_normal();
    s.attach("sarif", "sarif_error_suppressed.sarif", t(1));
    s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    except(
        &mut s,
        "EXC-SQLI",
        FindingScope::SarifRule {
            rule_id: "js/sql-injection".into(),
        },
    );
    except(
        &mut s,
        "EXC-UNUSED",
        FindingScope::SarifRule {
            rule_id: "js/unused-variable".into(),
        },
    );
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings, FindingTally::default());
    assert_eq!(
        verdict.category(GateCategory::Findings).unwrap().decision,
        GateDecision::Pass
    );
}

#[test]
fn a_sarif_rule_exception_removes_exactly_that_rules_results_per_level() {
    // The facts count unsuppressed results per rule and level: excepting js/sql-injection (the
    // two errors) leaves the warning of the other rule, and nothing high.
    let mut s = Scenario::passing_normal();
    s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    except(
        &mut s,
        "EXC-SQLI",
        FindingScope::SarifRule {
            rule_id: "js/sql-injection".into(),
        },
    );
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.high, 0);
    assert_eq!(verdict.findings.medium, 1);
    assert!(
        verdict
            .reasons()
            .all(|(_, r)| r.code != "findings_over_threshold"),
        "{verdict:#?}"
    );

    // Excepting the warning's rule instead leaves both errors counted.
    let mut s = Scenario::passing_normal();
    s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    except(
        &mut s,
        "EXC-UNUSED",
        FindingScope::SarifRule {
            rule_id: "js/unused-variable".into(),
        },
    );
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.high, 2);
    assert_eq!(verdict.findings.medium, 0);
}

#[test]
fn a_sarif_rule_exception_counts_the_worst_case_when_rules_were_truncated() {
    // When the log had more rules than the parser lists, per-rule counts are incomplete: the
    // remaining results could be errors, so the gate counts them so (fail closed) and says why.
    let mut s = Scenario::passing_normal();
    s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    let item = s.state.evidence.last_mut().unwrap();
    let EvidenceFacts::Parsed(Facts::Sarif(facts)) = &mut item.facts else {
        panic!("SARIF facts expected");
    };
    facts.rule_ids_truncated = true;
    except(
        &mut s,
        "EXC-SQLI",
        FindingScope::SarifRule {
            rule_id: "js/sql-injection".into(),
        },
    );
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.high, 1);
    let over = verdict
        .reasons()
        .find(|(_, r)| r.code == "findings_over_threshold")
        .unwrap()
        .1;
    assert!(over.message.contains("upper bound"), "{}", over.message);
}

#[test]
fn a_critical_vulnerability_blocks() {
    let mut s = Scenario::passing_normal();
    s.attach("cyclonedx", "cyclonedx_critical_lodash.json", t(1));
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.critical, 1);
    let over = verdict
        .reasons()
        .find(|(_, r)| r.code == "findings_over_threshold")
        .unwrap()
        .1;
    assert_eq!(over.rule.field, "finding_thresholds.critical");
    assert!(over.message.contains("CVE-2026-0001"), "{}", over.message);
}

#[test]
fn a_vex_not_affected_statement_clears_a_critical_vulnerability() {
    let mut s = Scenario::passing_normal();
    s.attach("cyclonedx", "cyclonedx_critical_lodash.json", t(1));
    let vex = s.attach("openvex", "openvex_lodash_not_affected.json", t(1));
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.critical, 0);
    let findings = verdict.category(GateCategory::Findings).unwrap();
    assert_eq!(findings.decision, GateDecision::Pass, "{findings:#?}");
    let cleared = findings
        .reasons
        .iter()
        .find(|r| r.code == "vulnerability_cleared")
        .unwrap();
    assert!(cleared.message.contains("not_affected per OpenVEX"));
    assert!(cleared.evidence.iter().any(|e| e.id == vex));
}

#[test]
fn a_vex_statement_for_another_product_does_not_clear() {
    let mut s = Scenario::passing_normal();
    s.attach("cyclonedx", "cyclonedx_critical_lodash.json", t(1));
    s.attach("openvex", "openvex_other_product_not_affected.json", t(1));
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.critical, 1);
    assert_eq!(
        verdict.category(GateCategory::Findings).unwrap().decision,
        GateDecision::Blocked
    );
}

#[test]
fn a_vulnerability_exception_clears_it_until_expiry() {
    let mut s = Scenario::passing_normal();
    s.attach("cyclonedx", "cyclonedx_critical_lodash.json", t(1));
    except(
        &mut s,
        "EXC-CVE",
        FindingScope::Vulnerability {
            id: "cve-2026-0001".into(),
        },
    );
    assert_eq!(s.verdict(t(3)).findings.critical, 0);
    let expired = s.verdict(t(0) + days(31));
    assert_eq!(expired.findings.critical, 1);
    assert!(
        codes(&expired, GateCategory::Findings, ReasonLevel::Block)
            .contains(&"exception_expired".to_owned())
    );
}

#[test]
fn a_junit_failure_blocks_and_a_test_exception_clears_it() {
    let mut s = Scenario::passing_normal();
    s.attach("junit", "junit_one_failure.xml", t(1));
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.high, 1);
    let over = verdict
        .reasons()
        .find(|(_, r)| r.code == "findings_over_threshold")
        .unwrap()
        .1;
    assert!(
        over.message
            .contains("payments.CardTest.rejects_expired_card")
    );

    except(
        &mut s,
        "EXC-FLAKY",
        FindingScope::TestCase {
            classname: Some("payments.CardTest".into()),
            name: "rejects_expired_card".into(),
        },
    );
    assert_eq!(s.verdict(t(3)).findings.high, 0);
}

#[test]
fn duplicate_evidence_is_idempotent_and_counted_once() {
    let mut s = Scenario::passing_normal();
    let first = s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    let revision = s.state.revision();
    let again = s.attach_new(parse("sarif", "sarif_two_errors_one_warning.sarif"), t(2));
    assert_eq!(again, Attachment::AlreadyAttached { existing: first });
    assert_eq!(s.state.revision(), revision, "a re-upload changes nothing");

    // Even if a store held the same bytes twice, the findings count once.
    let mut copy = s.state.evidence.last().unwrap().clone();
    copy.id = "ev-copy".into();
    copy.revision += 1;
    s.state.evidence.push(copy);
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.high, 2);
    assert!(
        verdict
            .reasons()
            .any(|(_, r)| r.code == "evidence_duplicate")
    );
}

#[test]
fn the_same_bytes_cannot_be_attached_as_another_kind() {
    let mut s = Scenario::passing_normal();
    s.attach("code-review", "code_review.md", t(1));
    let mut as_threat_model = parse("threat-model", "code_review.md");
    as_threat_model.supersedes = None;
    let err = gatehouse_core::gate::attach_evidence(
        &s.state,
        as_threat_model,
        "ev-x".into(),
        "alice",
        t(2),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        gatehouse_core::gate::AttachError::OtherKind { .. }
    ));
}

#[test]
fn a_superseding_scan_replaces_the_old_findings() {
    let mut s = Scenario::passing_normal();
    let old = s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    assert_eq!(s.verdict(t(3)).findings.high, 2);
    let mut rescan = parse("sarif", "sarif_error_suppressed.sarif");
    rescan.supersedes = Some(old.clone());
    s.attach_new(rescan, t(2));
    assert_eq!(s.verdict(t(3)).findings.high, 0);

    // Superseding an item twice is refused.
    let mut again = parse("sarif", "sarif_one_note.sarif");
    again.supersedes = Some(old);
    let err = gatehouse_core::gate::attach_evidence(&s.state, again, "ev-y".into(), "bob", t(2))
        .unwrap_err();
    assert!(matches!(
        err,
        gatehouse_core::gate::AttachError::AlreadySuperseded { .. }
    ));
}

#[test]
fn an_evidence_item_exception_covers_that_file_only() {
    let mut s = Scenario::passing_normal();
    let report = s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    except(
        &mut s,
        "EXC-REPORT",
        FindingScope::EvidenceItem {
            evidence: report.clone(),
        },
    );
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.findings.high, 0);
    assert!(
        verdict
            .reasons()
            .any(|(_, r)| r.code == "findings_excepted" && r.evidence[0].id == report)
    );
}
