//! The `IdentityStore` adapter: local people, browser sessions and token labels on SQLite and
//! PostgreSQL.
//!
//! The tables come from migration 0420 and live in the control plane's database. Like the
//! gate and event stores it has a pool of its own, so a burst of sign-ins cannot starve the
//! API's other queries. Disabling a person revokes their tokens and ends their sessions in the
//! same transaction, so there is no moment where a disabled person still holds a working
//! credential.

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::identity::{ApiTokenRecord, TokenId};
use gatehouse_core::identity_store::{DisableOutcome, IdentityStore, LabeledToken, LocalUser};
use gatehouse_core::session::{SessionId, SessionRecord};
use gatehouse_core::store::{MAX_PAGE_SIZE, Store, StoreError};
use jiff::Timestamp;

use crate::StoreConfig;
use crate::pool::Pool;
use crate::queries::{page, query_error};
use crate::rows::{
    auth_method_text, json_text, labeled_token, local_user, nanos, opt_nanos, session,
};

/// How long a SQLite writer waits for the write lock (the API's own writes share the file).
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Local people, sessions and token labels in the gatehouse database.
pub struct SqlIdentityStore {
    pool: Pool,
    target: String,
}

const USER_COLUMNS: &str =
    "id, display, roles, password_hash, created_at_ns, updated_at_ns, disabled_at_ns";
const SESSION_COLUMNS: &str = "id, secret_hash, principal, established_by, created_at_ns, \
                               last_seen_at_ns, expires_at_ns, ended_at_ns";
const TOKEN_COLUMNS: &str = "id, secret_hash, roles, principal, created_at_ns, expires_at_ns, \
                             revoked_at_ns, last_used_at_ns, label";

/// Opens the control-plane store and the identity store over the same database.
pub async fn open_with_identity(
    config: &StoreConfig,
) -> Result<(Arc<dyn Store>, Arc<dyn IdentityStore>), StoreError> {
    let store = crate::open(config).await?;
    let identity: Arc<dyn IdentityStore> = Arc::new(SqlIdentityStore::connect(config).await?);
    Ok((store, identity))
}

impl SqlIdentityStore {
    /// Connects to a database that [`crate::open`] has already migrated.
    pub async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let (pool, target) = crate::pool::connect(config, 4, SQLITE_BUSY_TIMEOUT).await?;
        Ok(Self { pool, target })
    }

    fn error(&self, what: impl FnOnce() -> String, e: sqlx::Error) -> StoreError {
        query_error(&self.target, what, e)
    }
}

#[async_trait]
impl IdentityStore for SqlIdentityStore {
    async fn insert_user(&self, user: &LocalUser) -> Result<(), StoreError> {
        let roles = json_text("roles", &user.roles)?;
        let created = nanos("created_at", user.created_at)?;
        let updated = nanos("updated_at", user.updated_at)?;
        let disabled = opt_nanos("disabled_at", user.disabled_at)?;
        with_pool!(self, p => sqlx::query(
            "INSERT INTO local_users (id, display, roles, password_hash, created_at_ns, \
             updated_at_ns, disabled_at_ns) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.id)
        .bind(&user.display)
        .bind(&roles)
        .bind(&user.password_hash)
        .bind(created)
        .bind(updated)
        .bind(disabled)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(|e| self.error(|| format!("person {}", user.id), e)))
    }

    async fn find_user(&self, id: &str) -> Result<Option<LocalUser>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM local_users WHERE id = $1");
        with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(|e| self.error(|| format!("person {id}"), e))?;
            row.as_ref().map(local_user).transpose()
        })
    }

    async fn list_users(&self) -> Result<Vec<LocalUser>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM local_users ORDER BY id LIMIT $1");
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(page(MAX_PAGE_SIZE))
                .fetch_all(p)
                .await
                .map_err(|e| self.error(|| "people".into(), e))?;
            rows.iter().map(local_user).collect()
        })
    }

    async fn disable_user(&self, id: &str, at: Timestamp) -> Result<DisableOutcome, StoreError> {
        let at_ns = nanos("disabled_at", at)?;
        let what = || format!("person {id}");
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(|e| self.error(what, e))?;
            // The first statement writes, so SQLite takes the write lock at once: a read first
            // would pin a snapshot that a concurrent writer (the running server) can invalidate,
            // failing the upgrade with "database is locked" instead of waiting.
            let disabled_at: Option<Option<i64>> = sqlx::query_scalar(
                "UPDATE local_users SET disabled_at_ns = COALESCE(disabled_at_ns, $1), \
                 updated_at_ns = $1 WHERE id = $2 RETURNING disabled_at_ns",
            )
            .bind(at_ns)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.error(what, e))?;
            let Some(disabled_at) = disabled_at else {
                return Err(StoreError::NotFound { what: what() });
            };
            let tokens = sqlx::query(
                "UPDATE api_tokens SET revoked_at_ns = $1 WHERE principal = $2 \
                 AND (revoked_at_ns IS NULL OR revoked_at_ns > $1)",
            )
            .bind(at_ns)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(what, e))?
            .rows_affected();
            let sessions = sqlx::query(
                "UPDATE sessions SET ended_at_ns = $1 WHERE principal = $2 \
                 AND (ended_at_ns IS NULL OR ended_at_ns > $1)",
            )
            .bind(at_ns)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(what, e))?
            .rows_affected();
            tx.commit().await.map_err(|e| self.error(what, e))?;
            Ok(DisableOutcome {
                tokens_revoked: tokens,
                sessions_ended: sessions,
                already_disabled: disabled_at != Some(at_ns),
            })
        })
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let method = auth_method_text(session.established_by)?;
        let created = nanos("created_at", session.created_at)?;
        let seen = nanos("last_seen_at", session.last_seen_at)?;
        let expires = nanos("expires_at", session.expires_at)?;
        let ended = opt_nanos("ended_at", session.ended_at)?;
        let sql = format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        with_pool!(self, p => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(session.id.as_str())
            .bind(session.secret_hash.to_hex())
            .bind(&session.principal)
            .bind(&method)
            .bind(created)
            .bind(seen)
            .bind(expires)
            .bind(ended)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(|e| self.error(|| format!("session {}", session.id), e)))
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id.as_str())
                .fetch_optional(p)
                .await
                .map_err(|e| self.error(|| format!("session {id}"), e))?;
            row.as_ref().map(session).transpose()
        })
    }

    async fn touch_session(&self, id: &SessionId, at: Timestamp) -> Result<(), StoreError> {
        let at_ns = nanos("last_seen_at", at)?;
        let done = with_pool!(self, p => sqlx::query(
            "UPDATE sessions SET last_seen_at_ns = $1 WHERE id = $2 AND last_seen_at_ns < $1",
        )
        .bind(at_ns)
        .bind(id.as_str())
        .execute(p)
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| self.error(|| format!("session {id}"), e))?);
        if done == 0 && self.find_session(id).await?.is_none() {
            return Err(StoreError::NotFound {
                what: format!("session {id}"),
            });
        }
        Ok(())
    }

    async fn end_session(&self, id: &SessionId, at: Timestamp) -> Result<(), StoreError> {
        let at_ns = nanos("ended_at", at)?;
        let done = with_pool!(self, p => sqlx::query(
            "UPDATE sessions SET ended_at_ns = COALESCE(ended_at_ns, $1) WHERE id = $2",
        )
        .bind(at_ns)
        .bind(id.as_str())
        .execute(p)
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| self.error(|| format!("session {id}"), e))?);
        if done == 0 {
            return Err(StoreError::NotFound {
                what: format!("session {id}"),
            });
        }
        Ok(())
    }

    async fn purge_sessions(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before_ns = nanos("before", before)?;
        with_pool!(self, p => sqlx::query(
            "DELETE FROM sessions WHERE expires_at_ns < $1 \
             OR (ended_at_ns IS NOT NULL AND ended_at_ns < $1)",
        )
        .bind(before_ns)
        .execute(p)
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| self.error(|| "expired sessions".into(), e)))
    }

    async fn insert_labeled_token(
        &self,
        record: &ApiTokenRecord,
        label: Option<&str>,
    ) -> Result<(), StoreError> {
        let roles = json_text("roles", &record.roles)?;
        let created = nanos("created_at", record.created_at)?;
        let expires = opt_nanos("expires_at", record.expires_at)?;
        let revoked = opt_nanos("revoked_at", record.revoked_at)?;
        let used = opt_nanos("last_used_at", record.last_used_at)?;
        let sql = format!(
            "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        with_pool!(self, p => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(record.id.as_str())
            .bind(record.secret_hash.to_hex())
            .bind(&roles)
            .bind(&record.principal)
            .bind(created)
            .bind(expires)
            .bind(revoked)
            .bind(used)
            .bind(label)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(|e| self.error(|| format!("API token {}", record.id), e)))
    }

    async fn list_labeled_tokens(
        &self,
        principal: Option<&str>,
    ) -> Result<Vec<LabeledToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ($1 IS NULL OR principal = $1) \
             ORDER BY created_at_ns, id LIMIT $2"
        );
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(principal)
                .bind(page(MAX_PAGE_SIZE))
                .fetch_all(p)
                .await
                .map_err(|e| self.error(|| "API tokens".into(), e))?;
            rows.iter().map(labeled_token).collect()
        })
    }

    async fn token_label(&self, id: &TokenId) -> Result<Option<String>, StoreError> {
        with_pool!(self, p => {
            let label: Option<Option<String>> =
                sqlx::query_scalar("SELECT label FROM api_tokens WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(p)
                    .await
                    .map_err(|e| self.error(|| format!("API token {id}"), e))?;
            Ok(label.flatten())
        })
    }
}
