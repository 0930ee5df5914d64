//! The `Store` port: everything gatehouse persists, behind one object-safe async trait.
//!
//! The domain and the server depend only on this trait (`Arc<dyn Store>`); `gatehouse-store`
//! implements it for SQLite and PostgreSQL and runs the same test suite against both. Methods
//! take and return domain types, so SQL never leaks out of the adapter crate.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEntry, AuditRecord};
use crate::identity::{ApiTokenRecord, TokenId};
use crate::release::{Release, ReleaseId};

/// Largest page any list method returns; larger `limit`s are reduced to it so one request
/// cannot pull an unbounded result set into memory.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A policy pack that was loaded and accepted, recorded so operators can see what was in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRevision {
    /// Content digest of the pack (e.g. `sha256:…` over its files).
    pub digest: String,
    pub document_count: u64,
    pub loaded_at: Timestamp,
    /// Where the pack came from (its directory) and how it was loaded.
    pub source: String,
}

/// Which releases [`Store::list_releases`] returns: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReleaseQuery {
    /// Only releases of this service.
    pub service: Option<String>,
    /// At most this many (capped at [`MAX_PAGE_SIZE`]).
    pub limit: u32,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or opened.
    #[error("cannot open the database {target}: {reason}")]
    Unavailable {
        /// The database, with any password removed (a path or `host:port/db`).
        target: String,
        reason: String,
    },
    /// The database was migrated by a newer gatehouse; this binary must not touch it.
    #[error(
        "the database schema is version {database}, newer than this gatehouse binary knows \
         (version {binary}); upgrade gatehouse or point it at another database"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    /// The record already exists (same id).
    #[error("{what} already exists")]
    Conflict { what: String },
    /// The record to change does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// A stored row cannot be turned back into a domain value.
    #[error("stored record {record} is corrupt: {reason}")]
    Corrupt { record: String, reason: String },
    /// A value cannot be stored as given (e.g. a timestamp outside the storable range).
    #[error("cannot store {field}: {reason}")]
    InvalidValue { field: String, reason: String },
    /// Any other database error.
    #[error("database error: {0}")]
    Backend(String),
}

/// Persistence port implemented by the SQLite and PostgreSQL adapters.
#[async_trait]
pub trait Store: Send + Sync {
    /// Human-readable description of the backend for logs, e.g.
    /// `SQLite at ./gatehouse-data/gatehouse.db` (never contains a password).
    fn describe(&self) -> String;

    /// Checks that the database answers (for readiness probes).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The highest migration version applied to the database.
    async fn schema_version(&self) -> Result<i64, StoreError>;

    /// Records that `revision` was loaded.
    async fn record_pack_revision(&self, revision: &PackRevision) -> Result<(), StoreError>;

    /// The most recently recorded pack revision, if any.
    async fn latest_pack_revision(&self) -> Result<Option<PackRevision>, StoreError>;

    /// Stores a new release; [`StoreError::Conflict`] if its id exists.
    async fn create_release(&self, release: &Release) -> Result<(), StoreError>;

    /// The release with id `id`, if any.
    async fn get_release(&self, id: ReleaseId) -> Result<Option<Release>, StoreError>;

    /// Releases matching `query`, newest (`created_at`, then id) first.
    async fn list_releases(&self, query: &ReleaseQuery) -> Result<Vec<Release>, StoreError>;

    /// Stores a new API token record; [`StoreError::Conflict`] if its id exists.
    async fn insert_api_token(&self, record: &ApiTokenRecord) -> Result<(), StoreError>;

    /// The token record with id `id`, if any.
    async fn find_api_token(&self, id: &TokenId) -> Result<Option<ApiTokenRecord>, StoreError>;

    /// All token records, oldest first, capped at [`MAX_PAGE_SIZE`]; only `principal`'s when given.
    async fn list_api_tokens(
        &self,
        principal: Option<&str>,
    ) -> Result<Vec<ApiTokenRecord>, StoreError>;

    /// Tokens that hold `role` and are neither revoked nor expired at `now`, oldest first
    /// (capped at [`MAX_PAGE_SIZE`]). Unlike filtering [`Store::list_api_tokens`], this cannot
    /// miss a token behind the page cap, so "does an active admin token exist?" is answered
    /// correctly however many tokens were ever issued.
    async fn active_api_tokens_with_role(
        &self,
        role: &str,
        now: Timestamp,
    ) -> Result<Vec<ApiTokenRecord>, StoreError>;

    /// Sets the token's last-used time to `at`; [`StoreError::NotFound`] if it does not exist.
    async fn touch_api_token(&self, id: &TokenId, at: Timestamp) -> Result<(), StoreError>;

    /// Revokes the token as of `at` and returns the updated record. Revoking an already revoked
    /// token keeps the original revocation time. [`StoreError::NotFound`] if it does not exist.
    async fn revoke_api_token(
        &self,
        id: &TokenId,
        at: Timestamp,
    ) -> Result<ApiTokenRecord, StoreError>;

    /// Appends `record` to the audit log and returns its sequence number (1, 2, 3, … with no
    /// gaps, in commit order).
    async fn append_audit(&self, record: &AuditRecord) -> Result<i64, StoreError>;

    /// Audit entries with sequence number greater than `after_seq`, in sequence order, at most
    /// `limit` (capped at [`MAX_PAGE_SIZE`]).
    async fn list_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
}
