//! Recording requirement statuses and risks: the decision functions refuse what the verdict
//! would not count, with typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fixtures/gate/support.rs"]
mod support;

use gatehouse_core::gate::{
    GateCategory, GateDecision, PrincipalKind, RequirementError, RequirementStatus, Risk,
    RiskError, RiskStatus, record_requirement_status, record_risk,
};
use support::{Scenario, days, person, pipeline, t};

fn deferral(role: &str) -> RequirementStatus {
    RequirementStatus::Deferred {
        approved_by: gatehouse_core::gate::Actor::from_principal(&person("bob"), true),
        role: role.into(),
        due: t(0) + days(14),
    }
}

#[test]
fn a_deferral_is_approved_by_whoever_records_it_in_an_approving_role() {
    let s = Scenario::passing_normal();
    let dave = person("dave");
    let record = record_requirement_status(
        &s.class,
        &s.state,
        &dave,
        PrincipalKind::Person,
        "SR-MON-1",
        deferral("security-lead"),
        t(2),
    )
    .unwrap();
    // The approver is the recorder, whatever the request claimed.
    match &record.status {
        RequirementStatus::Deferred { approved_by, .. } => assert_eq!(approved_by.id, "dave"),
        other => panic!("{other:?}"),
    }
    assert_eq!(record.revision, s.state.revision() + 1);

    let mut s = s;
    s.state.requirements.push(record);
    let verdict = s.verdict(t(3));
    assert_eq!(
        verdict
            .category(GateCategory::Requirements)
            .unwrap()
            .decision,
        GateDecision::Pass
    );
}

#[test]
fn deferrals_refuse_the_submitter_pipelines_foreign_roles_and_past_dates() {
    let s = Scenario::passing_normal();
    let record = |who: &gatehouse_core::identity::Principal, status| {
        record_requirement_status(
            &s.class,
            &s.state,
            who,
            support::kind_of(who),
            "SR-MON-1",
            status,
            t(2),
        )
    };
    assert!(matches!(
        record(&person("alice"), deferral("approver")),
        Err(RequirementError::Submitter { .. })
    ));
    assert!(matches!(
        record(&pipeline(), deferral("approver")),
        Err(RequirementError::NotAPerson { .. })
    ));
    // bob does not hold security-lead.
    assert!(matches!(
        record(&person("bob"), deferral("security-lead")),
        Err(RequirementError::RoleNotApproving { .. })
    ));
    let past = RequirementStatus::Deferred {
        approved_by: gatehouse_core::gate::Actor::from_principal(&person("dave"), true),
        role: "security-lead".into(),
        due: t(1),
    };
    assert!(matches!(
        record(&person("dave"), past),
        Err(RequirementError::DueInThePast { .. })
    ));
}

#[test]
fn completion_needs_attached_evidence_and_a_known_requirement() {
    let s = Scenario::passing_normal();
    let bob = person("bob");
    let record = |requirement: &str, evidence: Vec<String>| {
        record_requirement_status(
            &s.class,
            &s.state,
            &bob,
            PrincipalKind::Person,
            requirement,
            RequirementStatus::Complete { evidence },
            t(2),
        )
    };
    assert_eq!(
        record("SR-ENC-1", vec![]),
        Err(RequirementError::NoEvidence)
    );
    assert!(matches!(
        record("SR-ENC-1", vec!["ev-404".into()]),
        Err(RequirementError::UnknownEvidence { .. })
    ));
    assert!(matches!(
        record("SR-NOPE", vec!["ev-1".into()]),
        Err(RequirementError::UnknownRequirement { .. })
    ));
    assert!(record("SR-ENC-1", vec!["ev-1".into()]).is_ok());
    assert!(matches!(
        record_requirement_status(
            &s.class,
            &s.state,
            &bob,
            PrincipalKind::Person,
            "SR-ENC-1",
            RequirementStatus::Excepted {
                exception: "EXC-404".into()
            },
            t(2),
        ),
        Err(RequirementError::ExceptionMismatch { .. })
    ));
}

#[test]
fn a_risk_must_be_on_the_models_scales_and_its_change_stales_approvals() {
    let mut s = Scenario::passing_normal();
    let risk = Risk {
        id: "R-1".into(),
        title: "Shared admin credentials on the batch host".into(),
        likelihood: 2,
        impact: 2,
        status: RiskStatus::Open,
        owner: "team-payments".into(),
        revision: 0,
    };
    let off_scale = Risk {
        likelihood: 6,
        ..risk.clone()
    };
    assert!(matches!(
        record_risk(&s.risk_model, &s.state, off_scale),
        Err(RiskError::OffScale { .. })
    ));
    let ownerless = Risk {
        owner: " ".into(),
        ..risk.clone()
    };
    assert!(matches!(
        record_risk(&s.risk_model, &s.state, ownerless),
        Err(RiskError::Incomplete { .. })
    ));
    let recorded = record_risk(&s.risk_model, &s.state, risk).unwrap();
    assert_eq!(recorded.revision, s.state.revision() + 1);
    s.state.risks.push(recorded);
    // A new risk is new material: the earlier approvals are stale.
    let verdict = s.verdict(t(3));
    assert_eq!(verdict.decision, GateDecision::Pending);
    assert!(
        verdict
            .reasons()
            .any(|(_, r)| r.code == "approval_stale" && r.message.contains("risk R-1 changed"))
    );
}
