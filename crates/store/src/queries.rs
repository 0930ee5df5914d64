//! The `Store` implementation shared by both backends.
//!
//! The SQL below is written once in the subset SQLite and PostgreSQL both accept (`$n`
//! placeholders, `RETURNING`, `CASE`, `COALESCE`), and [`impl_store!`] instantiates the same
//! method bodies for each backend's pool type. A backend supplies only what really differs:
//! how it serialises audit appends and how it describes itself.

use gatehouse_core::store::{MAX_PAGE_SIZE, StoreError};
use sqlx::migrate::Migrator;

/// Column lists, as macros so they can be `concat!`ed into `'static` SQL strings.
macro_rules! pack_revision_columns {
    () => {
        "id, digest, document_count, loaded_at_ns, source"
    };
}
macro_rules! release_columns {
    () => {
        "id, service, version, release_class, artifact_digests, owner, change_summary, \
         change_ticket, change_pull_request, target_environment, submitter, created_at_ns"
    };
}
macro_rules! api_token_columns {
    () => {
        "id, secret_hash, roles, principal, created_at_ns, expires_at_ns, revoked_at_ns, \
         last_used_at_ns"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, at_ns, actor, action, target, outcome, detail"
    };
}

/// The highest migration version in `migrator`.
pub(crate) fn latest_version(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// `limit` reduced to [`MAX_PAGE_SIZE`], as the SQL type.
pub(crate) fn page(limit: u32) -> i64 {
    i64::from(limit.min(MAX_PAGE_SIZE))
}

/// A `LIKE` pattern (escape character `\`) matching JSON text that contains `value` as a JSON
/// string, e.g. `%"admin"%`.
pub(crate) fn json_string_like_pattern(value: &str) -> Result<String, StoreError> {
    let encoded = serde_json::to_string(value).map_err(|e| StoreError::InvalidValue {
        field: "role".into(),
        reason: e.to_string(),
    })?;
    let mut pattern = String::with_capacity(encoded.len() + 2);
    pattern.push('%');
    for c in encoded.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(pattern)
}

/// Maps a query error: lost connections are `Unavailable` (naming `target`), unique-key
/// violations are `Conflict` (naming `what`), anything else is `Backend`.
pub(crate) fn query_error(
    target: &str,
    what: impl FnOnce() -> String,
    e: sqlx::Error,
) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            StoreError::Unavailable {
                target: target.to_owned(),
                reason: e.to_string(),
            }
        }
        other => StoreError::Backend(other.to_string()),
    }
}

macro_rules! impl_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl gatehouse_core::store::Store for $store {
            fn describe(&self) -> String {
                self.description.clone()
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.error(|| "ping".into(), e))?;
                Ok(())
            }

            async fn schema_version(&self) -> Result<i64, StoreError> {
                let version: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| self.error(|| "schema version".into(), e))?;
                Ok(version.unwrap_or(0))
            }

            async fn record_pack_revision(
                &self,
                revision: &gatehouse_core::store::PackRevision,
            ) -> Result<(), StoreError> {
                let count = i64::try_from(revision.document_count).map_err(|_| {
                    StoreError::InvalidValue {
                        field: "document_count".into(),
                        reason: format!("{} is too large", revision.document_count),
                    }
                })?;
                sqlx::query(
                    "INSERT INTO pack_revisions (digest, document_count, loaded_at_ns, source) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&revision.digest)
                .bind(count)
                .bind(crate::rows::nanos("loaded_at", revision.loaded_at)?)
                .bind(&revision.source)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(|| format!("pack revision {}", revision.digest), e))?;
                Ok(())
            }

            async fn latest_pack_revision(
                &self,
            ) -> Result<Option<gatehouse_core::store::PackRevision>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    crate::queries::pack_revision_columns!(),
                    " FROM pack_revisions ORDER BY id DESC LIMIT 1"
                ))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(|| "latest pack revision".into(), e))?;
                row.as_ref().map(crate::rows::pack_revision).transpose()
            }

            async fn create_release(
                &self,
                release: &gatehouse_core::release::Release,
            ) -> Result<(), StoreError> {
                sqlx::query(concat!(
                    "INSERT INTO releases (",
                    crate::queries::release_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(release.id.to_string())
                .bind(&release.service)
                .bind(&release.version)
                .bind(&release.release_class)
                .bind(crate::rows::json_text(
                    "artifact_digests",
                    &release.artifact_digests,
                )?)
                .bind(&release.owner)
                .bind(&release.change.summary)
                .bind(&release.change.ticket)
                .bind(&release.change.pull_request)
                .bind(&release.target_environment)
                .bind(&release.submitter)
                .bind(crate::rows::nanos("created_at", release.created_at)?)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(|| format!("release {}", release.id), e))?;
                Ok(())
            }

            async fn get_release(
                &self,
                id: gatehouse_core::release::ReleaseId,
            ) -> Result<Option<gatehouse_core::release::Release>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    crate::queries::release_columns!(),
                    " FROM releases WHERE id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(|| format!("release {id}"), e))?;
                row.as_ref().map(crate::rows::release).transpose()
            }

            async fn list_releases(
                &self,
                query: &gatehouse_core::store::ReleaseQuery,
            ) -> Result<Vec<gatehouse_core::release::Release>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    crate::queries::release_columns!(),
                    " FROM releases WHERE ($1 IS NULL OR service = $1) \
                     ORDER BY created_at_ns DESC, id DESC LIMIT $2"
                ))
                .bind(&query.service)
                .bind(crate::queries::page(query.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(|| "releases".into(), e))?;
                rows.iter().map(crate::rows::release).collect()
            }

            async fn insert_api_token(
                &self,
                record: &gatehouse_core::identity::ApiTokenRecord,
            ) -> Result<(), StoreError> {
                sqlx::query(concat!(
                    "INSERT INTO api_tokens (",
                    crate::queries::api_token_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(record.id.as_str())
                .bind(record.secret_hash.to_hex())
                .bind(crate::rows::json_text("roles", &record.roles)?)
                .bind(&record.principal)
                .bind(crate::rows::nanos("created_at", record.created_at)?)
                .bind(crate::rows::opt_nanos("expires_at", record.expires_at)?)
                .bind(crate::rows::opt_nanos("revoked_at", record.revoked_at)?)
                .bind(crate::rows::opt_nanos("last_used_at", record.last_used_at)?)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(|| format!("API token {}", record.id), e))?;
                Ok(())
            }

            async fn find_api_token(
                &self,
                id: &gatehouse_core::identity::TokenId,
            ) -> Result<Option<gatehouse_core::identity::ApiTokenRecord>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    crate::queries::api_token_columns!(),
                    " FROM api_tokens WHERE id = $1"
                ))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(|| format!("API token {id}"), e))?;
                row.as_ref().map(crate::rows::api_token).transpose()
            }

            async fn list_api_tokens(
                &self,
                principal: Option<&str>,
            ) -> Result<Vec<gatehouse_core::identity::ApiTokenRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    crate::queries::api_token_columns!(),
                    " FROM api_tokens WHERE ($1 IS NULL OR principal = $1) \
                     ORDER BY created_at_ns, id LIMIT $2"
                ))
                .bind(principal)
                .bind(crate::queries::page(gatehouse_core::store::MAX_PAGE_SIZE))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(|| "API tokens".into(), e))?;
                rows.iter().map(crate::rows::api_token).collect()
            }

            async fn active_api_tokens_with_role(
                &self,
                role: &str,
                now: jiff::Timestamp,
            ) -> Result<Vec<gatehouse_core::identity::ApiTokenRecord>, StoreError> {
                // LIKE on the JSON text narrows the scan portably (both engines, no JSON
                // functions); the exact role match is then made on the decoded list.
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    crate::queries::api_token_columns!(),
                    " FROM api_tokens WHERE roles LIKE $1 ESCAPE '\\' \
                     AND (revoked_at_ns IS NULL OR revoked_at_ns > $2) \
                     AND (expires_at_ns IS NULL OR expires_at_ns > $2) \
                     ORDER BY created_at_ns, id LIMIT $3"
                ))
                .bind(crate::queries::json_string_like_pattern(role)?)
                .bind(crate::rows::nanos("now", now)?)
                .bind(crate::queries::page(gatehouse_core::store::MAX_PAGE_SIZE))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(|| format!("API tokens with role {role}"), e))?;
                let mut tokens = Vec::with_capacity(rows.len());
                for row in &rows {
                    let token = crate::rows::api_token(row)?;
                    if token.roles.iter().any(|r| r == role) {
                        tokens.push(token);
                    }
                }
                Ok(tokens)
            }

            async fn touch_api_token(
                &self,
                id: &gatehouse_core::identity::TokenId,
                at: jiff::Timestamp,
            ) -> Result<(), StoreError> {
                // Concurrent requests may finish out of order; last-used never moves backwards.
                let result = sqlx::query(
                    "UPDATE api_tokens SET last_used_at_ns = CASE \
                     WHEN last_used_at_ns IS NULL OR last_used_at_ns < $2 THEN $2 \
                     ELSE last_used_at_ns END WHERE id = $1",
                )
                .bind(id.as_str())
                .bind(crate::rows::nanos("last_used_at", at)?)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(|| format!("API token {id}"), e))?;
                if result.rows_affected() == 0 {
                    return Err(StoreError::NotFound {
                        what: format!("API token {id}"),
                    });
                }
                Ok(())
            }

            async fn revoke_api_token(
                &self,
                id: &gatehouse_core::identity::TokenId,
                at: jiff::Timestamp,
            ) -> Result<gatehouse_core::identity::ApiTokenRecord, StoreError> {
                let row = sqlx::query(concat!(
                    "UPDATE api_tokens SET revoked_at_ns = COALESCE(revoked_at_ns, $2) \
                     WHERE id = $1 RETURNING ",
                    crate::queries::api_token_columns!()
                ))
                .bind(id.as_str())
                .bind(crate::rows::nanos("revoked_at", at)?)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(|| format!("API token {id}"), e))?;
                match row {
                    Some(row) => crate::rows::api_token(&row),
                    None => Err(StoreError::NotFound {
                        what: format!("API token {id}"),
                    }),
                }
            }

            async fn append_audit(
                &self,
                record: &gatehouse_core::audit::AuditRecord,
            ) -> Result<i64, StoreError> {
                // Placed in the tamper-evident ledger (seq, prev link, leaf hash) under the
                // append lock, concurrent appends sharing one transaction: see
                // `audit_ledger.rs`.
                self.audit.append(record).await
            }

            async fn list_audit(
                &self,
                after_seq: i64,
                limit: u32,
            ) -> Result<Vec<gatehouse_core::audit::AuditEntry>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    crate::queries::audit_columns!(),
                    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
                ))
                .bind(after_seq)
                .bind(crate::queries::page(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(|| "audit log".into(), e))?;
                rows.iter().map(crate::rows::audit_entry).collect()
            }
        }

        impl $store {
            fn error(&self, what: impl FnOnce() -> String, e: sqlx::Error) -> StoreError {
                crate::queries::query_error(&self.description, what, e)
            }
        }
    };
}

pub(crate) use {
    api_token_columns, audit_columns, impl_store, pack_revision_columns, release_columns,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_matches_the_json_string_and_escapes_wildcards() {
        assert_eq!(json_string_like_pattern("admin").unwrap(), r#"%"admin"%"#);
        assert_eq!(
            json_string_like_pattern(r"a_b%c\d").unwrap(),
            r#"%"a\_b\%c\\\\d"%"#
        );
    }
}
