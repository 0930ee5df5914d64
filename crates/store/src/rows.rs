//! Conversion between stored rows and domain values, shared by both backends.
//!
//! Decoding goes through the small [`Columns`] trait so the same code reads SQLite and
//! PostgreSQL rows. Every failure names the record (table and id) it came from, so a corrupt
//! row is reported as [`StoreError::Corrupt`] that an operator can find, never a panic.

use gatehouse_core::audit::{AuditEntry, AuditOutcome, AuditRecord};
use gatehouse_core::identity::{ApiTokenRecord, AuthMethod, SecretHash, TokenId};
use gatehouse_core::identity_store::{LabeledToken, LocalUser};
use gatehouse_core::release::{ChangeContext, Digest, Release, ReleaseId};
use gatehouse_core::session::{SessionId, SessionRecord};
use gatehouse_core::store::{PackRevision, StoreError};
use jiff::Timestamp;

/// Typed access to one result row, independent of the backend.
pub(crate) trait Columns {
    fn text(&self, column: &'static str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &'static str) -> Result<Option<i64>, sqlx::Error>;
}

impl Columns for sqlx::sqlite::SqliteRow {
    fn text(&self, column: &'static str) -> Result<Option<String>, sqlx::Error> {
        sqlx::Row::try_get(self, column)
    }
    fn int(&self, column: &'static str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::Row::try_get(self, column)
    }
}

impl Columns for sqlx::postgres::PgRow {
    fn text(&self, column: &'static str) -> Result<Option<String>, sqlx::Error> {
        sqlx::Row::try_get(self, column)
    }
    fn int(&self, column: &'static str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::Row::try_get(self, column)
    }
}

/// Reads the columns of one row, attributing every problem to `record`.
struct Reader<'a, R: Columns> {
    row: &'a R,
    record: String,
}

impl<'a, R: Columns> Reader<'a, R> {
    /// `table` plus the row's key, read first so later errors can name the row.
    fn new(row: &'a R, table: &str, key_column: &'static str) -> Self {
        let key = match row.text(key_column) {
            Ok(Some(key)) => key,
            Ok(None) | Err(_) => match row.int(key_column) {
                Ok(Some(key)) => key.to_string(),
                _ => "(unreadable key)".to_owned(),
            },
        };
        Self {
            row,
            record: format!("{table} {key}"),
        }
    }

    fn corrupt(&self, column: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            record: self.record.clone(),
            reason: format!("column {column}: {reason}"),
        }
    }

    fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        self.row.text(column).map_err(|e| self.corrupt(column, e))
    }

    fn text(&self, column: &'static str) -> Result<String, StoreError> {
        self.opt_text(column)?
            .ok_or_else(|| self.corrupt(column, "unexpected NULL"))
    }

    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
        self.row.int(column).map_err(|e| self.corrupt(column, e))
    }

    fn int(&self, column: &'static str) -> Result<i64, StoreError> {
        self.opt_int(column)?
            .ok_or_else(|| self.corrupt(column, "unexpected NULL"))
    }

    fn timestamp(&self, column: &'static str) -> Result<Timestamp, StoreError> {
        let nanos = self.int(column)?;
        Timestamp::from_nanosecond(i128::from(nanos)).map_err(|e| self.corrupt(column, e))
    }

    fn opt_timestamp(&self, column: &'static str) -> Result<Option<Timestamp>, StoreError> {
        self.opt_int(column)?
            .map(|nanos| {
                Timestamp::from_nanosecond(i128::from(nanos)).map_err(|e| self.corrupt(column, e))
            })
            .transpose()
    }

    /// A non-NULL text column read by `parse`; a refusal is the column's corruption.
    fn parsed<T, E: std::fmt::Display>(
        &self,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        let text = self.text(column)?;
        parse(&text).map_err(|e| self.corrupt(column, e))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, column: &'static str) -> Result<T, StoreError> {
        self.parsed(column, |text| serde_json::from_str(text))
    }
}

/// A timestamp as stored: Unix nanoseconds. Instants outside 1677–2262 do not fit in i64.
pub(crate) fn nanos(field: &str, at: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(at.as_nanosecond()).map_err(|_| StoreError::InvalidValue {
        field: field.to_owned(),
        reason: format!("{at} is outside the storable range (years 1678 to 2261)"),
    })
}

pub(crate) fn opt_nanos(field: &str, at: Option<Timestamp>) -> Result<Option<i64>, StoreError> {
    at.map(|at| nanos(field, at)).transpose()
}

pub(crate) fn json_text<T: serde::Serialize + ?Sized>(
    field: &str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::InvalidValue {
        field: field.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn pack_revision(row: &impl Columns) -> Result<PackRevision, StoreError> {
    let r = Reader::new(row, "pack_revisions", "id");
    let count = r.int("document_count")?;
    Ok(PackRevision {
        digest: r.text("digest")?,
        document_count: u64::try_from(count).map_err(|e| r.corrupt("document_count", e))?,
        loaded_at: r.timestamp("loaded_at_ns")?,
        source: r.text("source")?,
    })
}

pub(crate) fn release(row: &impl Columns) -> Result<Release, StoreError> {
    let r = Reader::new(row, "releases", "id");
    let id: ReleaseId = r.text("id")?.parse().map_err(|e| r.corrupt("id", e))?;
    // Digests are re-validated on the way out: a hand-edited row must not smuggle a malformed
    // digest past the checks the gate relies on.
    let raw_digests: Vec<String> = r.json("artifact_digests")?;
    let artifact_digests = raw_digests
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| r.corrupt("artifact_digests", e))?;
    Ok(Release {
        id,
        service: r.text("service")?,
        version: r.text("version")?,
        release_class: r.text("release_class")?,
        artifact_digests,
        owner: r.text("owner")?,
        change: ChangeContext {
            summary: r.text("change_summary")?,
            ticket: r.opt_text("change_ticket")?,
            pull_request: r.opt_text("change_pull_request")?,
        },
        target_environment: r.text("target_environment")?,
        submitter: r.text("submitter")?,
        created_at: r.timestamp("created_at_ns")?,
    })
}

pub(crate) fn api_token(row: &impl Columns) -> Result<ApiTokenRecord, StoreError> {
    let r = Reader::new(row, "api_tokens", "id");
    Ok(ApiTokenRecord {
        id: r.parsed("id", TokenId::parse)?,
        secret_hash: r.parsed("secret_hash", SecretHash::from_hex)?,
        roles: r.json("roles")?,
        principal: r.text("principal")?,
        created_at: r.timestamp("created_at_ns")?,
        expires_at: r.opt_timestamp("expires_at_ns")?,
        revoked_at: r.opt_timestamp("revoked_at_ns")?,
        last_used_at: r.opt_timestamp("last_used_at_ns")?,
    })
}

pub(crate) fn labeled_token(row: &impl Columns) -> Result<LabeledToken, StoreError> {
    let record = api_token(row)?;
    let r = Reader::new(row, "api_tokens", "id");
    Ok(LabeledToken {
        record,
        label: r.opt_text("label")?,
    })
}

pub(crate) fn local_user(row: &impl Columns) -> Result<LocalUser, StoreError> {
    let r = Reader::new(row, "local_users", "id");
    Ok(LocalUser {
        roles: r.json("roles")?,
        display: r.text("display")?,
        password_hash: r.opt_text("password_hash")?,
        created_at: r.timestamp("created_at_ns")?,
        updated_at: r.timestamp("updated_at_ns")?,
        disabled_at: r.opt_timestamp("disabled_at_ns")?,
        id: r.text("id")?,
    })
}

/// An [`AuthMethod`] as stored: its serde name, the same text the API shows.
pub(crate) fn auth_method_text(method: AuthMethod) -> Result<String, StoreError> {
    match serde_json::to_value(method) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        other => Err(StoreError::InvalidValue {
            field: "established_by".into(),
            reason: format!("cannot encode {method:?}: {other:?}"),
        }),
    }
}

pub(crate) fn session(row: &impl Columns) -> Result<SessionRecord, StoreError> {
    let r = Reader::new(row, "sessions", "id");
    Ok(SessionRecord {
        id: r.parsed("id", SessionId::parse)?,
        secret_hash: r.parsed("secret_hash", SecretHash::from_hex)?,
        principal: r.text("principal")?,
        established_by: r.parsed("established_by", |text| {
            serde_json::from_value(serde_json::Value::String(text.to_owned()))
        })?,
        created_at: r.timestamp("created_at_ns")?,
        last_seen_at: r.timestamp("last_seen_at_ns")?,
        expires_at: r.timestamp("expires_at_ns")?,
        ended_at: r.opt_timestamp("ended_at_ns")?,
    })
}

pub(crate) fn audit_entry(row: &impl Columns) -> Result<AuditEntry, StoreError> {
    let r = Reader::new(row, "audit_log", "seq");
    let outcome: AuditOutcome = r
        .text("outcome")?
        .parse()
        .map_err(|e| r.corrupt("outcome", e))?;
    Ok(AuditEntry {
        seq: r.int("seq")?,
        record: AuditRecord {
            at: r.timestamp("at_ns")?,
            actor: r.text("actor")?,
            action: r.text("action")?,
            target: r.text("target")?,
            outcome,
            detail: r.json("detail")?,
        },
    })
}
