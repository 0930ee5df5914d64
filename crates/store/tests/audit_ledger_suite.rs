#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The tamper-evident audit log on both backends: hashed appends, proofs, signed heads, the
//! append-only tables, and tampering done the way an attacker with database access would do it
//! (switching the triggers off, then editing or deleting rows), which export + verify must name.
//!
//! Same harness as `suite.rs`: each case runs on SQLite, and on PostgreSQL in a fresh schema
//! when `GATEHOUSE_TEST_POSTGRES_URL` is set (otherwise the PostgreSQL test prints "skipped").

#[macro_use]
mod common;

use common::TestDb;
use std::sync::Arc;

use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::audit_log::{AuditLedger, prove_consistency, prove_inclusion, sign_tree_head};
use gatehouse_core::store::{Store, StoreError};
use gatehouse_ledger::export::VerifyReport;
use gatehouse_ledger::merkle::{leaf_hash, root_of_leaf_hashes};
use gatehouse_ledger::{
    AuditEntry, ConsistencyProof, Hash, InclusionProof, LogSigningKey, Problem, SignedTreeHead,
    SubtreeKey,
};
use gatehouse_store::{SqlAuditLedger, StoreConfig, open};
use jiff::Timestamp;
use serde_json::json;
use sqlx::Connection;

impl TestDb {
    async fn open(&self) -> (Arc<dyn Store>, Arc<dyn AuditLedger>) {
        let store = open(&self.config()).await.unwrap();
        let ledger = SqlAuditLedger::connect(&self.config()).await.unwrap();
        (store, Arc::new(ledger))
    }

    /// The same attack on the subtree table: triggers off around `sql`.
    async fn tamper_subtrees(&self, sql: &str) {
        let script = if self.is_postgres() {
            format!(
                "BEGIN; ALTER TABLE audit_subtrees DISABLE TRIGGER USER; {sql}; \
                 ALTER TABLE audit_subtrees ENABLE TRIGGER USER; COMMIT;"
            )
        } else {
            format!(
                "BEGIN; DROP TRIGGER audit_subtrees_refuse_update; \
                 DROP TRIGGER audit_subtrees_refuse_delete; {sql}; \
                 CREATE TRIGGER audit_subtrees_refuse_update BEFORE UPDATE ON audit_subtrees \
                 BEGIN SELECT RAISE(ABORT, 'audit_subtrees is append-only: UPDATE refused'); END; \
                 CREATE TRIGGER audit_subtrees_refuse_delete BEFORE DELETE ON audit_subtrees \
                 BEGIN SELECT RAISE(ABORT, 'audit_subtrees is append-only: DELETE refused'); END; \
                 COMMIT;"
            )
        };
        self.raw(&script).await.unwrap();
    }

    /// What an attacker with write access to the database does: switch the append-only
    /// triggers off around `sql`, in one transaction.
    async fn tamper(&self, sql: &str) {
        let script = if self.is_postgres() {
            format!(
                "BEGIN; ALTER TABLE audit_log DISABLE TRIGGER USER; {sql}; \
                 ALTER TABLE audit_log ENABLE TRIGGER USER; COMMIT;"
            )
        } else {
            format!(
                "BEGIN; DROP TRIGGER audit_log_refuse_update; DROP TRIGGER audit_log_refuse_delete; \
                 {sql}; \
                 CREATE TRIGGER audit_log_refuse_update BEFORE UPDATE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END; \
                 CREATE TRIGGER audit_log_refuse_delete BEFORE DELETE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END; \
                 COMMIT;"
            )
        };
        self.raw(&script).await.unwrap();
    }

    /// Takes the append lock the way another writer would (another process on the SQLite
    /// file, another server on the PostgreSQL database) and keeps it until `release`.
    async fn hold_append_lock(&self) -> AppendLock {
        match self.config() {
            StoreConfig::Sqlite { data_dir } => {
                let path = data_dir.join(gatehouse_store::SQLITE_FILE_NAME);
                let mut conn = sqlx::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                AppendLock::Sqlite(conn)
            }
            StoreConfig::Postgres { url } => {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::raw_sql("BEGIN; LOCK TABLE audit_log IN EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                AppendLock::Postgres(conn)
            }
        }
    }

    /// Makes the database refuse any audit row whose action is `test.poison`, the way a
    /// constraint or a full disk refuses a statement: the append transaction fails.
    async fn refuse_poison_entries(&self, refuse: bool) {
        let sql = match (self.is_postgres(), refuse) {
            (true, true) => {
                "CREATE FUNCTION audit_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.action = 'test.poison' THEN RAISE EXCEPTION 'poisoned entry'; \
                 END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER audit_poison BEFORE INSERT ON audit_log FOR EACH ROW \
                 EXECUTE FUNCTION audit_poison();"
            }
            (true, false) => {
                "DROP TRIGGER audit_poison ON audit_log; DROP FUNCTION audit_poison();"
            }
            (false, true) => {
                "CREATE TRIGGER audit_poison BEFORE INSERT ON audit_log \
                 WHEN NEW.action = 'test.poison' BEGIN SELECT RAISE(ABORT, 'poisoned entry'); END;"
            }
            (false, false) => "DROP TRIGGER audit_poison;",
        };
        self.raw(sql).await.unwrap();
    }
}

enum AppendLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl AppendLock {
    async fn release(self) {
        match self {
            AppendLock::Sqlite(mut conn) => {
                sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            AppendLock::Postgres(mut conn) => {
                sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

suite!(
    concurrent_appends_form_one_hash_chain_and_proofs_verify,
    many_concurrent_appenders_each_get_their_entry_once_in_one_chain,
    a_failed_batch_stores_none_of_its_entries_and_later_appends_work,
    signed_heads_and_keys_round_trip,
    audit_and_ledger_tables_refuse_update_and_delete,
    modified_row_is_named_by_export_and_verify,
    deleted_row_is_named_by_export_and_verify,
    rows_from_before_the_ledger_are_hashed_on_the_next_append,
    unhashed_row_after_hashed_ones_stops_appends,
    proofs_from_subtrees_equal_proofs_from_all_leaves,
    subtree_table_is_filled_at_start_up_after_the_migration,
    rows_from_before_the_ledger_get_subtrees_on_the_next_append,
    tampered_subtree_row_fails_against_the_signed_head,
);

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn record(i: i64) -> AuditRecord {
    AuditRecord {
        at: Timestamp::from_nanosecond(1_800_000_000_123_456_789 + i128::from(i)).unwrap(),
        actor: format!("user:u{}", i % 3),
        action: "release.approve".into(),
        target: format!("release:{i}"),
        outcome: if i % 5 == 0 {
            AuditOutcome::Denied
        } else {
            AuditOutcome::Succeeded
        },
        // Floats, unicode, nested objects and key order: the exported bytes must be the
        // hashed bytes whatever the detail holds.
        detail: json!({"z": i, "a": {"ratio": 0.1 + 0.2, "é": "\n\u{1}"}, "n": null}),
    }
}

fn key() -> LogSigningKey {
    LogSigningKey::from_secret_bytes(&[9; 32])
}

async fn all_entries(ledger: &dyn AuditLedger) -> Vec<gatehouse_core::audit_log::EncodedEntry> {
    let mut out = Vec::new();
    loop {
        let after = out
            .last()
            .map_or(0, |e: &gatehouse_core::audit_log::EncodedEntry| e.seq);
        let page = ledger.encoded_entries(after, 7).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// What `gatehouse audit export` + `audit verify` do: sign a head over everything, export
/// entries, heads and keys, and verify against the trusted key.
async fn export_and_verify(ledger: &dyn AuditLedger, key: &LogSigningKey) -> VerifyReport {
    ledger
        .record_log_key(&key.verifying_key(), at(1_800_000_000))
        .await
        .unwrap();
    let size = ledger.tree_size().await.unwrap();
    sign_tree_head(ledger, key, size, at(1_900_000_000))
        .await
        .unwrap();
    let entries = all_entries(ledger).await;
    let heads = ledger.tree_heads().await.unwrap();
    let keys = ledger.log_keys().await.unwrap();
    let mut file = Vec::new();
    gatehouse_ledger::export_as_stored(entries.iter().map(|e| &e.bytes), &heads, &keys, &mut file)
        .unwrap();
    gatehouse_ledger::verify(file.as_slice(), Some(&[key.verifying_key()])).unwrap()
}

async fn concurrent_appends_form_one_hash_chain_and_proofs_verify(db: &TestDb) {
    let (store, ledger) = db.open().await;
    let mut tasks = Vec::new();
    for w in 0..4i64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                store.append_audit(&record(w * 5 + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ledger.tree_size().await.unwrap(), 20);

    // Every entry is canonical, links to its predecessor, and its stored leaf hash is the
    // hash of its bytes.
    let entries = all_entries(ledger.as_ref()).await;
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<u64>>()
    );
    let mut prev = Hash::ZERO;
    for e in &entries {
        let decoded = AuditEntry::decode(&e.bytes).unwrap();
        assert_eq!(decoded.seq, e.seq);
        assert_eq!(decoded.prev, prev, "seq {}", e.seq);
        let leaf = leaf_hash(&e.bytes);
        assert_eq!(e.stored_leaf_hash, Some(leaf));
        prev = leaf;
    }
    let leaves = ledger.leaf_hashes(0, 20).await.unwrap();
    assert_eq!(leaves.len(), 20);
    assert_eq!(leaves[19], prev);

    let key = key();
    let head7 = sign_tree_head(ledger.as_ref(), &key, 7, at(1_800_000_100))
        .await
        .unwrap();
    let head20 = sign_tree_head(ledger.as_ref(), &key, 20, at(1_800_000_200))
        .await
        .unwrap();
    head20.verify(&key.verifying_key()).unwrap();
    assert_eq!(
        head20.root_hash,
        gatehouse_ledger::merkle::root_of_leaf_hashes(&leaves)
    );
    // The compact range resumes from the stored head at 7 and must give the same root as a
    // recomputation from scratch.
    assert_eq!(
        ledger.compact_range(20).await.unwrap().root(),
        head20.root_hash
    );

    for seq in 1..=20u64 {
        let proof = InclusionProof::build(&leaves, seq - 1, 20).unwrap();
        proof
            .verify(&leaves[(seq - 1) as usize], &head20.root_hash)
            .unwrap();
    }
    let wrong = InclusionProof::build(&leaves, 3, 20).unwrap();
    assert!(wrong.verify(&leaves[4], &head20.root_hash).is_err());
    let consistency = ConsistencyProof::build(&leaves, 7, 20).unwrap();
    consistency
        .verify(&head7.root_hash, &head20.root_hash)
        .unwrap();
    // Concurrent appends filled the subtree table in leaf order: the cached proofs are the
    // same proofs.
    assert_same_proofs_as_all_leaves(ledger.as_ref(), &[7, 20]).await;
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(20));

    let report = export_and_verify(ledger.as_ref(), &key).await;
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 20);
    assert_eq!(report.heads_verified, 3);
}

/// Group commit under load: 16 writers × 50 appends share transactions. Every acknowledged
/// entry is stored exactly once, under the seq its caller was given; the seqs are 1..=800;
/// the chain, the tree, the subtree rows and the signed head all check out.
async fn many_concurrent_appenders_each_get_their_entry_once_in_one_chain(db: &TestDb) {
    const WRITERS: i64 = 16;
    const EACH: i64 = 50;
    let (store, ledger) = db.open().await;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..EACH {
                let record = record(w * EACH + i);
                let seq = store.append_audit(&record).await.unwrap();
                acknowledged.push((seq, record.target));
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        let mine = t.await.unwrap();
        // One writer's appends are answered in the order it made them.
        assert!(mine.windows(2).all(|w| w[0].0 < w[1].0), "{mine:?}");
        acknowledged.extend(mine);
    }
    acknowledged.sort();
    let total = (WRITERS * EACH) as u64;
    assert_eq!(
        acknowledged.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (1..=total as i64).collect::<Vec<_>>()
    );

    let entries = all_entries(ledger.as_ref()).await;
    assert_eq!(entries.len() as u64, total);
    let mut prev = Hash::ZERO;
    for (e, (seq, target)) in entries.iter().zip(&acknowledged) {
        let decoded = AuditEntry::decode(&e.bytes).unwrap();
        assert_eq!(decoded.seq as i64, *seq);
        assert_eq!(&decoded.record.target, target, "seq {seq}");
        assert_eq!(decoded.prev, prev, "seq {seq}");
        prev = leaf_hash(&e.bytes);
        assert_eq!(e.stored_leaf_hash, Some(prev));
    }
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(total));
    assert_same_proofs_as_all_leaves(ledger.as_ref(), &[3, 256, total]).await;

    let report = export_and_verify(ledger.as_ref(), &key()).await;
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, total);
}

/// A batch whose transaction fails is stored not at all, and every caller in it is told so;
/// the appender goes on with the next batch.
///
/// The batch is made without timing: another writer holds the append lock while the appends
/// start (each append future is polled once). The first finds nobody appending and appends
/// alone, waiting for the lock; the other five queue behind it and form the next batch, the
/// poison entry among them.
async fn a_failed_batch_stores_none_of_its_entries_and_later_appends_work(db: &TestDb) {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    let (store, ledger) = db.open().await;
    for i in 0..3 {
        store.append_audit(&record(i)).await.unwrap();
    }
    db.refuse_poison_entries(true).await;

    let mut records: Vec<AuditRecord> = (10..16).map(record).collect();
    records[1].action = "test.poison".into();
    let lock = db.hold_append_lock().await;
    type Append<'a> = Pin<Box<dyn Future<Output = Result<i64, StoreError>> + Send + 'a>>;
    let mut appends: Vec<Append<'_>> = records.iter().map(|r| store.append_audit(r)).collect();
    std::future::poll_fn(|cx| {
        for append in &mut appends {
            assert!(append.as_mut().poll(cx).is_pending());
        }
        Poll::Ready(())
    })
    .await;
    lock.release().await;
    let mut results = Vec::new();
    for append in appends {
        results.push(append.await);
    }

    assert_eq!(*results[0].as_ref().unwrap(), 4);
    for failed in &results[1..] {
        let e = failed.as_ref().unwrap_err();
        assert!(e.to_string().contains("poisoned entry"), "{e}");
    }
    // Stored if and only if acknowledged, under the acknowledged seq, the seqs without a gap.
    let entries = all_entries(ledger.as_ref()).await;
    let stored: Vec<(u64, String)> = entries
        .iter()
        .map(|e| {
            let entry = AuditEntry::decode(&e.bytes).unwrap();
            (entry.seq, entry.record.target)
        })
        .collect();
    let mut expected: Vec<(u64, String)> =
        (0..3).map(|i| (i + 1, record(i as i64).target)).collect();
    for (result, record) in results.iter().zip(&records) {
        match result {
            Ok(seq) => expected.push((*seq as u64, record.target.clone())),
            Err(e) => assert!(
                !stored.iter().any(|(_, target)| target == &record.target),
                "{} failed ({e}) but is stored",
                record.target
            ),
        }
    }
    expected.sort();
    assert_eq!(stored, expected);
    assert_eq!(
        stored.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (1..=stored.len() as u64).collect::<Vec<_>>()
    );

    // The appender is not stuck on the failure, even with the trigger still there.
    let next = store.append_audit(&record(20)).await.unwrap();
    assert_eq!(next as usize, stored.len() + 1);
    db.refuse_poison_entries(false).await;
    let last = store.append_audit(&records[1]).await.unwrap();
    assert_eq!(last, next + 1);
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(last as u64));
    assert_same_proofs_as_all_leaves(ledger.as_ref(), &[last as u64]).await;
    let report = export_and_verify(ledger.as_ref(), &key()).await;
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, last as u64);
}

async fn signed_heads_and_keys_round_trip(db: &TestDb) {
    let (store, ledger) = db.open().await;
    assert_eq!(ledger.latest_tree_head().await.unwrap(), None);
    assert_eq!(ledger.compact_range(0).await.unwrap().size(), 0);
    for i in 0..3 {
        store.append_audit(&record(i)).await.unwrap();
    }
    let key = key();
    let head = sign_tree_head(ledger.as_ref(), &key, 3, at(1_800_000_000))
        .await
        .unwrap();
    let latest = ledger.latest_tree_head().await.unwrap().unwrap();
    assert_eq!(latest, head);
    latest.verify(&key.verifying_key()).unwrap();
    // A head over entries the store does not hold cannot be signed.
    assert!(matches!(
        sign_tree_head(ledger.as_ref(), &key, 4, at(1_800_000_000)).await,
        Err(StoreError::NotFound { .. })
    ));
    // A head that does not match its range is refused.
    let range = ledger.compact_range(2).await.unwrap();
    let forged = SignedTreeHead::sign(3, range.root(), at(1), &key);
    assert!(ledger.record_tree_head(&forged, &range).await.is_err());

    ledger
        .record_log_key(&key.verifying_key(), at(1))
        .await
        .unwrap();
    ledger
        .record_log_key(&key.verifying_key(), at(2))
        .await
        .unwrap();
    assert_eq!(ledger.log_keys().await.unwrap(), vec![key.verifying_key()]);
}

async fn audit_and_ledger_tables_refuse_update_and_delete(db: &TestDb) {
    let (store, ledger) = db.open().await;
    store.append_audit(&record(1)).await.unwrap();
    store.append_audit(&record(2)).await.unwrap();
    let key = key();
    sign_tree_head(ledger.as_ref(), &key, 2, at(1_800_000_000))
        .await
        .unwrap();
    ledger
        .record_log_key(&key.verifying_key(), at(1))
        .await
        .unwrap();
    let before = all_entries(ledger.as_ref()).await;

    // Two entries complete one subtree row (leaves 0..2), so the row triggers have a row.
    assert_eq!(subtree_rows(db).await, 1);
    let mut attempts = vec![
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
        "UPDATE audit_log SET leaf_hash = NULL, prev_hash = NULL WHERE seq = 1",
        "UPDATE audit_log SET leaf_hash = '00' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
        "UPDATE audit_tree_heads SET tree_size = 1",
        "DELETE FROM audit_tree_heads",
        "UPDATE audit_log_keys SET public_key = 'x'",
        "DELETE FROM audit_log_keys",
        "UPDATE audit_subtrees SET hash = '00'",
        "DELETE FROM audit_subtrees",
    ];
    if db.is_postgres() {
        attempts.extend([
            "TRUNCATE audit_log",
            "TRUNCATE audit_tree_heads",
            "TRUNCATE audit_log_keys",
            "TRUNCATE audit_subtrees",
        ]);
    }
    for sql in attempts {
        let err = db.raw(sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(all_entries(ledger.as_ref()).await, before);
    assert_eq!(ledger.tree_heads().await.unwrap().len(), 1);
    assert_eq!(ledger.log_keys().await.unwrap().len(), 1);
    assert_eq!(subtree_rows(db).await, 1);
}

async fn modified_row_is_named_by_export_and_verify(db: &TestDb) {
    let (store, ledger) = db.open().await;
    for i in 1..=9 {
        store.append_audit(&record(i)).await.unwrap();
    }
    let key = key();
    sign_tree_head(ledger.as_ref(), &key, 9, at(1_800_000_000))
        .await
        .unwrap();
    assert!(export_and_verify(ledger.as_ref(), &key).await.is_intact());

    db.tamper("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 5")
        .await;
    let report = export_and_verify(ledger.as_ref(), &key).await;
    assert!(!report.is_intact(), "{report}");
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f.problem, Problem::Modified { seq: Some(5), .. })),
        "{report}"
    );
    assert!(
        report.to_string().contains("entry seq 5 was modified"),
        "{report}"
    );
    // Only seq 5 is accused of modification.
    assert!(
        !report
            .findings
            .iter()
            .any(|f| matches!(f.problem, Problem::Modified { seq: Some(s), .. } if s != 5)),
        "{report}"
    );
}

async fn deleted_row_is_named_by_export_and_verify(db: &TestDb) {
    let (store, ledger) = db.open().await;
    for i in 1..=6 {
        store.append_audit(&record(i)).await.unwrap();
    }
    let key = key();
    sign_tree_head(ledger.as_ref(), &key, 6, at(1_800_000_000))
        .await
        .unwrap();
    db.tamper("DELETE FROM audit_log WHERE seq = 3").await;
    // The store now refuses to build trees over the gap rather than sign around it.
    assert!(matches!(
        ledger.leaf_hashes(0, 6).await,
        Err(StoreError::Corrupt { .. })
    ));
    let entries = all_entries(ledger.as_ref()).await;
    let heads = ledger.tree_heads().await.unwrap();
    let mut file = Vec::new();
    gatehouse_ledger::export_as_stored(
        entries.iter().map(|e| &e.bytes),
        &heads,
        &[key.verifying_key()],
        &mut file,
    )
    .unwrap();
    let report = gatehouse_ledger::verify(file.as_slice(), Some(&[key.verifying_key()])).unwrap();
    assert!(!report.is_intact(), "{report}");
    assert!(
        report.findings.iter().any(|f| matches!(
            f.problem,
            Problem::Deleted {
                first_seq: 3,
                last_seq: 3
            }
        )),
        "{report}"
    );
}

async fn rows_from_before_the_ledger_are_hashed_on_the_next_append(db: &TestDb) {
    let (store, ledger) = db.open().await;
    // Rows as written before migration 0400: no prev_hash, no leaf_hash.
    db.raw(
        "INSERT INTO audit_log (seq, at_ns, actor, action, target, outcome, detail) VALUES \
         (1, 1800000000000000000, 'system', 'pack.load', 'pack:x', 'succeeded', '{\"b\":1,\"a\":2.5}'), \
         (2, 1800000000000000001, 'alice', 'release.create', 'release:1', 'denied', '{}')",
    )
    .await
    .unwrap();
    assert_eq!(store.append_audit(&record(3)).await.unwrap(), 3);
    let entries = all_entries(ledger.as_ref()).await;
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.stored_leaf_hash.is_some()));
    let first = AuditEntry::decode(&entries[0].bytes).unwrap();
    assert_eq!(first.prev, Hash::ZERO);
    assert_eq!(first.record.actor, "system");
    let report = export_and_verify(ledger.as_ref(), &key()).await;
    assert!(report.is_intact(), "{report}");
    // Filled once: the rows are append-only again.
    let err = db
        .raw("UPDATE audit_log SET leaf_hash = NULL, prev_hash = NULL WHERE seq = 1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

async fn unhashed_row_after_hashed_ones_stops_appends(db: &TestDb) {
    let (store, _ledger) = db.open().await;
    store.append_audit(&record(1)).await.unwrap();
    db.raw(
        "INSERT INTO audit_log (seq, at_ns, actor, action, target, outcome, detail) VALUES \
         (2, 0, 'mallory', 'x', 'y', 'succeeded', '{}')",
    )
    .await
    .unwrap();
    // Fail closed: appending would chain onto a row nobody hashed; the error names it.
    store.append_audit(&record(3)).await.unwrap_err();
    match store.append_audit(&record(3)).await.unwrap_err() {
        StoreError::Corrupt { record, .. } => assert!(record.starts_with("audit_log"), "{record}"),
        other => panic!("expected Corrupt, got {other}"),
    }
}

async fn subtree_rows(db: &TestDb) -> i64 {
    db.count("SELECT COUNT(*) FROM audit_subtrees").await
}

/// Every perfect subtree of level >= 1 inside `size` leaves: one row each.
fn expected_subtree_rows(size: u64) -> i64 {
    (1..64).map(|level| (size >> level) as i64).sum()
}

/// For each tree size, every inclusion proof and both roots, and the consistency proofs between
/// every pair of sizes, from the subtree cache equal what the all-leaves functions compute
/// from the stored leaf hashes, byte for byte.
async fn assert_same_proofs_as_all_leaves(ledger: &dyn AuditLedger, sizes: &[u64]) {
    for &n in sizes {
        let leaves = ledger.leaf_hashes(0, n).await.unwrap();
        for m in 0..n {
            let cached = prove_inclusion(ledger, m, n).await.unwrap();
            assert_eq!(
                cached.proof,
                InclusionProof::build(&leaves, m, n).unwrap(),
                "inclusion of leaf {m} in {n}"
            );
            assert_eq!(cached.root, root_of_leaf_hashes(&leaves), "root of {n}");
            cached
                .proof
                .verify(&leaves[m as usize], &cached.root)
                .unwrap();
        }
        for &first in sizes.iter().filter(|&&f| f <= n) {
            let cached = prove_consistency(ledger, first, n).await.unwrap();
            assert_eq!(
                cached.proof,
                ConsistencyProof::build(&leaves, first, n).unwrap(),
                "consistency {first} -> {n}"
            );
            assert_eq!(
                cached.first_root,
                root_of_leaf_hashes(&leaves[..first as usize])
            );
            cached
                .proof
                .verify(&cached.first_root, &cached.second_root)
                .unwrap();
        }
    }
}

async fn proofs_from_subtrees_equal_proofs_from_all_leaves(db: &TestDb) {
    let (store, ledger) = db.open().await;
    for i in 0..37 {
        store.append_audit(&record(i)).await.unwrap();
    }
    // Amortised one row per append: every completed subtree, nothing else.
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(37));
    assert_same_proofs_as_all_leaves(
        ledger.as_ref(),
        &[1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 37],
    )
    .await;

    // Against signed heads, as a client checks them.
    let key = key();
    let head = sign_tree_head(ledger.as_ref(), &key, 37, at(1_800_000_000))
        .await
        .unwrap();
    let older = sign_tree_head(ledger.as_ref(), &key, 11, at(1_800_000_001))
        .await
        .unwrap();
    let leaves = ledger.leaf_hashes(0, 37).await.unwrap();
    let proven = prove_inclusion(ledger.as_ref(), 12, 37).await.unwrap();
    assert_eq!(proven.root, head.root_hash);
    proven.proof.verify(&leaves[12], &head.root_hash).unwrap();
    let proven = prove_consistency(ledger.as_ref(), 11, 37).await.unwrap();
    proven
        .proof
        .verify(&older.root_hash, &head.root_hash)
        .unwrap();

    // Keys beyond the log are not found; one query serves levels 0 and up, in the asked order.
    let keys = [
        SubtreeKey { level: 2, index: 3 },
        SubtreeKey::leaf(36),
        SubtreeKey { level: 5, index: 0 },
    ];
    let hashes = ledger.subtree_hashes(&keys).await.unwrap();
    assert_eq!(hashes[0], root_of_leaf_hashes(&leaves[12..16]));
    assert_eq!(hashes[1], leaves[36]);
    assert_eq!(hashes[2], root_of_leaf_hashes(&leaves[..32]));
    for beyond in [
        SubtreeKey::leaf(37),
        SubtreeKey {
            level: 1,
            index: 18,
        },
    ] {
        assert!(
            matches!(
                ledger.subtree_hashes(&[beyond]).await,
                Err(StoreError::NotFound { .. })
            ),
            "{beyond:?}"
        );
    }
}

async fn subtree_table_is_filled_at_start_up_after_the_migration(db: &TestDb) {
    let (store, ledger) = db.open().await;
    for i in 0..23 {
        store.append_audit(&record(i)).await.unwrap();
    }
    let key = key();
    let head = sign_tree_head(ledger.as_ref(), &key, 23, at(1_800_000_000))
        .await
        .unwrap();
    // A log hashed before migration 0430: the table exists but is empty.
    db.tamper_subtrees("DELETE FROM audit_subtrees").await;
    assert_eq!(subtree_rows(db).await, 0);
    assert!(matches!(
        prove_inclusion(ledger.as_ref(), 3, 23).await,
        Err(StoreError::Corrupt { .. })
    ));

    // The adapter fills it when it starts, once.
    let ledger: Arc<dyn AuditLedger> =
        Arc::new(SqlAuditLedger::connect(&db.config()).await.unwrap());
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(23));
    let _again = SqlAuditLedger::connect(&db.config()).await.unwrap();
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(23));
    assert_same_proofs_as_all_leaves(ledger.as_ref(), &[1, 6, 8, 13, 16, 23]).await;
    let leaves = ledger.leaf_hashes(0, 23).await.unwrap();
    let proven = prove_inclusion(ledger.as_ref(), 22, 23).await.unwrap();
    proven.proof.verify(&leaves[22], &head.root_hash).unwrap();

    // Appends found it behind too: emptied again, the next append fills it before its own rows.
    db.tamper_subtrees("DELETE FROM audit_subtrees").await;
    store.append_audit(&record(23)).await.unwrap();
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(24));
    // An even leaf completes nothing and reads nothing; the next odd one notices.
    db.tamper_subtrees("DELETE FROM audit_subtrees").await;
    store.append_audit(&record(24)).await.unwrap();
    assert_eq!(subtree_rows(db).await, 0);
    store.append_audit(&record(25)).await.unwrap();
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(26));
    assert_same_proofs_as_all_leaves(ledger.as_ref(), &[5, 24, 26]).await;
}

async fn rows_from_before_the_ledger_get_subtrees_on_the_next_append(db: &TestDb) {
    let (store, _ledger) = db.open().await;
    // Unhashed rows (before migration 0400): nothing to fill at start-up yet.
    db.raw(
        "INSERT INTO audit_log (seq, at_ns, actor, action, target, outcome, detail) VALUES \
         (1, 1800000000000000000, 'system', 'pack.load', 'pack:x', 'succeeded', '{}'), \
         (2, 1800000000000000001, 'alice', 'release.create', 'release:1', 'denied', '{}'), \
         (3, 1800000000000000002, 'alice', 'release.create', 'release:2', 'succeeded', '{}'), \
         (4, 1800000000000000003, 'bob', 'release.approve', 'release:2', 'succeeded', '{}'), \
         (5, 1800000000000000004, 'bob', 'release.approve', 'release:1', 'failed', '{}')",
    )
    .await
    .unwrap();
    let ledger: Arc<dyn AuditLedger> =
        Arc::new(SqlAuditLedger::connect(&db.config()).await.unwrap());
    assert_eq!(subtree_rows(db).await, 0);
    assert_eq!(store.append_audit(&record(6)).await.unwrap(), 6);
    assert_eq!(subtree_rows(db).await, expected_subtree_rows(6));
    assert_same_proofs_as_all_leaves(ledger.as_ref(), &[1, 2, 3, 4, 5, 6]).await;
}

async fn tampered_subtree_row_fails_against_the_signed_head(db: &TestDb) {
    let (store, ledger) = db.open().await;
    for i in 0..13 {
        store.append_audit(&record(i)).await.unwrap();
    }
    let key = key();
    let head = sign_tree_head(ledger.as_ref(), &key, 13, at(1_800_000_000))
        .await
        .unwrap();
    head.verify(&key.verifying_key()).unwrap();
    let leaves = ledger.leaf_hashes(0, 13).await.unwrap();
    prove_inclusion(ledger.as_ref(), 0, 13)
        .await
        .unwrap()
        .proof
        .verify(&leaves[0], &head.root_hash)
        .unwrap();

    // The subtree of leaves 4..8, on the audit path of leaf 0, replaced by another hash.
    let forged = root_of_leaf_hashes(&leaves[8..12]).to_hex();
    db.tamper_subtrees(&format!(
        "UPDATE audit_subtrees SET hash = '{forged}' WHERE level = 2 AND idx = 1"
    ))
    .await;
    // The server's root (leaves 0..8, 8..12, 12) does not use that row, so it still matches:
    // the forged path is what the signed head exposes.
    let proven = prove_inclusion(ledger.as_ref(), 0, 13).await.unwrap();
    assert_eq!(proven.root, head.root_hash);
    assert!(proven.proof.verify(&leaves[0], &head.root_hash).is_err());
    let older = sign_tree_head(ledger.as_ref(), &key, 4, at(1_800_000_001))
        .await
        .unwrap();
    let consistency = prove_consistency(ledger.as_ref(), 4, 13).await.unwrap();
    assert!(
        consistency
            .proof
            .verify(&older.root_hash, &head.root_hash)
            .is_err()
    );
    // Proofs that do not pass through the row still verify.
    prove_inclusion(ledger.as_ref(), 10, 13)
        .await
        .unwrap()
        .proof
        .verify(&leaves[10], &head.root_hash)
        .unwrap();
    // The leaf hashes are untouched: the all-leaves proof still verifies, and heads are
    // computed from leaf hashes, never from the cache.
    InclusionProof::build(&leaves, 0, 13)
        .unwrap()
        .verify(&leaves[0], &head.root_hash)
        .unwrap();
    let fresh = sign_tree_head(ledger.as_ref(), &key, 12, at(1_800_000_002))
        .await
        .unwrap();
    assert_eq!(fresh.root_hash, root_of_leaf_hashes(&leaves[..12]));
}
