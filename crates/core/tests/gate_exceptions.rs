//! Exceptions: they count while valid, warn before expiry, stop counting and raise a blocking
//! finding once expired (between two checks), and never count when they break the rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fixtures/gate/support.rs"]
mod support;

use gatehouse_core::gate::{
    Actor, EXCEPTION_WARNING_WINDOW, Exception, ExceptionError, ExceptionScope, GateCategory,
    GateDecision, ReasonLevel, RequirementStatus, record_exception,
};
use support::{Scenario, codes, days, person, t};

fn requirement_exception(approver: &str, role: &str) -> Exception {
    Exception {
        id: "EXC-ENC".into(),
        scope: ExceptionScope::Requirement {
            id: "SR-ENC-1".into(),
        },
        justification: "Legacy table migrates to the managed key in CHG-1100".into(),
        compensating_controls: vec![
            "column-level access restricted to the payments service account".into(),
            "daily export review".into(),
        ],
        approver: Actor::from_principal(&person(approver), true),
        approver_role: role.into(),
        approved_at: t(1),
        expires_at: t(0) + days(20),
        withdrawn_at: None,
        revision: 0,
    }
}

/// A passing `normal` release whose SR-ENC-1 is excepted, approved after the exception.
fn excepted() -> Scenario {
    excepted_until(t(0) + days(20))
}

fn excepted_until(expires_at: jiff::Timestamp) -> Scenario {
    let mut s = Scenario::passing_normal();
    s.state.approvals.clear();
    let mut x = requirement_exception("erin", "ciso");
    x.expires_at = expires_at;
    x.revision = s.state.next_revision();
    s.state.exceptions.push(x);
    s.set_requirement(
        "SR-ENC-1",
        RequirementStatus::Excepted {
            exception: "EXC-ENC".into(),
        },
        t(1),
    );
    s.approve("bob", 0, t(2)).unwrap();
    s.approve("dave", 1, t(2)).unwrap();
    s
}

#[test]
fn an_exception_whose_expiry_passes_between_two_checks_stops_counting() {
    // Within the evidence's 7-day freshness, so only the exception changes between checks.
    let s = excepted_until(t(0) + days(6));
    let before = s.verdict(t(0) + days(6) - jiff::SignedDuration::from_secs(1));
    assert_eq!(before.decision, GateDecision::Pass, "{before:#?}");
    assert!(
        before
            .reasons()
            .any(|(_, r)| r.code == "requirement_excepted")
    );

    let after = s.verdict(t(0) + days(6));
    assert_eq!(after.decision, GateDecision::Blocked);
    let blocking = codes(&after, GateCategory::Requirements, ReasonLevel::Block);
    assert!(
        blocking.contains(&"requirement_unmet".to_owned()),
        "{blocking:?}"
    );
    assert!(blocking.contains(&"exception_expired".to_owned()));
    let expired = after
        .reasons()
        .find(|(_, r)| r.code == "exception_expired")
        .unwrap()
        .1;
    assert_eq!(expired.rule.field, "gate.exception_expiry");
    assert!(expired.message.contains("EXC-ENC"));
}

#[test]
fn an_exception_about_to_expire_warns_without_blocking() {
    let s = excepted();
    let expires = t(0) + days(20);
    let inside = s.verdict(expires - EXCEPTION_WARNING_WINDOW);
    assert_eq!(
        inside
            .category(GateCategory::Requirements)
            .unwrap()
            .decision,
        GateDecision::Pass
    );
    assert_eq!(
        codes(&inside, GateCategory::Requirements, ReasonLevel::Warning),
        ["exception_expiring"]
    );
    let outside = s.verdict(expires - EXCEPTION_WARNING_WINDOW - days(1));
    assert!(codes(&outside, GateCategory::Requirements, ReasonLevel::Warning).is_empty());
}

#[test]
fn a_withdrawn_exception_leaves_the_requirement_without_status() {
    let mut s = excepted();
    s.state.exceptions[0].withdrawn_at = Some(t(2));
    s.state.exceptions[0].revision = s.state.next_revision();
    let verdict = s.verdict(t(3));
    let requirements = verdict.category(GateCategory::Requirements).unwrap();
    assert_eq!(requirements.decision, GateDecision::Pending);
    assert!(
        requirements
            .reasons
            .iter()
            .any(|r| r.message.contains("withdrawn"))
    );
}

#[test]
fn an_exception_approved_by_the_submitter_does_not_count() {
    let mut s = excepted();
    s.state.exceptions[0].approver = Actor::from_principal(&person("alice"), true);
    s.state.exceptions[0].approver_role = "approver".into();
    let verdict = s.verdict(t(3));
    let blocking = codes(&verdict, GateCategory::Requirements, ReasonLevel::Block);
    assert!(
        blocking.contains(&"exception_invalid".to_owned()),
        "{blocking:?}"
    );
    assert!(blocking.contains(&"requirement_unmet".to_owned()));
}

#[test]
fn record_exception_enforces_the_same_rules() {
    let s = Scenario::passing_normal();
    let erin = person("erin");
    let ok = record_exception(
        &s.class,
        &s.state,
        &erin,
        requirement_exception("erin", "ciso"),
    );
    assert!(ok.is_ok(), "{ok:?}");

    let alice = person("alice");
    let err = record_exception(
        &s.class,
        &s.state,
        &alice,
        requirement_exception("alice", "approver"),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ExceptionError::Invalid { why } if why.contains("submitter")),
        "{err}"
    );

    // bob does not hold ciso.
    let err = record_exception(
        &s.class,
        &s.state,
        &person("bob"),
        requirement_exception("bob", "ciso"),
    )
    .unwrap_err();
    assert!(matches!(err, ExceptionError::MissingRole { .. }), "{err}");

    let mut unknown = requirement_exception("erin", "ciso");
    unknown.scope = ExceptionScope::Requirement {
        id: "SR-NOPE".into(),
    };
    assert!(matches!(
        record_exception(&s.class, &s.state, &erin, unknown),
        Err(ExceptionError::UnknownScope { .. })
    ));

    let mut backwards = requirement_exception("erin", "ciso");
    backwards.expires_at = backwards.approved_at;
    assert!(matches!(
        record_exception(&s.class, &s.state, &erin, backwards),
        Err(ExceptionError::AlreadyExpired { .. })
    ));
}

#[test]
fn an_exception_for_another_requirement_does_not_except_this_one() {
    let mut s = excepted();
    s.state.exceptions[0].scope = ExceptionScope::Requirement {
        id: "SR-MON-1".into(),
    };
    let verdict = s.verdict(t(3));
    assert!(
        codes(&verdict, GateCategory::Requirements, ReasonLevel::Block)
            .contains(&"exception_scope_mismatch".to_owned())
    );
}
