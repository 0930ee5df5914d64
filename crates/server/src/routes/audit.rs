//! `/api/v1/audit`: reading the audit log, page by page in sequence order.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use gatehouse_core::store::MAX_PAGE_SIZE;
use serde::Deserialize;
use utoipa::IntoParams;

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
