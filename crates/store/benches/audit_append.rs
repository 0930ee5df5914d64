#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Audit append throughput with durable commits, beside a raw insert of the same rows.
//!
//! Why: every state change and denied attempt is appended to the audit log, so its rate bounds
//! how fast gatehouse can change state. The ceiling is what the database does for a plain
//! one-row-per-transaction insert with the same durability settings; the store adds the
//! append lock (SQLite `BEGIN IMMEDIATE`, a table lock on PostgreSQL), the hash chain, the
//! subtree rows and JSON encoding, and takes back with group commit (concurrent appends share
//! one transaction) what the lock costs, which only the 8-writer rows can show.
//!
//! Run: `cargo bench -p gatehouse-store --bench audit_append` (SQLite); under
//! `scripts/with-postgres` PostgreSQL is measured too. `AUDIT_BENCH_ENTRIES` sets the number of
//! entries per measurement (default 2000). To compare with an older append, build this bench
//! at both commits and run both binaries in one `scripts/with-postgres` session.

use std::sync::Arc;
use std::time::Instant;

use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::store::Store;
use gatehouse_store::{StoreConfig, open};
use jiff::Timestamp;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const WRITERS: [usize; 2] = [1, 8];

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        at: Timestamp::from_second(1_800_000_000 + i as i64).unwrap(),
        actor: "user:alice".into(),
        action: "release.approve".into(),
        target: format!("release:{i}"),
        outcome: AuditOutcome::Succeeded,
        detail: serde_json::json!({"slot": "security-lead", "comment": "looks good", "n": i}),
    }
}

async fn store_appends(store: Arc<dyn Store>, entries: usize, writers: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in (w..entries).step_by(writers) {
                store.append_audit(&record(i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    entries as f64 / started.elapsed().as_secs_f64()
}

const RAW_TABLE: &str = "CREATE TABLE raw_audit (seq INTEGER PRIMARY KEY, at_ns BIGINT NOT NULL, \
     actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, \
     detail TEXT NOT NULL)";

/// The ceiling: one autocommitted INSERT per row, sequence assigned by the database.
macro_rules! raw_inserts {
    ($pool:expr, $entries:expr, $writers:expr) => {{
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..$writers {
            let pool = $pool.clone();
            tasks.push(tokio::spawn(async move {
                for i in (w..$entries).step_by($writers) {
                    let r = record(i);
                    sqlx::query(
                        "INSERT INTO raw_audit (at_ns, actor, action, target, outcome, detail) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(r.at.as_nanosecond() as i64)
                    .bind(r.actor)
                    .bind(r.action)
                    .bind(r.target)
                    .bind(r.outcome.as_str())
                    .bind(serde_json::to_string(&r.detail).unwrap())
                    .execute(&pool)
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        $entries as f64 / started.elapsed().as_secs_f64()
    }};
}

fn row(backend: &str, writers: usize, store_rate: f64, raw_rate: f64) {
    println!(
        "| {backend} | {writers} | {store_rate:.0} | {raw_rate:.0} | {:.0} % |",
        100.0 * store_rate / raw_rate
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let entries: usize = std::env::var("AUDIT_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!("audit append, {entries} entries per run, durable commits (entries/s)");
    println!("| backend | writers | Store::append_audit | raw INSERT | ratio |");
    println!("| --- | --- | --- | --- | --- |");

    for writers in WRITERS {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&StoreConfig::Sqlite {
            data_dir: dir.path().to_path_buf(),
        })
        .await
        .unwrap();
        let store_rate = store_appends(store, entries, writers).await;

        // Same file settings as the store: WAL, synchronous=FULL, busy timeout.
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("raw.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::query(RAW_TABLE).execute(&pool).await.unwrap();
        let raw_rate = raw_inserts!(pool, entries, writers);
        row("SQLite", writers, store_rate, raw_rate);
    }

    let Ok(url) = std::env::var("GATEHOUSE_TEST_POSTGRES_URL") else {
        println!("PostgreSQL: skipped: GATEHOUSE_TEST_POSTGRES_URL not set");
        return;
    };
    for writers in WRITERS {
        let schema = format!("gh_bench_{}_{writers}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let separator = if url.contains('?') { '&' } else { '?' };
        let schema_url = format!("{url}{separator}options[search_path]={schema}");
        let store = open(&StoreConfig::Postgres {
            url: schema_url.clone(),
        })
        .await
        .unwrap();
        let store_rate = store_appends(store, entries, writers).await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect(&schema_url)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE raw_audit (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             at_ns BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, \
             target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let raw_rate = raw_inserts!(pool, entries, writers);
        row("PostgreSQL", writers, store_rate, raw_rate);
        pool.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
