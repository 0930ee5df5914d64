//! Gate metrics over a period: bypasses, emergency releases, evidence completeness, review
//! latency percentiles and overdue retrospectives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fixtures/gate/support.rs"]
mod support;

use gatehouse_core::gate::metrics::{self, Period, ReleaseRecord};
use gatehouse_core::gate::{Actor, Bypass, GateDecision};
use support::{Scenario, days, person, t};

#[test]
fn metrics_count_what_the_standard_asks_for() {
    // Decided 2 h after submission, all four evidence kinds present.
    let decided = Scenario::passing_normal();

    // Nothing attached, not decided, bypassed once.
    let mut bypassed = Scenario::new("normal");
    bypassed.state.bypasses.push(Bypass {
        id: "bp-1".into(),
        by: Actor::from_principal(&person("erin"), true),
        reason: "outage fix INC-77".into(),
        at: t(5),
        revision: 0,
        overridden: GateDecision::Pending,
    });

    // Emergency release decided after 1 h, deployed at t(2), no retrospective.
    let mut emergency = Scenario::new("emergency");
    emergency.attach("code-review", "code_review.md", t(1));
    emergency.approve("dave", 0, t(1)).unwrap();
    emergency.state.deployed_at = Some(t(2));

    // Submitted before the period: only its overdue retrospective counts.
    let mut old = Scenario::new("emergency");
    old.state.release.created_at = t(-24 * 30);

    let records: Vec<ReleaseRecord<'_>> = [&decided, &bypassed, &emergency, &old]
        .iter()
        .map(|s| ReleaseRecord {
            state: &s.state,
            class: Some(&s.class),
        })
        .collect();
    let period = Period {
        start: t(0),
        end: t(0) + days(30),
    };
    let m = metrics::compute(&records, period, t(0) + days(40));
    assert_eq!(m.releases, 3);
    assert_eq!(m.gate_bypasses, 1);
    assert_eq!(m.emergency_releases, 1);
    // normal: 4 + 4 required, emergency: 1; present: 4 (decided) + 0 + 1.
    assert_eq!((m.evidence_required, m.evidence_present), (9, 5));
    let percent = m.evidence_completeness_percent.unwrap();
    assert!((percent - 500.0 / 9.0).abs() < 1e-9, "{percent}");
    assert_eq!(m.decided_releases, 2);
    assert_eq!(m.review_latency_p50_seconds, Some(3600));
    assert_eq!(m.review_latency_p90_seconds, Some(7200));
    let overdue: Vec<&str> = m
        .overdue_retrospectives
        .iter()
        .map(|o| o.release.as_str())
        .collect();
    assert_eq!(overdue.len(), 2, "{overdue:?}");
    assert!(overdue.contains(&emergency.state.release.id.to_string().as_str()));
    assert!(m.releases_without_class.is_empty());
}

#[test]
fn releases_without_a_class_are_listed_not_dropped() {
    let s = Scenario::passing_normal();
    let records = [ReleaseRecord {
        state: &s.state,
        class: None,
    }];
    let m = metrics::compute(
        &records,
        Period {
            start: t(0),
            end: t(48),
        },
        t(48),
    );
    assert_eq!(m.releases, 1);
    assert_eq!(m.releases_without_class, [s.state.release.id.to_string()]);
    assert_eq!(m.evidence_completeness_percent, None);
}

#[test]
fn a_rejection_is_a_decision() {
    let mut s = Scenario::passing_normal();
    s.state.approvals.clear();
    s.decide(
        &person("bob"),
        gatehouse_core::gate::ApprovalTarget::Step { index: 0 },
        gatehouse_core::gate::ApprovalDecision::Reject,
        t(4),
    )
    .unwrap();
    assert_eq!(metrics::decided_at(&s.class, &s.state), Some(t(4)));
}

#[test]
fn folding_one_release_at_a_time_matches_compute() {
    let mut bypassed = Scenario::new("normal");
    bypassed.state.bypasses.push(Bypass {
        id: "bp-1".into(),
        by: Actor::from_principal(&person("erin"), true),
        reason: "outage fix INC-77".into(),
        at: t(5),
        revision: 0,
        overridden: GateDecision::Pending,
    });
    let mut old = Scenario::new("emergency");
    old.state.release.created_at = t(-24 * 30);
    old.attach("code-review", "code_review.md", t(-24 * 30));
    let scenarios = [Scenario::passing_normal(), bypassed, old];
    let period = Period {
        start: t(0),
        end: t(0) + days(30),
    };
    let now = t(0) + days(40);
    let records: Vec<ReleaseRecord<'_>> = scenarios
        .iter()
        .map(|s| ReleaseRecord {
            state: &s.state,
            class: Some(&s.class),
        })
        .collect();
    let whole = metrics::compute(&records, period, now);

    let mut accumulator = metrics::Accumulator::new(period, now);
    for s in &scenarios {
        // A release the fold does not evaluate needs no evidence facts.
        let mut state = s.state.clone();
        if !accumulator.evaluates(state.release.created_at) {
            for item in &mut state.evidence {
                item.facts = gatehouse_core::gate::EvidenceFacts::Unreadable {
                    reason: "not loaded".into(),
                };
            }
        }
        accumulator.add(ReleaseRecord {
            state: &state,
            class: Some(&s.class),
        });
    }
    assert!(!accumulator.evaluates(t(-1)));
    assert!(accumulator.evaluates(t(0)));
    assert!(!accumulator.evaluates(period.end));
    assert_eq!(accumulator.finish(), whole);
    assert_eq!((whole.releases, whole.gate_bypasses), (2, 1));
    assert_eq!(whole.overdue_retrospectives.len(), 1);
}
