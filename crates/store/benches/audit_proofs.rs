#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Audit proof time from the subtree cache (migration 0430) beside the all-leaves computation
//! it replaced, in one run, on logs of 10,000 and 100,000 entries.
//!
//! Why: `GET /api/v1/audit/proof/inclusion` and `/proof/consistency` used to read every leaf
//! hash of the tree (`AuditLedger::leaf_hashes(0, n)`) and hash them all, O(n) per request; now
//! they read the O(log n) perfect-subtree hashes a proof needs in one query
//! (`gatehouse_core::audit_log::prove_inclusion`). "old" below is exactly what the route did
//! (read all leaf hashes, build the proof, compute the root); "new" is what it does now. Both
//! must give the same bytes, which the bench asserts as it goes.
//!
//! The log is written directly (rows hashed by `gatehouse_ledger::Ledger`, as the store would,
//! in one transaction) so that 100,000 entries take seconds, not minutes of durable appends; the
//! subtree table is then filled by `SqlAuditLedger::connect`, the start-up fill a log migrated
//! to 0430 gets, and that time is reported too.
//!
//! Run: `cargo bench -p gatehouse-store --bench audit_proofs` (SQLite); under
//! `scripts/with-postgres` PostgreSQL is measured too. `AUDIT_PROOF_SIZES` (comma-separated)
//! overrides the log sizes.

use std::time::{Duration, Instant};

use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::audit_log::{AuditLedger, prove_consistency, prove_inclusion};
use gatehouse_ledger::merkle::root_of_leaf_hashes;
use gatehouse_ledger::{ConsistencyProof, InclusionProof, Ledger};
use gatehouse_store::{SqlAuditLedger, StoreConfig, open};
use jiff::Timestamp;
use sqlx::Connection;

/// Proofs timed per method and log size; the old method is O(n), so it gets fewer.
const NEW_PROOFS: usize = 200;
const OLD_PROOFS: usize = 15;
const INSERT_BATCH: usize = 500;

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        at: Timestamp::from_second(1_800_000_000 + i as i64).unwrap(),
        actor: "user:alice".into(),
        action: "release.approve".into(),
        target: format!("release:{i}"),
        outcome: AuditOutcome::Succeeded,
        detail: serde_json::json!({"slot": "security-lead", "comment": "looks good", "n": i}),
    }
}

/// Writes `n` hashed entries in one transaction, as the store would have appended them.
macro_rules! populate {
    ($conn:expr, $n:expr) => {{
        let mut ledger = Ledger::new();
        let mut tx = $conn.begin().await.unwrap();
        let mut i = 0u64;
        while i < $n {
            let batch = (($n - i) as usize).min(INSERT_BATCH);
            let values = (0..batch)
                .map(|r| {
                    let b = r * 9;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO audit_log (seq, at_ns, actor, action, target, outcome, detail, \
                 prev_hash, leaf_hash) VALUES {values}"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for _ in 0..batch {
                let r = record(i);
                let detail = serde_json::to_string(&r.detail).unwrap();
                let appended = ledger.append(r.clone());
                query = query
                    .bind(appended.entry.seq as i64)
                    .bind(r.at.as_nanosecond() as i64)
                    .bind(r.actor)
                    .bind(r.action)
                    .bind(r.target)
                    .bind(r.outcome.as_str())
                    .bind(detail)
                    .bind(appended.entry.prev.to_hex())
                    .bind(appended.leaf_hash.to_hex());
                i += 1;
            }
            query.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        ledger.root()
    }};
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Spread-out leaf indices, the same in every run.
fn index(j: usize, n: u64) -> u64 {
    (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

async fn measure(backend: &str, config: &StoreConfig, n: u64, root: gatehouse_ledger::Hash) {
    let started = Instant::now();
    let ledger = SqlAuditLedger::connect(config).await.unwrap();
    let fill = started.elapsed();
    let ledger: &dyn AuditLedger = &ledger;
    assert_eq!(ledger.tree_size().await.unwrap(), n);

    let mut old = Vec::new();
    for j in 0..OLD_PROOFS {
        let m = index(j, n);
        let started = Instant::now();
        let leaves = ledger.leaf_hashes(0, n).await.unwrap();
        let proof = InclusionProof::build(&leaves, m, n).unwrap();
        let old_root = root_of_leaf_hashes(&leaves);
        old.push(started.elapsed());
        let new = prove_inclusion(ledger, m, n).await.unwrap();
        assert_eq!(new.proof, proof);
        assert_eq!(new.root, old_root);
        assert_eq!(new.root, root);
    }
    let mut new = Vec::new();
    for j in 0..NEW_PROOFS {
        let m = index(j, n);
        let started = Instant::now();
        let proven = prove_inclusion(ledger, m, n).await.unwrap();
        new.push(started.elapsed());
        assert_eq!(proven.root, root);
    }
    let (old, new) = (median(old), median(new));

    // Consistency from a third of the log to all of it, the old way and the new.
    let first = n / 3;
    let mut old_c = Vec::new();
    let mut new_c = Vec::new();
    for _ in 0..OLD_PROOFS.min(5) {
        let started = Instant::now();
        let leaves = ledger.leaf_hashes(0, n).await.unwrap();
        let proof = ConsistencyProof::build(&leaves, first, n).unwrap();
        let _roots = (
            root_of_leaf_hashes(&leaves[..first as usize]),
            root_of_leaf_hashes(&leaves),
        );
        old_c.push(started.elapsed());
        let started = Instant::now();
        let proven = prove_consistency(ledger, first, n).await.unwrap();
        new_c.push(started.elapsed());
        assert_eq!(proven.proof, proof);
    }
    let (old_c, new_c) = (median(old_c), median(new_c));
    println!(
        "| {backend} | {n} | {} | {} | {} | {:.0}× | {} | {} | {:.0}× |",
        ms(fill),
        ms(old),
        ms(new),
        old.as_secs_f64() / new.as_secs_f64(),
        ms(old_c),
        ms(new_c),
        old_c.as_secs_f64() / new_c.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<u64> = std::env::var("AUDIT_PROOF_SIZES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    println!(
        "audit proofs, median per proof: old = read all leaf hashes + build + root, \
         new = subtree cache ({NEW_PROOFS} inclusion proofs new, {OLD_PROOFS} old)"
    );
    println!(
        "| backend | entries | start-up fill of the cache | inclusion old | inclusion new | \
         speed-up | consistency old | consistency new | speed-up |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");

    for &n in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::Sqlite {
            data_dir: dir.path().to_path_buf(),
        };
        drop(open(&config).await.unwrap());
        let mut conn = sqlx::SqliteConnection::connect_with(
            &sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join(gatehouse_store::SQLITE_FILE_NAME)),
        )
        .await
        .unwrap();
        let root = populate!(conn, n);
        conn.close().await.unwrap();
        measure("SQLite", &config, n, root).await;
    }

    let Ok(url) = std::env::var("GATEHOUSE_TEST_POSTGRES_URL") else {
        println!("PostgreSQL: skipped: GATEHOUSE_TEST_POSTGRES_URL not set");
        return;
    };
    for &n in &sizes {
        let schema = format!("gh_bench_proofs_{}_{n}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let separator = if url.contains('?') { '&' } else { '?' };
        let schema_url = format!("{url}{separator}options[search_path]={schema}");
        let config = StoreConfig::Postgres {
            url: schema_url.clone(),
        };
        drop(open(&config).await.unwrap());
        let mut conn = sqlx::PgConnection::connect(&schema_url).await.unwrap();
        let root = populate!(conn, n);
        conn.close().await.unwrap();
        measure("PostgreSQL", &config, n, root).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
