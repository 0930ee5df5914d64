//! Prometheus text exposition for `/metrics`, written by hand.
//!
//! The set of series is small and fixed (requests by route and status, pack reloads, pack size,
//! build info), so a registry crate would add dependencies without adding function. Route labels
//! are axum's *matched path templates* (`/api/v1/releases/{id}`), never raw URIs, so label
//! cardinality stays bounded no matter what clients send.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// Upper bounds (seconds) of the request-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Route label for requests that matched no route (404s from probing clients).
const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Default, Clone)]
struct LatencyHistogram {
    count: u64,
    sum_seconds: f64,
    /// Non-cumulative counts per bucket; cumulated when rendered.
    buckets: [u64; LATENCY_BUCKETS.len()],
}

impl LatencyHistogram {
    fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        self.count += 1;
        self.sum_seconds += seconds;
        if let Some(index) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index] += 1;
        }
    }
}

/// Process-wide counters read by `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, LatencyHistogram>>,
    pack_reloads_ok: AtomicU64,
    pack_reloads_failed: AtomicU64,
    pack_documents: AtomicU64,
    pack_loaded_at_seconds: AtomicU64,
    /// Gate verdicts served, by decision: pass, pending, blocked.
    gate_verdicts: [AtomicU64; 3],
    gate_bypasses_recorded: AtomicU64,
    /// Gate gauges over the last 30 days and when they were computed (see
    /// `routes::gate_metrics::gauges`).
    gate_gauges: Mutex<Option<(Instant, GateGauges)>>,
}

/// Release-gate gauges over the last 30 days, computed from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GateGauges {
    pub emergency_releases: u64,
    pub overdue_retrospectives: u64,
    pub gate_bypasses: u64,
    pub evidence_completeness_percent: Option<f64>,
}

/// Labels of `gatehouse_gate_verdicts_total`, in the order of `Metrics::gate_verdicts`.
const GATE_DECISIONS: [&str; 3] = ["pass", "pending", "blocked"];

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn observe_request(&self, key: RequestKey, elapsed: Duration) {
        // A poisoned lock only means another request panicked mid-update; the counters are
        // still usable, so keep counting rather than losing every later observation.
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        requests.entry(key).or_default().observe(elapsed);
    }

    /// Records a pack reload attempt (SIGHUP or API) and its outcome.
    pub fn record_pack_reload(&self, ok: bool) {
        let counter = if ok {
            &self.pack_reloads_ok
        } else {
            &self.pack_reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the pack that is now being served.
    pub fn set_pack(&self, document_count: usize, loaded_at_unix_seconds: i64) {
        self.pack_documents
            .store(document_count as u64, Ordering::Relaxed);
        self.pack_loaded_at_seconds.store(
            u64::try_from(loaded_at_unix_seconds).unwrap_or(0),
            Ordering::Relaxed,
        );
    }

    /// Counts a gate verdict served, by its decision.
    pub fn record_gate_verdict(&self, decision: gatehouse_core::gate::GateDecision) {
        let index = GATE_DECISIONS
            .iter()
            .position(|d| *d == decision.as_str())
            .unwrap_or(GATE_DECISIONS.len() - 1);
        if let Some(counter) = self.gate_verdicts.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a gate bypass recorded by this process.
    pub fn record_gate_bypass(&self) {
        self.gate_bypasses_recorded.fetch_add(1, Ordering::Relaxed);
    }

    /// The gate gauges, when computed less than `max_age` ago.
    pub fn gate_gauges(&self, max_age: Duration) -> Option<GateGauges> {
        let cached = self
            .gate_gauges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cached.and_then(|(at, gauges)| (at.elapsed() < max_age).then_some(gauges))
    }

    pub fn set_gate_gauges(&self, gauges: GateGauges) {
        *self
            .gate_gauges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), gauges));
    }

    /// Renders every series in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();

        out.push_str("# HELP gatehouse_http_requests_total HTTP requests handled, by method, route template and status.\n");
        out.push_str("# TYPE gatehouse_http_requests_total counter\n");
        for (key, histogram) in &requests {
            let _ = writeln!(
                out,
                "gatehouse_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}",
                escape_label(&key.method),
                escape_label(&key.route),
                key.status,
                histogram.count
            );
        }

        out.push_str("# HELP gatehouse_http_request_duration_seconds HTTP request latency, by method, route template and status.\n");
        out.push_str("# TYPE gatehouse_http_request_duration_seconds histogram\n");
        for (key, histogram) in &requests {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{}\"",
                escape_label(&key.method),
                escape_label(&key.route),
                key.status
            );
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets.iter()) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "gatehouse_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "gatehouse_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "gatehouse_http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum_seconds
            );
            let _ = writeln!(
                out,
                "gatehouse_http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }

        out.push_str("# HELP gatehouse_pack_reloads_total Pack reload attempts, by outcome.\n");
        out.push_str("# TYPE gatehouse_pack_reloads_total counter\n");
        let _ = writeln!(
            out,
            "gatehouse_pack_reloads_total{{outcome=\"ok\"}} {}",
            self.pack_reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "gatehouse_pack_reloads_total{{outcome=\"failed\"}} {}",
            self.pack_reloads_failed.load(Ordering::Relaxed)
        );

        out.push_str("# HELP gatehouse_pack_documents Documents in the pack being served.\n");
        out.push_str("# TYPE gatehouse_pack_documents gauge\n");
        let _ = writeln!(
            out,
            "gatehouse_pack_documents {}",
            self.pack_documents.load(Ordering::Relaxed)
        );

        out.push_str("# HELP gatehouse_pack_loaded_timestamp_seconds Unix time the served pack was loaded.\n");
        out.push_str("# TYPE gatehouse_pack_loaded_timestamp_seconds gauge\n");
        let _ = writeln!(
            out,
            "gatehouse_pack_loaded_timestamp_seconds {}",
            self.pack_loaded_at_seconds.load(Ordering::Relaxed)
        );

        self.render_gate(&mut out);

        out.push_str("# HELP gatehouse_build_info Build information; the value is always 1.\n");
        out.push_str("# TYPE gatehouse_build_info gauge\n");
        let _ = writeln!(
            out,
            "gatehouse_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

impl Metrics {
    /// The release-gate series: verdicts and bypasses counted by this process, and gauges over
    /// the last 30 days from the store (present once computed).
    fn render_gate(&self, out: &mut String) {
        out.push_str("# HELP gatehouse_gate_verdicts_total Gate verdicts served, by decision.\n");
        out.push_str("# TYPE gatehouse_gate_verdicts_total counter\n");
        for (decision, counter) in GATE_DECISIONS.iter().zip(self.gate_verdicts.iter()) {
            let _ = writeln!(
                out,
                "gatehouse_gate_verdicts_total{{decision=\"{decision}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP gatehouse_gate_bypasses_total Gate bypasses recorded by this process.\n",
        );
        out.push_str("# TYPE gatehouse_gate_bypasses_total counter\n");
        let _ = writeln!(
            out,
            "gatehouse_gate_bypasses_total {}",
            self.gate_bypasses_recorded.load(Ordering::Relaxed)
        );
        let Some(gauges) = self.gate_gauges(Duration::MAX) else {
            return;
        };
        let gauge = |out: &mut String, name: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name}{{window=\"30d\"}} {value}");
        };
        gauge(
            out,
            "gatehouse_gate_emergency_releases",
            "Releases submitted under an emergency class in the window.",
            gauges.emergency_releases.to_string(),
        );
        gauge(
            out,
            "gatehouse_gate_bypasses",
            "Gate bypasses recorded in the window (from the store).",
            gauges.gate_bypasses.to_string(),
        );
        gauge(
            out,
            "gatehouse_gate_overdue_retrospectives",
            "Emergency retrospectives past their due time and not done on time.",
            gauges.overdue_retrospectives.to_string(),
        );
        if let Some(percent) = gauges.evidence_completeness_percent {
            gauge(
                out,
                "gatehouse_gate_evidence_completeness_percent",
                "Required evidence present and fresh, in percent, for releases of the window.",
                format!("{percent:.1}"),
            );
        }
    }
}

/// Escapes a label value as the exposition format requires (backslash, quote, newline).
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Middleware that times every request and counts it under its route template.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics().observe_request(
        RequestKey {
            method,
            route,
            status: response.status().as_u16(),
        },
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_matches() {
        let metrics = Metrics::new();
        let key = RequestKey {
            method: "GET".into(),
            route: "/healthz".into(),
            status: 200,
        };
        metrics.observe_request(key.clone(), Duration::from_micros(500));
        metrics.observe_request(key.clone(), Duration::from_millis(30));
        metrics.observe_request(key, Duration::from_secs(10));
        let text = metrics.render();
        assert!(text.contains(
            "gatehouse_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 3"
        ));
        assert!(text.contains("le=\"0.001\"} 1\n"));
        assert!(text.contains("le=\"0.05\"} 2\n"));
        assert!(text.contains("le=\"5\"} 2\n"));
        assert!(text.contains("le=\"+Inf\"} 3\n"));
    }

    #[test]
    fn reload_outcomes_are_counted_separately() {
        let metrics = Metrics::new();
        metrics.record_pack_reload(true);
        metrics.record_pack_reload(false);
        metrics.record_pack_reload(false);
        let text = metrics.render();
        assert!(text.contains("gatehouse_pack_reloads_total{outcome=\"ok\"} 1\n"));
        assert!(text.contains("gatehouse_pack_reloads_total{outcome=\"failed\"} 2\n"));
    }

    #[test]
    fn gate_series_count_verdicts_and_show_gauges_once_computed() {
        use gatehouse_core::gate::GateDecision;
        let metrics = Metrics::new();
        metrics.record_gate_verdict(GateDecision::Blocked);
        metrics.record_gate_verdict(GateDecision::Blocked);
        metrics.record_gate_verdict(GateDecision::Pass);
        metrics.record_gate_bypass();
        let text = metrics.render();
        assert!(text.contains("gatehouse_gate_verdicts_total{decision=\"blocked\"} 2\n"));
        assert!(text.contains("gatehouse_gate_verdicts_total{decision=\"pass\"} 1\n"));
        assert!(text.contains("gatehouse_gate_verdicts_total{decision=\"pending\"} 0\n"));
        assert!(text.contains("gatehouse_gate_bypasses_total 1\n"));
        assert!(!text.contains("gatehouse_gate_overdue_retrospectives"));
        metrics.set_gate_gauges(GateGauges {
            emergency_releases: 2,
            overdue_retrospectives: 1,
            gate_bypasses: 3,
            evidence_completeness_percent: Some(62.5),
        });
        let text = metrics.render();
        assert!(text.contains("gatehouse_gate_overdue_retrospectives{window=\"30d\"} 1\n"));
        assert!(text.contains("gatehouse_gate_emergency_releases{window=\"30d\"} 2\n"));
        assert!(
            text.contains("gatehouse_gate_evidence_completeness_percent{window=\"30d\"} 62.5\n")
        );
        assert!(
            metrics.gate_gauges(Duration::ZERO).is_none(),
            "stale gauges are recomputed"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
