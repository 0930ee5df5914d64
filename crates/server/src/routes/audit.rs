//! `/api/v1/audit`: reading the audit log, page by page in sequence order, and checking it:
//! signed tree heads, inclusion and consistency proofs, and the log's public keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::audit_log::{prove_consistency, prove_inclusion};
use gatehouse_core::store::{MAX_PAGE_SIZE, StoreError};
use gatehouse_ledger::{Hash, LogVerifyingKey, SignedTreeHead};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit_log::AuditLog;

use crate::api::{AuditEntryView, AuditPage};
use crate::auth::Authenticated;
use crate::authz::{self, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

const DEFAULT_LIMIT: u32 = 100;

/// Paging of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListAudit {
    /// Return entries with a sequence number greater than this (default 0: from the start).
    pub after: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Audit log entries after `after`, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(ListAudit),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn list_audit(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    query: Result<Query<ListAudit>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    authz::require(&state, &principal, Permission::AuditRead, "audit").await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid_field("after", "must not be negative"));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let entries = state
        .store()
        .list_audit(after, limit)
        .await
        .map_err(|e| ApiError::internal("reading the audit log", e))?;
    let next_after = if entries.len() == limit as usize {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next_after,
    }))
}

// The tamper-evident log: signed tree heads, proofs and the log's public keys. Proofs are
// computed from the hashes stored at append time (the O(log n) perfect subtrees a proof needs,
// `gatehouse_core::audit_log::prove_inclusion`), and an entry whose row no longer hashes to its
// stored leaf is reported as tampered rather than proven.

/// A signed tree head, exactly as `gatehouse_ledger::SignedTreeHead` (de)serialises it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TreeHeadBody {
    /// Number of entries the head covers (entries seq 1 ..= tree_size).
    pub tree_size: u64,
    /// RFC 9162 Merkle tree hash of those entries, hex.
    pub root_hash: String,
    /// When the head was signed (RFC 3339).
    pub timestamp: String,
    /// Id of the signing key (see `GET /api/v1/audit/public-key`).
    pub key_id: String,
    /// Ed25519 signature, standard base64, over the head's fixed binary encoding.
    pub signature: String,
}

/// A log public key, exactly as `gatehouse_ledger::LogVerifyingKey` (de)serialises it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyBody {
    pub key_id: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, standard base64.
    pub public_key: String,
}

/// `GET /api/v1/audit/public-key`: the key signing heads now, and every key that ever did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeys {
    #[schema(value_type = PublicKeyBody)]
    pub current: LogVerifyingKey,
    #[schema(value_type = Vec<PublicKeyBody>)]
    pub keys: Vec<LogVerifyingKey>,
}

/// Query of `GET /api/v1/audit/proof/inclusion`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry to prove (1-based sequence number).
    pub seq: u64,
    /// Size of the tree to prove it in (default: the latest signed tree head's size).
    pub tree_size: Option<u64>,
}

/// Proof that entry `seq` is leaf `leaf_index` of the tree of `tree_size` entries. Check it
/// with `gatehouse_ledger::verify_inclusion(leaf_hash, leaf_index, tree_size, path, root)`
/// against the root of a signed tree head of that size.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProofBody {
    pub seq: u64,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The entry's canonical bytes (JSON text); its leaf hash is SHA-256(0x00 ‖ entry).
    pub entry: String,
    #[schema(value_type = String)]
    pub leaf_hash: Hash,
    /// Audit path, hex hashes, leaf to root (RFC 9162 §2.1.3).
    #[schema(value_type = Vec<String>)]
    pub path: Vec<Hash>,
    /// Root of the tree of `tree_size` entries as the server computes it (compare it with a
    /// signed head rather than trusting it).
    #[schema(value_type = String)]
    pub root_hash: Hash,
}

/// Query of `GET /api/v1/audit/proof/consistency`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// Size of the older tree (at least 1).
    pub first: u64,
    /// Size of the newer tree (at least `first`, at most the log's size).
    pub second: u64,
}

/// Proof that the tree of `first_size` entries is a prefix of the tree of `second_size`
/// entries (RFC 9162 §2.1.4); check it with `gatehouse_ledger::verify_consistency` against the
/// roots of two signed tree heads.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProofBody {
    pub first_size: u64,
    pub second_size: u64,
    #[schema(value_type = Vec<String>)]
    pub path: Vec<Hash>,
    #[schema(value_type = String)]
    pub first_root: Hash,
    #[schema(value_type = String)]
    pub second_root: Hash,
}

fn audit_log(state: &AppState) -> Result<&Arc<AuditLog>, ApiError> {
    state.audit_log().ok_or_else(|| {
        ApiError::Unavailable("the audit log signing key is not loaded on this server".into())
    })
}

/// A store error on the ledger: a corrupt row is evidence of tampering and is said so.
fn ledger_error(context: &str, err: StoreError) -> ApiError {
    match err {
        StoreError::Corrupt { record, reason } => ApiError::Conflict(format!(
            "the audit log is damaged or was modified outside gatehouse: {record}: {reason}"
        )),
        other => ApiError::internal(context, other),
    }
}

/// The latest signed tree head.
#[utoipa::path(get, path = "/api/v1/audit/tree-head", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, body = TreeHeadBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no head has been signed yet"),
    ))]
pub async fn get_tree_head(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<SignedTreeHead>, ApiError> {
    authz::require(&state, &principal, Permission::AuditRead, "audit:tree-head").await?;
    let log = audit_log(&state)?;
    log.ledger()
        .latest_tree_head()
        .await
        .map_err(|e| ledger_error("reading the latest tree head", e))?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no tree head has been signed yet".into()))
}

/// Signs a tree head over every entry now (audited as `audit.tree_head.sign`).
#[utoipa::path(post, path = "/api/v1/audit/tree-head", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 201, body = TreeHeadBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn sign_tree_head(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<(StatusCode, Json<SignedTreeHead>), ApiError> {
    authz::require(&state, &principal, Permission::AuditRead, "audit:tree-head").await?;
    let log = audit_log(&state)?;
    // The request is audited first, so the head it returns covers its own audit entry.
    crate::audit::append(
        &state,
        &principal.id,
        "audit.tree_head.sign",
        "audit:tree-head",
        AuditOutcome::Succeeded,
        json!({ "key_id": log.public_key().key_id() }),
    )
    .await
    .map_err(|e| ApiError::internal("auditing the tree head request", e))?;
    match log.sign_now(state.clock().now()).await {
        Ok(head) => Ok((StatusCode::CREATED, Json(head))),
        Err(err) => {
            crate::audit::append_or_log(
                &state,
                &principal.id,
                "audit.tree_head.sign",
                "audit:tree-head",
                AuditOutcome::Failed,
                json!({ "reason": err.to_string() }),
            )
            .await;
            Err(ledger_error("signing a tree head", err))
        }
    }
}

/// The public keys that sign this log's tree heads, for offline verification.
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, body = PublicKeys),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn get_public_key(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<PublicKeys>, ApiError> {
    authz::require(
        &state,
        &principal,
        Permission::AuditRead,
        "audit:public-key",
    )
    .await?;
    let log = audit_log(&state)?;
    let keys = log
        .ledger()
        .log_keys()
        .await
        .map_err(|e| ledger_error("reading the log keys", e))?;
    Ok(Json(PublicKeys {
        current: log.public_key(),
        keys,
    }))
}

/// Inclusion proof of one entry in a tree of a given size.
#[utoipa::path(get, path = "/api/v1/audit/proof/inclusion", tag = "audit",
    security(("bearer" = [])), params(InclusionQuery),
    responses(
        (status = 200, body = InclusionProofBody),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the entry's row no longer matches its leaf hash"),
    ))]
pub async fn inclusion_proof(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<InclusionProofBody>, ApiError> {
    authz::require(&state, &principal, Permission::AuditRead, "audit:proof").await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let log = audit_log(&state)?;
    let ledger = log.ledger();
    let size = ledger
        .tree_size()
        .await
        .map_err(|e| ledger_error("reading the log size", e))?;
    let tree_size = match query.tree_size {
        Some(n) => n,
        None => ledger
            .latest_tree_head()
            .await
            .map_err(|e| ledger_error("reading the latest tree head", e))?
            .map_or(size, |h| h.tree_size),
    };
    if tree_size > size {
        return Err(ApiError::invalid_field(
            "tree_size",
            format!("the log has {size} entries"),
        ));
    }
    if query.seq == 0 || query.seq > tree_size {
        return Err(ApiError::invalid_field(
            "seq",
            format!("must be between 1 and the tree size ({tree_size})"),
        ));
    }
    let leaf_index = query.seq - 1;
    let proven = prove_inclusion(ledger, leaf_index, tree_size)
        .await
        .map_err(|e| ledger_error("building an inclusion proof", e))?;
    let entry = ledger
        .encoded_entries(leaf_index, 1)
        .await
        .map_err(|e| ledger_error("reading the entry", e))?
        .into_iter()
        .next()
        .filter(|e| e.seq == query.seq)
        .ok_or_else(|| ApiError::NotFound(format!("audit entry seq {}", query.seq)))?;
    let leaf_hash = gatehouse_ledger::merkle::leaf_hash(&entry.bytes);
    if entry.stored_leaf_hash != Some(leaf_hash) {
        return Err(ApiError::Conflict(format!(
            "audit entry seq {} no longer matches the leaf hash recorded when it was appended: \
             the audit log was modified outside gatehouse",
            query.seq
        )));
    }
    Ok(Json(InclusionProofBody {
        seq: query.seq,
        leaf_index,
        tree_size,
        entry: String::from_utf8_lossy(&entry.bytes).into_owned(),
        leaf_hash,
        path: proven.proof.path,
        root_hash: proven.root,
    }))
}

/// Consistency proof between two tree sizes.
#[utoipa::path(get, path = "/api/v1/audit/proof/consistency", tag = "audit",
    security(("bearer" = [])), params(ConsistencyQuery),
    responses(
        (status = 200, body = ConsistencyProofBody),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn consistency_proof(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyProofBody>, ApiError> {
    authz::require(&state, &principal, Permission::AuditRead, "audit:proof").await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let log = audit_log(&state)?;
    let ledger = log.ledger();
    let size = ledger
        .tree_size()
        .await
        .map_err(|e| ledger_error("reading the log size", e))?;
    if query.second > size {
        return Err(ApiError::invalid_field(
            "second",
            format!("the log has {size} entries"),
        ));
    }
    if query.first == 0 || query.first > query.second {
        return Err(ApiError::invalid_field(
            "first",
            format!("must be between 1 and second ({})", query.second),
        ));
    }
    let proven = prove_consistency(ledger, query.first, query.second)
        .await
        .map_err(|e| ledger_error("building a consistency proof", e))?;
    Ok(Json(ConsistencyProofBody {
        first_size: proven.proof.first_size,
        second_size: proven.proof.second_size,
        path: proven.proof.path,
        first_root: proven.first_root,
        second_root: proven.second_root,
    }))
}
