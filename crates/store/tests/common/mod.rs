//! The database every store suite runs its cases against: SQLite in a temporary directory
//! always, and PostgreSQL in a fresh schema when `GATEHOUSE_TEST_POSTGRES_URL` is set.
//!
//! Every case is an `async fn(&TestDb)`; [`suite!`] instantiates it in module `sqlite` and
//! module `postgres` (which prints "skipped: GATEHOUSE_TEST_POSTGRES_URL not set" and passes
//! without the variable). Each PostgreSQL test gets its own schema, so runs and parallel tests
//! never see each other's rows. The server's vault suite includes this module too (by path), so
//! every suite that runs on both backends shares one harness. [`TestDb::raw`] and [`TestDb::count`] reach the database around
//! the adapters (to tamper with rows); suites add their own `impl TestDb` (how to open their
//! adapter) next to their cases.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use gatehouse_store::StoreConfig;
use jiff::Timestamp;
use sqlx::Connection;

pub const POSTGRES_URL_VAR: &str = "GATEHOUSE_TEST_POSTGRES_URL";

pub enum Backend {
    Sqlite { dir: tempfile::TempDir },
    Postgres { admin_url: String, schema: String },
}

pub struct TestDb {
    pub backend: Backend,
    /// A directory for files a case keeps beside the database (e.g. an upload spool).
    pub scratch: tempfile::TempDir,
}

impl TestDb {
    pub fn sqlite() -> Self {
        Self {
            backend: Backend::Sqlite {
                dir: tempfile::tempdir().unwrap(),
            },
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    /// A fresh schema in the database named by `GATEHOUSE_TEST_POSTGRES_URL`, or `None`.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var(POSTGRES_URL_VAR).ok()?;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "gh_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Timestamp::now().as_millisecond()
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(Self {
            backend: Backend::Postgres { admin_url, schema },
            scratch: tempfile::tempdir().unwrap(),
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    pub fn config(&self) -> StoreConfig {
        match &self.backend {
            Backend::Sqlite { dir } => StoreConfig::Sqlite {
                data_dir: dir.path().join("data"),
            },
            Backend::Postgres { admin_url, schema } => {
                let separator = if admin_url.contains('?') { '&' } else { '?' };
                StoreConfig::Postgres {
                    url: format!("{admin_url}{separator}options[search_path]={schema}"),
                }
            }
        }
    }

    /// Runs `sql` on a separate raw connection, bypassing the store (to tamper with or corrupt
    /// rows the adapters would refuse to change); the number of rows it affected.
    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.config() {
            StoreConfig::Sqlite { data_dir } => {
                let path = data_dir.join(gatehouse_store::SQLITE_FILE_NAME);
                let mut conn = sqlx::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await?;
                let done = sqlx::raw_sql(sql).execute(&mut conn).await;
                conn.close().await?;
                Ok(done?.rows_affected())
            }
            StoreConfig::Postgres { url } => {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                let done = sqlx::raw_sql(sql).execute(&mut conn).await;
                conn.close().await?;
                Ok(done?.rows_affected())
            }
        }
    }

    /// One integer read by `sql` on a separate raw connection, around the store.
    pub async fn count(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.config() {
            StoreConfig::Sqlite { data_dir } => {
                let path = data_dir.join(gatehouse_store::SQLITE_FILE_NAME);
                let mut conn = sqlx::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            StoreConfig::Postgres { url } => {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Every value of the single byte-string column `sql` selects, read around the store.
    pub async fn bytes_column(&self, sql: &str) -> Vec<Vec<u8>> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.config() {
            StoreConfig::Sqlite { data_dir } => {
                let path = data_dir.join(gatehouse_store::SQLITE_FILE_NAME);
                let mut conn = sqlx::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
            }
            StoreConfig::Postgres { url } => {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
            }
        }
    }

    pub async fn cleanup(self) {
        if let Backend::Postgres { admin_url, schema } = &self.backend {
            let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut admin)
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
    }
}

/// Instantiates each case on SQLite (module `sqlite`) and PostgreSQL (module `postgres`).
#[macro_export]
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = $crate::common::TestDb::sqlite();
                    super::$case(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = $crate::common::TestDb::postgres().await else {
                        eprintln!("skipped: {} not set", $crate::common::POSTGRES_URL_VAR);
                        return;
                    };
                    super::$case(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}
