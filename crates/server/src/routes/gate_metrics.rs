//! `GET /api/v1/metrics/gate`: release-gate metrics for any period, and the gate gauges of
//! `/metrics`.
//!
//! The numbers come from the pure [`gatehouse_core::gate::metrics::compute`] over the stored
//! releases and their gate state, evaluated with the pack in force, so the API, the CLI
//! (`gatehouse gate metrics`) and Prometheus report the same figures. It lives beside
//! `routes::gate` rather than in it because it reads many releases, not one.
//!
//! Every release submitted before the end of the period counts (bypasses and overdue
//! retrospectives of older releases fall in the period too), however many there are: the
//! store is walked page by page (`GateStore::releases_before`) and each release's gate state
//! is folded into a [`metrics::Accumulator`] and dropped, so memory holds one page of release
//! rows and one gate state at a time. Evidence facts are read only for the releases submitted
//! in the period, the only ones evaluated.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use gatehouse_core::gate::metrics::{self, GateMetrics, Period, ReleaseRecord};
use gatehouse_core::gate::store::ReleaseCursor;
use gatehouse_core::store::MAX_PAGE_SIZE;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::Authenticated;
use crate::authz::{self, Permission};
use crate::error::ApiError;
use crate::metrics::GateGauges;
use crate::routes::gate::gate_of;
use crate::state::AppState;

/// Period used when the query gives no `from`: the 30 days before `to`.
pub const DEFAULT_PERIOD: SignedDuration = SignedDuration::from_hours(30 * 24);
/// How long the `/metrics` gate gauges are reused before they are computed again: a scrape
/// every few seconds must not reload every release.
const GAUGE_MAX_AGE: Duration = Duration::from_secs(60);
/// Releases read from the store at a time.
const PAGE: u32 = 500;
// A page shorter than asked for ends the walk, so the store must not cap it lower.
const _: () = assert!(PAGE <= MAX_PAGE_SIZE);

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
    /// Release records read: every release submitted before the end of the period.
    pub releases_scanned: u64,
    /// Whether every release that can count was read; always `true` now that the store is read
    /// page by page (kept for clients of versions that read only the newest 1,000 releases).
    pub complete: bool,
}

/// The metrics of `period` with the pack in force, as known now.
pub async fn compute(state: &AppState, period: Period) -> Result<GateMetricsReport, ApiError> {
    let gate = gate_of(state)?;
    // One pack for the whole walk, even if a reload swaps it meanwhile.
    let pack = state.pack();
    let mut accumulator = metrics::Accumulator::new(period, state.clock().now());
    let mut after: Option<ReleaseCursor> = None;
    let mut scanned: u64 = 0;
    loop {
        // Releases submitted at or after the end of the period cannot change its figures.
        let page = gate
            .store()
            .releases_before(period.end, after.as_ref(), PAGE)
            .await
            .map_err(|e| ApiError::internal("listing releases", e))?;
        let last = page.len() < PAGE as usize;
        after = page.last().map(ReleaseCursor::after);
        for release in page {
            let class = pack.pack.release_class(&release.release_class);
            let with_facts = accumulator.evaluates(release.created_at);
            let release_state = gate.state_of(release, with_facts).await?;
            accumulator.add(ReleaseRecord {
                state: &release_state,
                class,
            });
            scanned += 1;
        }
        if last {
            break;
        }
    }
    Ok(GateMetricsReport {
        metrics: accumulator.finish(),
        releases_scanned: scanned,
        complete: true,
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
