//! Unauthenticated operational endpoints: liveness, readiness, metrics.
//!
//! Orchestrators and Prometheus call these without credentials, so they reveal nothing beyond
//! "up or not" and counters.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::api::HealthStatus;
use crate::state::AppState;

/// How long readiness waits for the store before calling it down.
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process is serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = HealthStatus)))]
pub async fn healthz() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok".into(),
        checks: None,
    })
}

/// Readiness: the store answers and a pack is loaded.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve requests", body = HealthStatus),
        (status = 503, description = "A dependency is down", body = HealthStatus),
    ))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = match tokio::time::timeout(STORE_PING_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: store ping failed");
            "unavailable".to_owned()
        }
        Err(_) => "timeout".to_owned(),
    };
    let pack = state.pack();
    // A pack with no documents means the server would decide against an empty policy.
    let pack_check = if pack.document_count > 0 {
        "ok"
    } else {
        "empty"
    };
    let ready = store == "ok" && pack_check == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(HealthStatus {
            status: if ready { "ready" } else { "not_ready" }.into(),
            checks: Some(json!({ "store": store, "pack": pack_check })),
        }),
    )
}

/// Prometheus text exposition of request, reload and pack metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Refreshes the release-gate gauges (at most once a minute) before they are rendered.
    crate::routes::gate_metrics::gauges(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
}
