//! The connection pool every secondary adapter (gate, events, blobs, identities, audit ledger)
//! opens next to the main [`crate::open`] store, over a database it has already migrated.
//!
//! One constructor keeps the SQLite settings (WAL, `synchronous=FULL`, foreign keys, busy
//! timeout) and the PostgreSQL URL handling (password never in messages) the same for all of
//! them; each adapter only says how many connections it needs and how long a SQLite writer may
//! wait for the write lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{CONNECT_TIMEOUT, SQLITE_FILE_NAME, StoreConfig, StoreError};

/// Whichever engine the store runs on; the adapters' SQL is the same text for both
/// (`$n` placeholders, `RETURNING`, `ON CONFLICT`), run through `with_pool!`.
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A pool over the database `config` names, and that database described for messages (a path,
/// or the URL without its password).
pub(crate) async fn connect(
    config: &StoreConfig,
    max_connections: u32,
    sqlite_busy_timeout: Duration,
) -> Result<(Pool, String), StoreError> {
    match config {
        StoreConfig::Sqlite { data_dir } => {
            let path = data_dir.join(SQLITE_FILE_NAME);
            let target = path.display().to_string();
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(sqlite_busy_timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(sqlite_busy_timeout)
                .connect_with(options)
                .await
                .map_err(|e| StoreError::Unavailable {
                    target: target.clone(),
                    reason: e.to_string(),
                })?;
            Ok((Pool::Sqlite(pool), target))
        }
        StoreConfig::Postgres { url } => {
            let target = crate::postgres::redact_url(url);
            let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable {
                target: target.clone(),
                reason: format!("invalid database URL: {e}"),
            })?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_lazy_with(options);
            Ok((Pool::Postgres(pool), target))
        }
    }
}
