//! `GET /api/v1/metrics/gate`: release-gate metrics for any period, and the gate gauges of
//! `/metrics`.
//!
//! The numbers come from the pure [`gatehouse_core::gate::metrics::compute`] over the stored
//! releases and their gate state, evaluated with the pack in force, so the API, the CLI
//! (`gatehouse gate metrics`) and Prometheus report the same figures. It lives beside
//! `routes::gate` rather than in it because it reads many releases, not one.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use gatehouse_core::gate::ReleaseGateState;
use gatehouse_core::gate::metrics::{self, GateMetrics, Period, ReleaseRecord};
use gatehouse_core::store::{MAX_PAGE_SIZE, ReleaseQuery};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::Authenticated;
use crate::authz::{self, Permission};
use crate::error::ApiError;
use crate::metrics::GateGauges;
use crate::routes::gate::{gate_of, load};
use crate::state::AppState;

/// Period used when the query gives no `from`: the 30 days before `to`.
pub const DEFAULT_PERIOD: SignedDuration = SignedDuration::from_hours(30 * 24);
/// How long the `/metrics` gate gauges are reused before they are computed again: a scrape
/// every few seconds must not reload every release.
const GAUGE_MAX_AGE: Duration = Duration::from_secs(60);

/// Query of `GET /api/v1/metrics/gate`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// Start of the period (RFC 3339, inclusive); default: 30 days before `to`.
    #[param(value_type = Option<String>, example = "2026-10-01T00:00:00Z")]
    pub from: Option<Timestamp>,
    /// End of the period (RFC 3339, exclusive); default: now.
    #[param(value_type = Option<String>, example = "2026-11-01T00:00:00Z")]
    pub to: Option<Timestamp>,
}

/// The gate metrics of a period, and how many release records they were computed from.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateMetricsReport {
    /// `period` {start, end}, `releases`, `gate_bypasses`, `emergency_releases`,
    /// `evidence_required`, `evidence_present`, `evidence_completeness_percent`,
    /// `decided_releases`, `review_latency_p50_seconds`, `review_latency_p90_seconds`
    /// (submission → decision), `overdue_retrospectives` (release, service, due,
    /// completed_at) and `releases_without_class`.
    #[schema(value_type = Object)]
    pub metrics: GateMetrics,
    /// Release records read (the newest ones, up to the store's page size).
    pub releases_scanned: u64,
    /// `false` when more releases exist than were read: the figures then cover the newest
    /// `releases_scanned` releases only.
    pub complete: bool,
}

/// The states of the newest releases (at most one page) with their classes resolved later.
async fn load_states(state: &AppState) -> Result<(Vec<ReleaseGateState>, bool), ApiError> {
    let gate = gate_of(state)?;
    let releases = state
        .store()
        .list_releases(&ReleaseQuery {
            service: None,
            limit: MAX_PAGE_SIZE,
        })
        .await
        .map_err(|e| ApiError::internal("listing releases", e))?;
    let complete = releases.len() < MAX_PAGE_SIZE as usize;
    let mut states = Vec::with_capacity(releases.len());
    for release in releases {
        states.push(load(state, &gate, release.id).await?);
    }
    Ok((states, complete))
}

/// The metrics of `period` with the pack in force, as known now.
pub async fn compute(state: &AppState, period: Period) -> Result<GateMetricsReport, ApiError> {
    let (states, complete) = load_states(state).await?;
    let pack = state.pack();
    let records: Vec<ReleaseRecord<'_>> = states
        .iter()
        .map(|s| ReleaseRecord {
            state: s,
            class: pack.pack.release_class(&s.release.release_class),
        })
        .collect();
    let metrics = metrics::compute(&records, period, state.clock().now());
    Ok(GateMetricsReport {
        metrics,
        releases_scanned: states.len() as u64,
        complete,
    })
}

/// Gate metrics for a period: gate bypasses, emergency releases, evidence completeness %,
/// review latency p50/p90 (submission → decision) and overdue retrospectives.
#[utoipa::path(get, path = "/api/v1/metrics/gate", tag = "gate",
    params(MetricsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The period's gate metrics", body = GateMetricsReport),
        (status = 400, description = "Invalid period", body = crate::error::ErrorBody),
        (status = 401, description = "No valid API token", body = crate::error::ErrorBody),
        (status = 403, description = "Missing permission release.read", body = crate::error::ErrorBody),
        (status = 503, description = "The release gate is not enabled", body = crate::error::ErrorBody),
    ))]
pub async fn get_gate_metrics(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    query: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<Json<GateMetricsReport>, ApiError> {
    authz::require(&state, &principal, Permission::ReleaseRead, "metrics:gate").await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let end = query.to.unwrap_or_else(|| state.clock().now());
    let start = match query.from {
        Some(from) => from,
        None => end
            .checked_sub(DEFAULT_PERIOD)
            .map_err(|_| ApiError::invalid_field("to", "is too early for a 30-day period"))?,
    };
    if start >= end {
        return Err(ApiError::invalid_field(
            "from",
            format!("the period is empty: from ({start}) must be before to ({end})"),
        ));
    }
    Ok(Json(compute(&state, Period { start, end }).await?))
}

/// The gate gauges of `/metrics` (last 30 days), computed at most once a [`GAUGE_MAX_AGE`];
/// `None` without a gate or when the store cannot be read (the scrape then lacks the gate
/// gauges, and the failure is logged).
pub async fn gauges(state: &AppState) -> Option<GateGauges> {
    state.gate()?;
    if let Some(gauges) = state.metrics().gate_gauges(GAUGE_MAX_AGE) {
        return Some(gauges);
    }
    let end = state.clock().now();
    let start = end.checked_sub(DEFAULT_PERIOD).ok()?;
    let report = match compute(state, Period { start, end }).await {
        Ok(report) => report,
        Err(e) => {
            tracing::warn!(error = %e, "cannot compute the gate gauges for /metrics");
            return None;
        }
    };
    let gauges = GateGauges {
        emergency_releases: report.metrics.emergency_releases,
        overdue_retrospectives: report.metrics.overdue_retrospectives.len() as u64,
        gate_bypasses: report.metrics.gate_bypasses,
        evidence_completeness_percent: report.metrics.evidence_completeness_percent,
    };
    state.metrics().set_gate_gauges(gauges);
    Some(gauges)
}
