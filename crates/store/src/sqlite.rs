//! The embedded SQLite backend: one file in the data directory.
//!
//! Opened in WAL mode (readers never block the writer, and an offline admin command can work
//! on the file while the server runs), with foreign keys on, `synchronous=FULL` so an
//! acknowledged audit entry survives a power cut, and a busy timeout so concurrent writers
//! wait instead of failing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_core::store::StoreError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::SQLITE_FILE_NAME;
use crate::queries::{self, impl_store};

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for another writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct SqliteStore {
    pool: SqlitePool,
    description: String,
    audit: crate::audit_ledger::AuditAppender,
}

impl SqliteStore {
    pub(crate) async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(SQLITE_FILE_NAME);
        let description = format!("SQLite at {}", path.display());
        let unavailable = |reason: String| StoreError::Unavailable {
            target: path.display().to_string(),
            reason,
        };
        create_data_dir(data_dir).map_err(|e| {
            unavailable(format!(
                "cannot create the data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        create_private_file(&path)
            .map_err(|e| unavailable(format!("cannot create the database file: {e}")))?;

        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| unavailable(e.to_string()))?;

        let applied: Option<i64> = if table_exists(&pool).await? {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(&pool)
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?
        } else {
            None
        };
        let binary = queries::latest_version(&MIGRATOR);
        if let Some(database) = applied.filter(|v| *v > binary) {
            pool.close().await;
            return Err(StoreError::SchemaTooNew { database, binary });
        }
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!("migrating {} failed: {e}", path.display()))
        })?;
        let audit = crate::audit_ledger::AuditAppender::new(
            crate::pool::Pool::Sqlite(pool.clone()),
            description.clone(),
        );
        Ok(Self {
            pool,
            description,
            audit,
        })
    }
}

async fn table_exists(pool: &SqlitePool) -> Result<bool, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(count > 0)
}

/// Creates the data directory (and parents); new directories are private to the owner because
/// the database holds token hashes and the audit log.
fn create_data_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    if !dir.is_dir() {
        return Err(std::io::Error::other("exists and is not a directory"));
    }
    Ok(())
}

/// Creates the database file readable by its owner only, if it does not exist yet (SQLite
/// itself would create it world-readable under the usual umask).
fn create_private_file(path: &PathBuf) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl_store!(SqliteStore);
