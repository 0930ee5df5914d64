//! Approvals: separation of duties, quorum, ordering, staleness (the approval/upload race),
//! rejections, risk escalation, emergency retrospectives and bypasses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fixtures/gate/support.rs"]
mod support;

use gatehouse_core::gate::{
    Actor, ApprovalDecision, ApprovalError, ApprovalRequest, ApprovalTarget, BypassError,
    EmergencyRetrospective, GateCategory, GateDecision, PrincipalKind, ReasonLevel, Risk,
    RiskStatus, can_approve, record_bypass,
};
use support::{Scenario, codes, days, person, pipeline, t};

fn request(s: &Scenario, index: usize) -> ApprovalRequest {
    ApprovalRequest {
        target: ApprovalTarget::Step { index },
        decision: ApprovalDecision::Approve,
        comment: String::new(),
        seen_revision: s.state.revision(),
    }
}

/// A `normal` release with everything but approvals.
fn unapproved() -> Scenario {
    let mut s = Scenario::passing_normal();
    s.state.approvals.clear();
    s
}

#[test]
fn the_submitter_cannot_approve() {
    let s = unapproved();
    let alice = person("alice"); // submitter, holds `approver`
    let err = can_approve(
        &s.class,
        Some(&s.risk_model),
        &s.state,
        &alice,
        PrincipalKind::Person,
        &request(&s, 0),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ApprovalError::Submitter {
            approver: "alice".into()
        }
    );

    // A record written around the rules does not count, and blocks.
    let mut s = unapproved();
    s.approve("bob", 0, t(2)).unwrap();
    s.approve("dave", 1, t(2)).unwrap();
    s.state.approvals[0].approver = Actor::from_principal(&alice, true);
    let verdict = s.verdict(t(3));
    let approvals = verdict.category(GateCategory::Approvals).unwrap();
    assert_eq!(approvals.decision, GateDecision::Blocked);
    let invalid = approvals
        .reasons
        .iter()
        .find(|r| r.code == "approval_invalid")
        .unwrap();
    assert_eq!(invalid.rule.field, "gate.separation_of_duties");
    assert!(invalid.message.contains("submitted the release"));
}

#[test]
fn a_pipeline_cannot_approve() {
    let s = unapproved();
    let ci = pipeline();
    assert_eq!(support::kind_of(&ci), PrincipalKind::Pipeline);
    let err = can_approve(
        &s.class,
        Some(&s.risk_model),
        &s.state,
        &ci,
        support::kind_of(&ci),
        &request(&s, 0),
    )
    .unwrap_err();
    assert!(matches!(err, ApprovalError::NotAPerson { .. }), "{err}");
}

#[test]
fn an_approver_needs_the_steps_role() {
    let s = unapproved();
    let err = can_approve(
        &s.class,
        Some(&s.risk_model),
        &s.state,
        &person("bob"),
        PrincipalKind::Person,
        &request(&s, 1),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ApprovalError::MissingRole { role, .. } if role == "security-lead"),
        "{err}"
    );
}

#[test]
fn steps_are_approved_in_order() {
    let mut s = unapproved();
    let err = s.approve("dave", 1, t(2)).unwrap_err();
    assert_eq!(
        err,
        ApprovalError::PreviousStepIncomplete {
            step: 2,
            previous: 1
        }
    );
    s.approve("bob", 0, t(2)).unwrap();
    s.approve("dave", 1, t(2)).unwrap();
    assert_eq!(s.verdict(t(3)).decision, GateDecision::Pass);
}

#[test]
fn one_identity_fills_one_approval_slot() {
    let mut s = unapproved();
    // carol holds both `approver` and `security-lead`.
    s.approve("carol", 0, t(2)).unwrap();
    let err = s.approve("carol", 1, t(2)).unwrap_err();
    assert!(matches!(err, ApprovalError::SlotTaken { .. }), "{err}");
    let err = s.approve("carol", 0, t(2)).unwrap_err();
    assert!(matches!(err, ApprovalError::AlreadyDecided { .. }), "{err}");

    // Forced into the state, the double slot blocks.
    let mut forced = s.state.approvals[0].clone();
    forced.id = "ap-forced".into();
    forced.target = ApprovalTarget::Step { index: 1 };
    forced.role = "security-lead".into();
    s.state.approvals.push(forced);
    let verdict = s.verdict(t(3));
    assert!(
        codes(&verdict, GateCategory::Approvals, ReasonLevel::Block)
            .contains(&"approval_slots_shared".to_owned())
    );
}

#[test]
fn quorum_two_with_one_approval_is_pending() {
    let mut s = Scenario::new("two-approvers");
    s.attach("code-review", "code_review.md", t(1));
    s.approve("bob", 0, t(2)).unwrap();
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.decision, GateDecision::Pending);
    let approvals = verdict.category(GateCategory::Approvals).unwrap();
    let pending = approvals
        .reasons
        .iter()
        .find(|r| r.code == "approval_pending")
        .unwrap();
    assert_eq!(pending.rule.field, "approver_path[0]");
    assert!(
        pending.message.contains("1 of 2 approval(s)"),
        "{}",
        pending.message
    );
    assert!(pending.message.contains("awaiting 1 more"));
    s.approve("carol", 0, t(2)).unwrap();
    assert_eq!(s.verdict(t(3)).decision, GateDecision::Pass);
}

#[test]
fn an_approval_racing_an_evidence_upload_goes_stale() {
    // Upload lands after the approval: the approval is stale at evaluation.
    let mut s = Scenario::passing_normal();
    assert_eq!(s.verdict(t(3)).decision, GateDecision::Pass);
    let upload = s.attach("sarif", "sarif_error_suppressed.sarif", t(2));
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.decision, GateDecision::Pending);
    let stale: Vec<_> = verdict
        .category(GateCategory::Approvals)
        .unwrap()
        .reasons
        .iter()
        .filter(|r| r.code == "approval_stale")
        .collect();
    assert_eq!(stale.len(), 2, "both steps need re-approval");
    assert!(stale[0].message.contains(&format!("evidence {upload}")));
    assert_eq!(stale[0].evidence[0].id, upload);

    // Approval submitted against the revision before the upload: refused, naming the change.
    let reviewed = s.state.revision() - 1;
    let err = can_approve(
        &s.class,
        Some(&s.risk_model),
        &s.state,
        &person("bob"),
        PrincipalKind::Person,
        &ApprovalRequest {
            seen_revision: reviewed,
            ..request(&s, 0)
        },
    )
    .unwrap_err();
    match err {
        ApprovalError::StaleReview {
            seen,
            current,
            changes,
        } => {
            assert_eq!((seen, current), (reviewed, reviewed + 1));
            assert!(changes[0].contains(&upload));
        }
        other => panic!("expected StaleReview, got {other}"),
    }

    // Re-approving at the current revision passes again.
    s.approve("bob", 0, t(3)).unwrap();
    s.approve("dave", 1, t(3)).unwrap();
    assert_eq!(s.verdict(t(4)).decision, GateDecision::Pass);
}

#[test]
fn a_rejection_blocks_and_needs_a_comment() {
    let mut s = unapproved();
    let bob = person("bob");
    let mut no_comment = request(&s, 0);
    no_comment.decision = ApprovalDecision::Reject;
    assert_eq!(
        can_approve(
            &s.class,
            Some(&s.risk_model),
            &s.state,
            &bob,
            PrincipalKind::Person,
            &no_comment
        ),
        Err(ApprovalError::CommentRequired)
    );
    s.decide(
        &bob,
        ApprovalTarget::Step { index: 0 },
        ApprovalDecision::Reject,
        t(2),
    )
    .unwrap();
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.decision, GateDecision::Blocked);
    assert!(
        codes(&verdict, GateCategory::Approvals, ReasonLevel::Block)
            .contains(&"approval_rejected".to_owned())
    );
}

fn add_risk(s: &mut Scenario, likelihood: u32, impact: u32) {
    let revision = s.state.next_revision();
    s.state.risks.push(Risk {
        id: "R-7".into(),
        title: "Tokenisation key reachable from the batch host".into(),
        likelihood,
        impact,
        status: RiskStatus::Open,
        owner: "team-payments".into(),
        revision,
    });
}

#[test]
fn a_risk_above_the_threshold_needs_escalation_by_the_named_role() {
    let mut s = unapproved();
    add_risk(&mut s, 4, 4); // 16 > delegated max 9
    let verdict = s.verdict(t(3));
    let risks = verdict.category(GateCategory::Risks).unwrap();
    assert_eq!(risks.decision, GateDecision::Pending);
    let reason = &risks.reasons[0];
    assert_eq!(reason.code, "risk_escalation_required");
    assert_eq!(reason.rule.field, "delegated_risk.escalate_to");
    assert!(
        reason.message.contains("scores 16 (High"),
        "{}",
        reason.message
    );
    assert!(reason.message.contains("role `ciso`"));

    // The release cannot be approved before the escalation.
    let err = s.approve("bob", 0, t(2)).unwrap_err();
    assert_eq!(
        err,
        ApprovalError::EscalationOutstanding {
            risks: vec!["R-7".into()]
        }
    );
    // Only the escalation role may accept it.
    let escalation = ApprovalTarget::RiskEscalation { risk: "R-7".into() };
    let err = s
        .decide(
            &person("dave"),
            escalation.clone(),
            ApprovalDecision::Approve,
            t(2),
        )
        .unwrap_err();
    assert!(matches!(err, ApprovalError::MissingRole { .. }), "{err}");
    s.decide(&person("erin"), escalation, ApprovalDecision::Approve, t(2))
        .unwrap();
    s.approve("bob", 0, t(2)).unwrap();
    s.approve("dave", 1, t(2)).unwrap();
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.decision, GateDecision::Pass, "{verdict:#?}");
}

#[test]
fn a_risk_within_the_threshold_needs_no_escalation() {
    let mut s = unapproved();
    add_risk(&mut s, 3, 3); // 9 == max
    let err = s
        .decide(
            &person("erin"),
            ApprovalTarget::RiskEscalation { risk: "R-7".into() },
            ApprovalDecision::Approve,
            t(2),
        )
        .unwrap_err();
    assert!(matches!(err, ApprovalError::EscalationNotNeeded { .. }));
    s.approve("bob", 0, t(2)).unwrap();
    s.approve("dave", 1, t(2)).unwrap();
    assert_eq!(s.verdict(t(3)).decision, GateDecision::Pass);
}

#[test]
fn an_emergency_retrospective_overdue_blocks_and_a_valid_one_clears_it() {
    let mut s = Scenario::new("emergency");
    s.attach("code-review", "code_review.md", t(1));
    s.approve("dave", 0, t(1)).unwrap();
    s.state.deployed_at = Some(t(2));
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.decision, GateDecision::Pass, "{verdict:#?}");
    assert_eq!(verdict.retrospective_due, Some(t(2) + days(5)));
    assert!(
        verdict
            .reasons()
            .any(|(_, r)| r.code == "retrospective_due")
    );

    let late = s.verdict(t(2) + days(6));
    let approvals = late.category(GateCategory::Approvals).unwrap();
    let overdue = approvals
        .reasons
        .iter()
        .find(|r| r.code == "retrospective_overdue")
        .unwrap();
    assert_eq!(overdue.rule.field, "emergency.retrospective_within");
    assert!(
        overdue.message.contains("1d 0h overdue"),
        "{}",
        overdue.message
    );
    assert_eq!(approvals.decision, GateDecision::Blocked);

    // A retrospective by the submitter does not count.
    s.state.retrospective = Some(EmergencyRetrospective {
        reviewer: Actor::from_principal(&person("alice"), true),
        role: "ciso".into(),
        completed_at: t(30),
        summary: "fine".into(),
    });
    assert!(
        codes(
            &s.verdict(t(31)),
            GateCategory::Approvals,
            ReasonLevel::Block
        )
        .contains(&"retrospective_invalid".to_owned())
    );
    s.state.retrospective = Some(EmergencyRetrospective {
        reviewer: Actor::from_principal(&person("erin"), true),
        role: "ciso".into(),
        completed_at: t(30),
        summary: "Hotfix reviewed; follow-up CHG-1050 adds the missing regression test.".into(),
    });
    // (The 1-day code review has aged out by now; the approvals category is what clears.)
    let done = s.verdict(t(2) + days(6));
    assert_eq!(
        done.category(GateCategory::Approvals).unwrap().decision,
        GateDecision::Pass
    );
    assert!(done.reasons().any(|(_, r)| r.code == "retrospective_done"));
}

#[test]
fn a_bypass_needs_its_permission_a_person_and_a_reason() {
    let mut s = unapproved();
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.decision, GateDecision::Pending);
    let erin = person("erin");
    let bypass = |who: &gatehouse_core::identity::Principal, permitted: bool, reason: &str| {
        record_bypass(
            &s.state,
            who,
            support::kind_of(who),
            permitted,
            reason,
            &verdict,
            "bp-1".into(),
            t(3),
        )
    };
    let reason = "payment outage; fix must ship now (INC-77)";
    assert!(matches!(
        bypass(&erin, false, reason),
        Err(BypassError::PermissionDenied { .. })
    ));
    assert!(matches!(
        bypass(&pipeline(), true, reason),
        Err(BypassError::NotAPerson { .. })
    ));
    assert!(matches!(
        bypass(&person("alice"), true, reason),
        Err(BypassError::Submitter { .. })
    ));
    assert_eq!(
        bypass(&erin, true, "  ok  "),
        Err(BypassError::ReasonRequired)
    );
    let recorded = bypass(&erin, true, reason).unwrap();
    assert_eq!(recorded.overridden, GateDecision::Pending);
    s.state.bypasses.push(recorded);

    // The decision stays honest; the bypass is reported next to it.
    let after = s.verdict(t(3));
    assert_eq!(after.decision, GateDecision::Pending);
    assert!(after.allows_release());
    assert_eq!(after.bypass.as_ref().unwrap().by.id, "erin");
    assert!(after.reasons().any(|(_, r)| r.code == "bypassed"));

    // A later change voids it.
    s.attach("sarif", "sarif_error_suppressed.sarif", t(4));
    let changed = s.verdict(t(5));
    assert!(changed.bypass.is_none());
    assert!(!changed.allows_release());
}

#[test]
fn a_passing_gate_cannot_be_bypassed_and_stale_verdicts_are_refused() {
    let mut s = Scenario::passing_normal();
    let verdict = s.verdict(t(3));
    let erin = person("erin");
    let reason = "no reason to bypass a passing gate";
    assert_eq!(
        record_bypass(
            &s.state,
            &erin,
            PrincipalKind::Person,
            true,
            reason,
            &verdict,
            "bp".into(),
            t(3)
        ),
        Err(BypassError::NothingToBypass)
    );
    s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(3));
    assert!(matches!(
        record_bypass(
            &s.state,
            &erin,
            PrincipalKind::Person,
            true,
            reason,
            &verdict,
            "bp".into(),
            t(3)
        ),
        Err(BypassError::StaleVerdict { .. })
    ));
}

#[test]
fn an_approval_claiming_a_future_revision_blocks_instead_of_staying_fresh() {
    let mut s = Scenario::passing_normal();
    s.state.approvals[0].revision = s.state.revision() + 10;
    let verdict = s.verdict(t(3));
    let invalid = verdict
        .reasons()
        .find(|(_, r)| r.code == "approval_invalid")
        .unwrap()
        .1;
    assert!(
        invalid.message.contains("claims revision"),
        "{}",
        invalid.message
    );
    assert_eq!(verdict.decision, GateDecision::Blocked);
}

#[test]
fn quorum_counts_identities_not_names() {
    let mut s = Scenario::new("two-approvers");
    s.attach("code-review", "code_review.md", t(1));
    s.approve("bob", 0, t(2)).unwrap();
    s.approve("carol", 0, t(2)).unwrap();
    // Two people who happen to share a display name are still two approvers.
    for approval in &mut s.state.approvals {
        approval.approver.display = "J. Smith".into();
    }
    assert_eq!(s.verdict(t(3)).decision, GateDecision::Pass);
}
