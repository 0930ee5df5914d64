//! `/api/v1/pack`: what pack is in force, and reloading it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::{PackStatus, ReloadResult};
use crate::auth::Authenticated;
use crate::authz::{self, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::pack_state::{self, PackSnapshot, ReloadOutcome, ReloadTrigger};
use crate::state::AppState;

pub(crate) fn status_of(state: &AppState, snapshot: &PackSnapshot) -> PackStatus {
    PackStatus {
        digest: snapshot.digest.clone(),
        document_count: snapshot.document_count,
        loaded_at: snapshot.loaded_at,
        source: state.pack_source().dir().display().to_string(),
    }
}

/// The pack being served.
#[utoipa::path(get, path = "/api/v1/pack", tag = "pack", security(("bearer" = [])),
    responses(
        (status = 200, body = PackStatus),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn get_pack(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<PackStatus>, ApiError> {
    let snapshot = state.pack();
    authz::require(
        &state,
        &principal,
        Permission::PackRead,
        &format!("pack:{}", snapshot.digest),
    )
    .await?;
    Ok(Json(status_of(&state, &snapshot)))
}

/// Loads and lints the pack folder again; swaps it in only when it has no errors.
#[utoipa::path(post, path = "/api/v1/pack/reload", tag = "pack", security(("bearer" = [])),
    responses(
        (status = 200, description = "The new pack is served", body = ReloadResult),
        (status = 422, description = "The new pack has errors or cannot be read; the previous pack is still served", body = ReloadResult),
        (status = 503, description = "The new pack could not be recorded; the previous pack is still served", body = ReloadResult),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn reload_pack(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Response, ApiError> {
    let current = state.pack();
    authz::require(
        &state,
        &principal,
        Permission::PackReload,
        &format!("pack:{}", current.digest),
    )
    .await?;
    drop(current);
    let outcome = pack_state::reload(&state, &principal.id, ReloadTrigger::Api).await;
    let served = status_of(&state, &state.pack());
    let (status, body) = match outcome {
        ReloadOutcome::Swapped {
            previous_digest, ..
        } => (
            StatusCode::OK,
            ReloadResult {
                outcome: "swapped".into(),
                pack: served,
                previous_digest,
                reason: None,
                diagnostics: None,
            },
        ),
        ReloadOutcome::Rejected {
            diagnostics,
            errors,
            ..
        } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ReloadResult {
                outcome: "rejected".into(),
                previous_digest: served.digest.clone(),
                pack: served,
                reason: Some(format!(
                    "the pack has {errors} error{}; the previous pack is still served",
                    if errors == 1 { "" } else { "s" }
                )),
                diagnostics: Some(diagnostics),
            },
        ),
        ReloadOutcome::Unreadable { reason } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ReloadResult {
                outcome: "rejected".into(),
                previous_digest: served.digest.clone(),
                pack: served,
                reason: Some(reason),
                diagnostics: None,
            },
        ),
        ReloadOutcome::NotRecorded { reason } => (
            StatusCode::SERVICE_UNAVAILABLE,
            ReloadResult {
                outcome: "rejected".into(),
                previous_digest: served.digest.clone(),
                pack: served,
                reason: Some(format!("cannot record the pack revision: {reason}")),
                diagnostics: None,
            },
        ),
    };
    Ok((status, Json(body)).into_response())
}
