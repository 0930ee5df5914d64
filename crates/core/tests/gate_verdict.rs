//! The verdict per gate category: a complete release passes, and each way a category can fail
//! makes it (and the release) pending or blocked, with a reason naming the rule and evidence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fixtures/gate/support.rs"]
mod support;

use gatehouse_core::gate::{
    EvidenceFacts, Exception, ExceptionScope, GateCategory, GateDecision, ReasonLevel,
    RequirementStatus, Risk, RiskStatus, evaluate, evaluate_in_pack,
};
use support::{Scenario, codes, days, t};

#[test]
fn a_complete_release_passes_every_category() {
    let s = Scenario::passing_normal();
    let verdict = s.verdict(t(3));
    for category in &verdict.categories {
        assert_eq!(
            category.decision,
            GateDecision::Pass,
            "{:?}: {:#?}",
            category.category,
            category.reasons
        );
    }
    assert_eq!(verdict.decision, GateDecision::Pass);
    assert_eq!(verdict.categories.len(), 6);
    assert_eq!(verdict.revision, s.state.revision());
    assert!(verdict.allows_release());
    // Every reason names the class and a field.
    assert!(verdict.reasons().all(|(_, r)| r.rule.class == "normal"));
}

#[test]
fn evidence_present_reasons_name_the_item_and_digest() {
    let s = Scenario::passing_normal();
    let verdict = s.verdict(t(3));
    let evidence = verdict.category(GateCategory::Evidence).unwrap();
    let sast = evidence
        .reasons
        .iter()
        .find(|r| r.rule.field == "required_evidence[0]")
        .unwrap();
    assert_eq!(sast.code, "evidence_present");
    let item = &s.state.evidence[0];
    assert_eq!(sast.evidence[0].id, item.id);
    assert_eq!(sast.evidence[0].digest, format!("sha256:{}", item.sha256));
}

#[test]
fn missing_evidence_is_pending_and_named() {
    let mut s = Scenario::passing_normal();
    s.state.evidence.retain(|e| e.kind.as_str() != "junit");
    let verdict = s.verdict(t(3));
    let evidence = verdict.category(GateCategory::Evidence).unwrap();
    assert_eq!(evidence.decision, GateDecision::Pending);
    let missing = evidence
        .reasons
        .iter()
        .find(|r| r.code == "evidence_missing")
        .unwrap();
    assert_eq!(missing.rule.field, "required_evidence[2]");
    assert!(
        missing.message.contains("test_results"),
        "{}",
        missing.message
    );
    assert_ne!(verdict.decision, GateDecision::Pass);
}

#[test]
fn evidence_older_than_its_max_age_blocks() {
    let s = Scenario::passing_normal();
    // sast max_age is 7d; the scan was attached at t(1).
    let fresh = s.verdict(t(1) + days(7));
    assert_eq!(
        fresh.category(GateCategory::Evidence).unwrap().decision,
        GateDecision::Pass
    );
    let stale = s.verdict(t(2) + days(7));
    let evidence = stale.category(GateCategory::Evidence).unwrap();
    assert_eq!(evidence.decision, GateDecision::Blocked);
    let reason = evidence
        .reasons
        .iter()
        .find(|r| r.code == "evidence_stale")
        .unwrap();
    assert_eq!(reason.rule.field, "required_evidence[0].max_age");
    assert_eq!(reason.evidence.len(), 1);
    // code_review has no max_age and never goes stale.
    assert!(
        evidence
            .reasons
            .iter()
            .any(|r| r.rule.field == "required_evidence[3]" && r.code == "evidence_present")
    );
}

#[test]
fn an_unknown_required_evidence_kind_blocks() {
    let mut s = Scenario::new("pentested");
    s.attach("code-review", "code_review.md", t(1));
    let verdict = s.verdict(t(2));
    let evidence = verdict.category(GateCategory::Evidence).unwrap();
    assert_eq!(evidence.decision, GateDecision::Blocked);
    let reason = &evidence.reasons[0];
    assert_eq!(reason.code, "unknown_evidence_kind");
    assert_eq!(reason.rule.field, "required_evidence[0].kind");
    assert!(reason.message.contains("pentest_report"));
    assert_eq!(verdict.decision, GateDecision::Blocked);
}

#[test]
fn a_pack_declared_document_kind_is_satisfied_by_that_document() {
    let mut s = Scenario::new("pentested");
    s.attach("pentest-report", "code_review.md", t(1));
    let verdict = s.verdict(t(2));
    let evidence = verdict.category(GateCategory::Evidence).unwrap();
    assert_eq!(evidence.decision, GateDecision::Pass, "{evidence:#?}");
}

#[test]
fn unreadable_facts_block_evidence_and_findings() {
    let mut s = Scenario::passing_normal();
    s.state.evidence[0].facts = EvidenceFacts::Unreadable {
        reason: "stored facts use an unknown format version".into(),
    };
    let verdict = s.verdict(t(3));
    assert!(
        codes(&verdict, GateCategory::Evidence, ReasonLevel::Block)
            .contains(&"evidence_unreadable".to_owned())
    );
    assert!(
        codes(&verdict, GateCategory::Findings, ReasonLevel::Block)
            .contains(&"findings_unknown".to_owned())
    );
    // SR-ENC-1 points at the unreadable item.
    assert!(
        codes(&verdict, GateCategory::Requirements, ReasonLevel::Block)
            .contains(&"requirement_evidence_invalid".to_owned())
    );
    assert_eq!(verdict.decision, GateDecision::Blocked);
}

#[test]
fn an_attestation_about_another_artifact_blocks() {
    let mut s = Scenario::new("attested");
    s.attach("in-toto", "intoto_statement_other_subject.json", t(1));
    let verdict = s.verdict(t(2));
    let blocking = codes(&verdict, GateCategory::Evidence, ReasonLevel::Block);
    assert!(
        blocking.contains(&"attestation_subject_mismatch".to_owned()),
        "{blocking:?}"
    );
    assert!(blocking.contains(&"evidence_untrustworthy".to_owned()));
    let mismatch = verdict
        .reasons()
        .find(|(_, r)| r.code == "attestation_subject_mismatch")
        .unwrap()
        .1;
    assert!(
        mismatch.message.contains("sha256:1111"),
        "{}",
        mismatch.message
    );
}

#[test]
fn requirements_without_status_are_pending() {
    let mut s = Scenario::passing_normal();
    s.state.requirements.clear();
    let verdict = s.verdict(t(3));
    let requirements = verdict.category(GateCategory::Requirements).unwrap();
    assert_eq!(requirements.decision, GateDecision::Pending);
    let fields: Vec<&str> = requirements
        .reasons
        .iter()
        .filter(|r| r.code == "requirement_without_status")
        .map(|r| r.rule.field.as_str())
        .collect();
    assert_eq!(
        fields,
        ["security_requirements[0]", "security_requirements[1]"]
    );
}

#[test]
fn a_requirement_pointing_at_missing_evidence_blocks() {
    let mut s = Scenario::passing_normal();
    s.set_requirement(
        "SR-ENC-1",
        RequirementStatus::Complete {
            evidence: vec!["ev-404".into()],
        },
        t(2),
    );
    let verdict = s.verdict(t(3));
    let reason = verdict
        .reasons()
        .find(|(_, r)| r.code == "requirement_evidence_invalid")
        .unwrap()
        .1;
    assert!(reason.message.contains("ev-404 does not exist"));
}

#[test]
fn a_deferral_needs_an_approving_role_and_a_future_due_date() {
    let mut s = Scenario::passing_normal();
    let dave = support::person("dave");
    s.set_requirement(
        "SR-MON-1",
        RequirementStatus::Deferred {
            approved_by: gatehouse_core::gate::Actor::from_principal(&dave, true),
            role: "security-lead".into(),
            due: t(0) + days(14),
        },
        t(2),
    );
    // Approvals were given before the deferral and are stale now; look at requirements only.
    let verdict = s.verdict(t(3));
    assert_eq!(
        verdict
            .category(GateCategory::Requirements)
            .unwrap()
            .decision,
        GateDecision::Pass
    );
    let overdue = s.verdict(t(0) + days(15));
    assert!(
        codes(&overdue, GateCategory::Requirements, ReasonLevel::Block)
            .contains(&"deferral_overdue".to_owned())
    );

    // Deferred by the submitter: does not count.
    let alice = support::person("alice");
    s.set_requirement(
        "SR-MON-1",
        RequirementStatus::Deferred {
            approved_by: gatehouse_core::gate::Actor::from_principal(&alice, true),
            role: "approver".into(),
            due: t(0) + days(14),
        },
        t(2),
    );
    let verdict = s.verdict(t(3));
    assert!(
        codes(&verdict, GateCategory::Requirements, ReasonLevel::Block)
            .contains(&"deferral_invalid".to_owned())
    );
}

#[test]
fn context_without_summary_or_artifacts_blocks() {
    let mut s = Scenario::passing_normal();
    s.state.release.change.summary = String::new();
    s.state.release.artifact_digests.clear();
    let verdict = s.verdict(t(3));
    let blocking = codes(
        &verdict,
        GateCategory::ContextAndOwnership,
        ReasonLevel::Block,
    );
    assert_eq!(blocking, ["change_summary_missing", "artifacts_missing"]);
}

#[test]
fn risks_without_a_risk_model_block() {
    let mut s = Scenario::passing_normal();
    let revision = s.state.next_revision();
    s.state.risks.push(Risk {
        id: "R-1".into(),
        title: "Key material in logs".into(),
        likelihood: 2,
        impact: 2,
        status: RiskStatus::Open,
        owner: "team-payments".into(),
        revision,
    });
    let verdict = evaluate(&s.class, None, &s.state, t(3));
    let risks = verdict.category(GateCategory::Risks).unwrap();
    assert_eq!(risks.decision, GateDecision::Blocked);
    assert_eq!(risks.reasons[0].code, "risk_model_missing");
    assert_eq!(risks.reasons[0].rule.field, "delegated_risk.risk_model");
}

#[test]
fn a_risk_off_the_models_scales_blocks() {
    let mut s = Scenario::passing_normal();
    let revision = s.state.next_revision();
    s.state.risks.push(Risk {
        id: "R-1".into(),
        title: "Unscorable".into(),
        likelihood: 7,
        impact: 2,
        status: RiskStatus::Open,
        owner: "team-payments".into(),
        revision,
    });
    let verdict = s.verdict(t(3));
    assert!(
        codes(&verdict, GateCategory::Risks, ReasonLevel::Block)
            .contains(&"risk_unscorable".to_owned())
    );
}

#[test]
fn a_release_whose_class_is_not_in_the_pack_is_blocked_everywhere() {
    let mut s = Scenario::passing_normal();
    s.state.release.release_class = "no-such-class".into();
    let verdict = evaluate_in_pack(&support::PACK, &s.state, t(3));
    assert_eq!(verdict.decision, GateDecision::Blocked);
    assert!(
        verdict
            .categories
            .iter()
            .all(|c| c.decision == GateDecision::Blocked && c.reasons[0].code == "class_missing")
    );
}

#[test]
fn evaluate_in_pack_finds_the_class_and_risk_model() {
    let s = Scenario::passing_normal();
    let verdict = evaluate_in_pack(&support::PACK, &s.state, t(3));
    assert_eq!(verdict, s.verdict(t(3)));
}

#[test]
fn an_evidence_exception_covers_missing_evidence_until_it_expires() {
    let mut s = Scenario::passing_normal();
    s.state.evidence.retain(|e| e.kind.as_str() != "cyclonedx");
    let erin = support::person("erin");
    let revision = s.state.next_revision();
    s.state.exceptions.push(Exception {
        id: "EXC-SBOM".into(),
        scope: ExceptionScope::Evidence {
            kind: "sbom".into(),
        },
        justification: "SBOM generator broken for this base image".into(),
        compensating_controls: vec!["manual dependency review".into()],
        approver: gatehouse_core::gate::Actor::from_principal(&erin, true),
        approver_role: "ciso".into(),
        approved_at: t(1),
        expires_at: t(0) + days(30),
        withdrawn_at: None,
        revision,
    });
    let verdict = s.verdict(t(3));
    let evidence = verdict.category(GateCategory::Evidence).unwrap();
    assert_eq!(evidence.decision, GateDecision::Pass, "{evidence:#?}");
    assert!(
        evidence
            .reasons
            .iter()
            .any(|r| r.code == "evidence_excepted")
    );
    let later = s.verdict(t(0) + days(31));
    let evidence = later.category(GateCategory::Evidence).unwrap();
    assert_eq!(evidence.decision, GateDecision::Blocked);
    assert!(
        evidence
            .reasons
            .iter()
            .any(|r| r.code == "exception_expired")
    );
    assert!(
        evidence
            .reasons
            .iter()
            .any(|r| r.code == "evidence_missing")
    );
}
