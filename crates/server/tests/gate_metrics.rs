#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The gate metrics (`GET /api/v1/metrics/gate`, `gatehouse gate metrics`, the `/metrics` gate
//! gauges) cover every release, not the newest page of them: more releases than one store page
//! (1,000) are submitted in the period, some before it (their bypasses and overdue
//! retrospectives still count) and some after it (they count for nothing), and the report is
//! complete.

use std::sync::Arc;

use gatehouse_core::clock::FixedClock;
use gatehouse_core::gate::metrics::Period;
use gatehouse_core::gate::store::{GateRecord, GateWrite};
use gatehouse_core::gate::{Actor, Bypass, GateDecision, PrincipalKind};
use gatehouse_core::release::{ChangeContext, Digest, Release, ReleaseId};
use gatehouse_core::store::Store;
use gatehouse_server::pack_state::{PackSnapshot, PackSource};
use gatehouse_server::routes::gate::Gate;
use gatehouse_server::routes::gate_metrics;
use gatehouse_server::state::AppState;
use gatehouse_store::{StoreConfig, open_with_gate};
use jiff::{SignedDuration, Timestamp};

const PACK: &str = "\
kind: Role
id: security-lead
---
kind: Person
id: dave
name: Dave
email: dave@example.com
roles: [security-lead]
---
kind: ReleaseClass
id: normal
required_evidence: [{kind: sast}]
approver_path: [{role: security-lead}]
---
kind: ReleaseClass
id: emergency
required_evidence: [{kind: code_review}]
approver_path: [{role: security-lead}]
emergency:
  retrospective_within: 5d
";

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

async fn submit(store: &dyn Store, class: &str, created_at: Timestamp) -> ReleaseId {
    let release = Release {
        id: ReleaseId::generate(created_at).unwrap(),
        service: "payments".into(),
        version: "1.0.0".into(),
        release_class: class.into(),
        artifact_digests: vec![Digest::of_bytes(b"app")],
        owner: "team-payments".into(),
        change: ChangeContext {
            summary: "change".into(),
            ticket: None,
            pull_request: None,
        },
        target_environment: "production".into(),
        submitter: "alice".into(),
        created_at,
    };
    store.create_release(&release).await.unwrap();
    release.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_every_release_of_the_period_past_one_store_page() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::Sqlite {
        data_dir: dir.path().join("data"),
    };
    let (store, gate_store) = open_with_gate(&config).await.unwrap();
    let loaded = gatehouse_pack::load_files([("pack.yaml", PACK)]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);

    let start = at(1_800_000_000);
    let period = Period {
        start,
        end: start + SignedDuration::from_hours(24 * 30),
    };
    // 1,203 in the period, a minute apart, four of them emergencies.
    const IN_PERIOD: i64 = 1_203;
    for i in 0..IN_PERIOD {
        let class = if i % 400 == 0 { "emergency" } else { "normal" };
        submit(store.as_ref(), class, start + SignedDuration::from_mins(i)).await;
    }
    // Before the period: a normal release bypassed in the period, and an emergency release
    // whose retrospective is overdue.
    let bypassed = submit(store.as_ref(), "normal", at(1_700_000_000)).await;
    gate_store
        .write_gate_record(&GateWrite {
            release: bypassed,
            based_on: 0,
            record: GateRecord::Bypass(Bypass {
                id: "bp-1".into(),
                by: Actor {
                    id: "erin".into(),
                    display: "Erin".into(),
                    kind: PrincipalKind::Person,
                },
                reason: "outage fix".into(),
                at: start + SignedDuration::from_hours(1),
                revision: 0,
                overridden: GateDecision::Pending,
            }),
        })
        .await
        .unwrap();
    let overdue = submit(store.as_ref(), "emergency", at(1_700_000_000)).await;
    // After the period: not read.
    submit(store.as_ref(), "emergency", period.end).await;

    let clock = Arc::new(FixedClock::new(period.end + SignedDuration::from_hours(24)));
    let state = AppState::new(
        store,
        clock,
        PackSource::new(dir.path().join("pack")),
        PackSnapshot::new(loaded.pack, period.end),
    );
    state.attach_gate(Arc::new(Gate::new(gate_store, 1024 * 1024)));

    let report = gate_metrics::compute(&state, period).await.unwrap();
    assert!(report.complete);
    assert_eq!(report.releases_scanned, IN_PERIOD as u64 + 2);
    let m = &report.metrics;
    assert_eq!(m.releases, IN_PERIOD as u64);
    assert_eq!(m.emergency_releases, 4);
    assert_eq!(m.gate_bypasses, 1);
    assert_eq!(m.evidence_required, IN_PERIOD as u64);
    assert_eq!(m.evidence_present, 0);
    assert_eq!(m.decided_releases, 0);
    assert!(m.releases_without_class.is_empty());
    // The old emergency release, and the period's emergencies due before its end.
    let overdue_ids: Vec<&str> = m
        .overdue_retrospectives
        .iter()
        .map(|o| o.release.as_str())
        .collect();
    assert!(overdue_ids.contains(&overdue.to_string().as_str()));
    assert_eq!(overdue_ids.len(), 5, "{overdue_ids:?}");
}
