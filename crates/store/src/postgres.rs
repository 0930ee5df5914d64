//! The PostgreSQL backend, for deployments that already run a database server.
//!
//! Connecting is bounded by [`CONNECT_TIMEOUT`](crate::CONNECT_TIMEOUT) so a wrong URL fails
//! start-up quickly with a message naming the server (never the password). The schema follows
//! the connection's `search_path`, so one database can host several gatehouse instances (the
//! test suite uses a fresh schema per test).

use std::str::FromStr;

use gatehouse_core::store::StoreError;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::CONNECT_TIMEOUT;
use crate::queries::{self, impl_store};

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub(crate) struct PgStore {
    pool: PgPool,
    description: String,
    audit: crate::audit_ledger::AuditAppender,
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        let target = redact_url(url);
        let unavailable = |reason: String| StoreError::Unavailable {
            target: target.clone(),
            reason,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(unavailable(
                "the database URL must start with postgres:// or postgresql://".into(),
            ));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| unavailable(format!("invalid database URL: {e}")))?;
        // One direct connection first: a pool would retry until its acquire timeout and then
        // report only "pool timed out", hiding the real cause (refused, bad password, no such
        // database).
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(probe)) => {
                let _ = probe.close().await;
            }
            Ok(Err(sqlx::Error::Io(e))) => {
                return Err(unavailable(format!(
                    "{e} (is PostgreSQL running and accepting TCP connections there?)"
                )));
            }
            Ok(Err(e)) => return Err(unavailable(e.to_string())),
            Err(_) => {
                return Err(unavailable(format!(
                    "no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);

        let has_migrations: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?;
        let applied: Option<i64> = if has_migrations {
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
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {target} failed: {e}")))?;
        let description = format!("PostgreSQL at {target}");
        let audit = crate::audit_ledger::AuditAppender::new(
            crate::pool::Pool::Postgres(pool.clone()),
            description.clone(),
        );
        Ok(Self {
            pool,
            description,
            audit,
        })
    }
}

/// `user@host:port/database` from a PostgreSQL URL: enough to find the server, no password.
pub(crate) fn redact_url(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(options) => format!(
            "{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(""),
        ),
        Err(_) => "(unparseable database URL)".to_owned(),
    }
}

impl_store!(PgStore);
