#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The release-gate store (`GateStore`) suite, run against SQLite always and PostgreSQL when
//! `GATEHOUSE_TEST_POSTGRES_URL` is set (each test in a fresh schema), like `suite.rs`.
//!
//! What it proves: records round-trip exactly; evidence rows share a blob stored once per
//! digest (through the `BlobStore` port); the
//! revision compare-and-set catches an approval racing an evidence upload and two uploads
//! decided on the same state; a failed write stores nothing; a walk over the releases in pages
//! (what the gate metrics do) visits every release once, past the 1,000-row page cap and
//! across releases that share a submission time.

#[macro_use]
mod common;

use common::TestDb;
use std::sync::Arc;

use gatehouse_core::gate::store::{
    EvidenceKind, GateRecord, GateStore, GateWrite, GateWriteError, ReleaseCursor, StoredEvidence,
};
use gatehouse_core::gate::{
    Actor, Approval, ApprovalDecision, ApprovalTarget, Exception, ExceptionScope, FindingScope,
    PrincipalKind, RequirementRecord, RequirementStatus, Risk, RiskStatus,
};
use gatehouse_core::release::{ChangeContext, Digest, Release, ReleaseId};
use gatehouse_core::store::{MAX_PAGE_SIZE, Store, StoreError};
use gatehouse_store::{SqlGateStore, open};
use jiff::Timestamp;

impl TestDb {
    async fn open(&self) -> (Arc<dyn Store>, SqlGateStore) {
        let config = self.config();
        let store = open(&config).await.unwrap();
        let gate = SqlGateStore::connect(&config).await.unwrap();
        (store, gate)
    }
}

suite!(
    evidence_round_trips_and_bytes_are_stored_once_per_digest,
    duplicate_evidence_on_a_release_conflicts_and_stores_nothing,
    approval_racing_an_evidence_upload_is_caught,
    concurrent_uploads_decided_on_the_same_state_one_wins,
    records_round_trip_and_latest_version_wins,
    write_for_unknown_release_fails_and_stores_nothing,
    wrong_revision_is_refused_before_writing,
    releases_are_walked_in_pages_past_the_page_cap,
);

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

async fn new_release(store: &dyn Store) -> ReleaseId {
    release_at(store, at(1_800_000_000)).await
}

async fn release_at(store: &dyn Store, created_at: Timestamp) -> ReleaseId {
    let release = Release {
        id: ReleaseId::generate(created_at).unwrap(),
        service: "payments".into(),
        version: "2.14.0".into(),
        release_class: "normal".into(),
        artifact_digests: vec![Digest::of_bytes(b"app")],
        owner: "team-payments".into(),
        change: ChangeContext {
            summary: "Rotate keys".into(),
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

fn evidence(id: &str, content: &[u8], revision: u64) -> GateRecord {
    let digest = Digest::of_bytes(content);
    GateRecord::Evidence {
        item: StoredEvidence {
            id: id.into(),
            kind: EvidenceKind::Sarif,
            sha256: digest.hex().to_owned(),
            size: content.len() as u64,
            attached_at: Timestamp::new(1_800_000_100, 123_456_789).unwrap(),
            attached_by: "ci".into(),
            supersedes: None,
            revision,
        },
    }
}

/// Stores `content` as an evidence blob (the bytes stand in for sealed chunks: the blob store
/// moves opaque bytes, sealing is tested in the server's vault suite).
async fn store_blob(db: &TestDb, content: &[u8]) {
    use gatehouse_core::blobs::{BlobKey, BlobStore, ChunkSource, NewBlob};
    struct One(Option<Vec<u8>>);
    impl ChunkSource for One {
        fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
            Ok(self.0.take())
        }
    }
    let blobs = gatehouse_store::SqlBlobStore::connect(&db.config())
        .await
        .unwrap();
    blobs
        .put(
            &NewBlob {
                sha256: Digest::of_bytes(content).hex().to_owned(),
                size: content.len() as u64,
                key: BlobKey {
                    kek_id: "test-kek".into(),
                    header: b"header".to_vec(),
                },
                stored_at: at(1_800_000_000),
            },
            &mut One(Some(content.to_vec())),
        )
        .await
        .unwrap();
}

fn person(id: &str) -> Actor {
    Actor {
        id: id.into(),
        display: id.to_uppercase(),
        kind: PrincipalKind::Person,
    }
}

fn approval(id: &str, revision: u64) -> GateRecord {
    GateRecord::Approval(Approval {
        id: id.into(),
        target: ApprovalTarget::Step { index: 0 },
        approver: person("bob"),
        role: "security-lead".into(),
        decision: ApprovalDecision::Approve,
        comment: "reviewed".into(),
        at: at(1_800_000_200),
        revision,
    })
}

fn write(release: ReleaseId, based_on: u64, record: GateRecord) -> GateWrite {
    GateWrite {
        release,
        based_on,
        record,
    }
}

async fn evidence_round_trips_and_bytes_are_stored_once_per_digest(db: &TestDb) {
    let (store, gate) = db.open().await;
    let first = new_release(store.as_ref()).await;
    let second = new_release(store.as_ref()).await;
    let content = br#"{"version":"2.1.0","runs":[]}"#;
    store_blob(db, content).await;
    let record = evidence("ev-1", content, 1);
    gate.write_gate_record(&write(first, 0, record.clone()))
        .await
        .unwrap();
    gate.write_gate_record(&write(second, 0, record.clone()))
        .await
        .unwrap();

    let loaded = gate.load_gate_records(first).await.unwrap();
    assert_eq!(loaded.revision, 1);
    let GateRecord::Evidence { item, .. } = record else {
        unreachable!()
    };
    assert_eq!(loaded.evidence, vec![item.clone()]);
    assert_eq!(db.count("SELECT COUNT(*) FROM evidence_blobs").await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM gate_evidence").await, 2);
}

async fn duplicate_evidence_on_a_release_conflicts_and_stores_nothing(db: &TestDb) {
    let (store, gate) = db.open().await;
    let release = new_release(store.as_ref()).await;
    store_blob(db, b"same").await;
    gate.write_gate_record(&write(release, 0, evidence("ev-1", b"same", 1)))
        .await
        .unwrap();
    let err = gate
        .write_gate_record(&write(release, 1, evidence("ev-2", b"same", 2)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GateWriteError::Store(StoreError::Conflict { ref what }) if what == "evidence ev-2"),
        "{err:?}"
    );
    // The head did not move: the transaction was rolled back whole.
    let loaded = gate.load_gate_records(release).await.unwrap();
    assert_eq!(loaded.revision, 1);
    assert_eq!(loaded.evidence.len(), 1);
}

async fn approval_racing_an_evidence_upload_is_caught(db: &TestDb) {
    let (store, gate) = db.open().await;
    let release = new_release(store.as_ref()).await;
    // Both were decided on revision 0; the upload commits first.
    store_blob(db, b"scan").await;
    gate.write_gate_record(&write(release, 0, evidence("ev-1", b"scan", 1)))
        .await
        .unwrap();
    let err = gate
        .write_gate_record(&write(release, 0, approval("ap-1", 0)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GateWriteError::Moved {
                based_on: 0,
                current: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        gate.load_gate_records(release)
            .await
            .unwrap()
            .approvals
            .is_empty()
    );
    // Decided again on the new state it is recorded, and moves nothing.
    gate.write_gate_record(&write(release, 1, approval("ap-1", 1)))
        .await
        .unwrap();
    let loaded = gate.load_gate_records(release).await.unwrap();
    assert_eq!(loaded.revision, 1);
    assert_eq!(loaded.approvals.len(), 1);
    assert_eq!(loaded.approvals[0].revision, 1);
}

async fn concurrent_uploads_decided_on_the_same_state_one_wins(db: &TestDb) {
    let (store, gate) = db.open().await;
    let release = new_release(store.as_ref()).await;
    let gate = Arc::new(gate);
    for n in 0..8u8 {
        store_blob(db, &[n]).await;
    }
    let mut tasks = Vec::new();
    for n in 0..8u8 {
        let gate = Arc::clone(&gate);
        tasks.push(tokio::spawn(async move {
            gate.write_gate_record(&write(release, 0, evidence(&format!("ev-{n}"), &[n], 1)))
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(GateWriteError::Moved { current: 1, .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let loaded = gate.load_gate_records(release).await.unwrap();
    assert_eq!((loaded.revision, loaded.evidence.len()), (1, 1));
    assert_eq!(db.count("SELECT COUNT(*) FROM gate_evidence").await, 1);
}

async fn records_round_trip_and_latest_version_wins(db: &TestDb) {
    let (store, gate) = db.open().await;
    let release = new_release(store.as_ref()).await;
    let mut exception = Exception {
        id: "ex-1".into(),
        scope: ExceptionScope::Finding {
            finding: FindingScope::SarifRule {
                rule_id: "js/sql-injection".into(),
            },
        },
        justification: "input is a constant".into(),
        compensating_controls: vec!["WAF rule 942100".into()],
        approver: person("carol"),
        approver_role: "security-lead".into(),
        approved_at: at(1_800_000_300),
        expires_at: at(1_800_600_000),
        withdrawn_at: None,
        revision: 1,
    };
    gate.write_gate_record(&write(release, 0, GateRecord::Exception(exception.clone())))
        .await
        .unwrap();
    let requirement = RequirementRecord {
        requirement: "SR-1".into(),
        status: RequirementStatus::Excepted {
            exception: "ex-1".into(),
        },
        recorded_by: "carol".into(),
        at: at(1_800_000_301),
        revision: 2,
    };
    gate.write_gate_record(&write(
        release,
        1,
        GateRecord::Requirement(requirement.clone()),
    ))
    .await
    .unwrap();
    let risk = Risk {
        id: "rk-1".into(),
        title: "Key rotation window".into(),
        likelihood: 2,
        impact: 3,
        status: RiskStatus::Open,
        owner: "team-payments".into(),
        revision: 3,
    };
    gate.write_gate_record(&write(release, 2, GateRecord::Risk(risk.clone())))
        .await
        .unwrap();
    exception.withdrawn_at = Some(at(1_800_000_400));
    exception.revision = 4;
    gate.write_gate_record(&write(release, 3, GateRecord::Exception(exception.clone())))
        .await
        .unwrap();

    let loaded = gate.load_gate_records(release).await.unwrap();
    assert_eq!(loaded.revision, 4);
    assert_eq!(loaded.exceptions, vec![exception]);
    assert_eq!(loaded.requirements, vec![requirement]);
    assert_eq!(loaded.risks, vec![risk]);
    assert!(loaded.approvals.is_empty() && loaded.bypasses.is_empty());
    assert_eq!(db.count("SELECT COUNT(*) FROM gate_records").await, 4);
}

async fn write_for_unknown_release_fails_and_stores_nothing(db: &TestDb) {
    let (_store, gate) = db.open().await;
    let unknown = ReleaseId::generate(at(1_800_000_000)).unwrap();
    let err = gate
        .write_gate_record(&write(unknown, 0, evidence("ev-1", b"orphan", 1)))
        .await
        .unwrap_err();
    assert!(matches!(err, GateWriteError::Store(_)), "{err:?}");
    assert_eq!(db.count("SELECT COUNT(*) FROM gate_evidence").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM gate_heads").await, 0);
}

async fn wrong_revision_is_refused_before_writing(db: &TestDb) {
    let (store, gate) = db.open().await;
    let release = new_release(store.as_ref()).await;
    // Evidence decided on revision 0 must carry revision 1, not 5.
    let err = gate
        .write_gate_record(&write(release, 0, evidence("ev-1", b"x", 5)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GateWriteError::Store(StoreError::InvalidValue { ref field, .. }) if field == "revision"),
        "{err:?}"
    );
    assert_eq!(gate.load_gate_records(release).await.unwrap().revision, 0);
}

/// Every release submitted before `before`, walked in pages of `limit`, with the page sizes.
async fn walk(gate: &SqlGateStore, before: Timestamp, limit: u32) -> (Vec<Release>, Vec<usize>) {
    let mut all: Vec<Release> = Vec::new();
    let mut pages = Vec::new();
    loop {
        let after = all.last().map(ReleaseCursor::after);
        let page = gate
            .releases_before(before, after.as_ref(), limit)
            .await
            .unwrap();
        pages.push(page.len());
        let done = page.len() < limit as usize;
        all.extend(page);
        if done {
            return (all, pages);
        }
    }
}

async fn releases_are_walked_in_pages_past_the_page_cap(db: &TestDb) {
    let (store, gate) = db.open().await;
    // Five releases per second, so pages of 7 end in the middle of a tie.
    const N: i64 = 2_503;
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..N {
        expected.insert(release_at(store.as_ref(), at(1_800_000_000 + i / 5)).await);
    }
    let before = at(1_800_000_000 + N / 5 + 1);
    // Submitted at `before` or later: not part of the walk.
    release_at(store.as_ref(), before).await;
    release_at(store.as_ref(), at(1_900_000_000)).await;

    let (all, pages) = walk(&gate, before, MAX_PAGE_SIZE).await;
    assert_eq!(pages, vec![1000, 1000, 503]);
    let ids: std::collections::BTreeSet<ReleaseId> = all.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), all.len(), "a release was visited twice");
    assert_eq!(ids, expected);
    assert!(all.windows(2).all(|w| w[0].created_at >= w[1].created_at));

    let (small, pages) = walk(&gate, before, 7).await;
    assert_eq!(pages.len(), (N as usize).div_ceil(7));
    assert_eq!(
        small.iter().map(|r| r.id).collect::<Vec<_>>(),
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        "small pages walk the same order"
    );

    // A larger page is capped, like every list.
    let capped = gate.releases_before(before, None, 5_000).await.unwrap();
    assert_eq!(capped.len(), MAX_PAGE_SIZE as usize);
    // An earlier bound leaves out what was submitted from then on.
    let (early, _) = walk(&gate, at(1_800_000_010), MAX_PAGE_SIZE).await;
    assert_eq!(early.len(), 50);
}
