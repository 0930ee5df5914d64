//! gatehouse-store: the SQLite and PostgreSQL adapters of the `Store` port.
//!
//! The binary calls [`open`] with a [`StoreConfig`] and gets an `Arc<dyn Store>`; nothing else in
//! gatehouse sees SQL. Opening applies the backend's versioned migrations
//! (`migrations/sqlite`, `migrations/postgres`) and refuses a database that a newer gatehouse has
//! migrated, so an old binary can never write into a schema it does not understand.
//!
//! Both adapters share one implementation of the queries (see `queries.rs`): the SQL is written
//! once in the dialect both engines accept (`$n` placeholders, `RETURNING`), which keeps the two
//! backends from drifting apart. Timestamps are stored as Unix nanoseconds and lists as JSON
//! text, so a value read back is exactly the value written.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use audit_ledger::SqlAuditLedger;
pub use blobs::{SqlBlobStore, open_blobs};
pub use events::{SqlEventStore, open_with_events};
pub use gate::{SqlGateStore, open_with_gate};
pub use gatehouse_core::store::{Store, StoreError};
pub use identity::{SqlIdentityStore, open_with_identity};

/// Runs `$body` with `$p` bound to whichever pool (`crate::pool::Pool`) `$self.pool` is; the SQL
/// is the same text for both engines.
macro_rules! with_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            crate::pool::Pool::Sqlite($p) => $body,
            crate::pool::Pool::Postgres($p) => $body,
        }
    };
}

mod audit_ledger;
mod blobs;
mod events;
mod gate;
mod identity;
mod pool;
mod postgres;
mod queries;
mod rows;
mod sqlite;

/// File name of the SQLite database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "gatehouse.db";

/// How long opening a PostgreSQL connection may take before [`open`] gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where gatehouse keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Embedded SQLite: `<data_dir>/gatehouse.db`, created with the directory on first run.
    Sqlite { data_dir: PathBuf },
    /// PostgreSQL at a `postgres://` or `postgresql://` URL.
    Postgres { url: String },
}

impl StoreConfig {
    /// The store the `serve`/`demo` options ask for: PostgreSQL when a database URL is given,
    /// otherwise SQLite under `data_dir`.
    pub fn from_options(data_dir: impl Into<PathBuf>, database_url: Option<&str>) -> Self {
        match database_url {
            Some(url) => Self::Postgres {
                url: url.to_owned(),
            },
            None => Self::Sqlite {
                data_dir: data_dir.into(),
            },
        }
    }

    /// Where the data lives, for messages; never contains a password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { data_dir } => {
                format!("SQLite at {}", data_dir.join(SQLITE_FILE_NAME).display())
            }
            Self::Postgres { url } => format!("PostgreSQL at {}", postgres::redact_url(url)),
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password; show only what `describe` shows.
        f.write_str(&self.describe())
    }
}

/// Opens (creating or migrating as needed) the store `config` names.
///
/// Errors: [`StoreError::Unavailable`] when the database cannot be reached or created (within
/// [`CONNECT_TIMEOUT`] for PostgreSQL), [`StoreError::SchemaTooNew`] when it was migrated by a
/// newer gatehouse.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Sqlite { data_dir } => {
            Ok(Arc::new(sqlite::SqliteStore::open(data_dir).await?))
        }
        StoreConfig::Postgres { url } => Ok(Arc::new(postgres::PgStore::open(url).await?)),
    }
}

/// The highest migration version this binary knows for the backend `config` names.
pub fn known_schema_version(config: &StoreConfig) -> i64 {
    match config {
        StoreConfig::Sqlite { .. } => queries::latest_version(&sqlite::MIGRATOR),
        StoreConfig::Postgres { .. } => queries::latest_version(&postgres::MIGRATOR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_describe_hide_the_password() {
        let config = StoreConfig::from_options("ignored", Some("postgres://gh:s3cret@db:5432/gh"));
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.describe(), "PostgreSQL at gh@db:5432/gh");
    }

    #[test]
    fn both_backends_know_the_same_migration_versions() {
        // A migration added for one backend only would let the two schemas drift apart while
        // the shared queries assume they are the same.
        let versions = |m: &sqlx::migrate::Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&sqlite::MIGRATOR), versions(&postgres::MIGRATOR));
        assert_eq!(
            known_schema_version(&StoreConfig::Sqlite {
                data_dir: PathBuf::new()
            }),
            known_schema_version(&StoreConfig::Postgres { url: String::new() })
        );
    }

    #[test]
    fn data_dir_is_used_without_a_url() {
        let config = StoreConfig::from_options("/var/lib/gatehouse", None);
        assert_eq!(
            config.describe(),
            "SQLite at /var/lib/gatehouse/gatehouse.db"
        );
    }
}
