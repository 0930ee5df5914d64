//! Release-gate metrics over a period, from release records and their gate state.
//!
//! The release-gate standard asks to track gate bypasses, emergency releases, evidence
//! completeness and review latency, and to use them to simplify low-value gates and strengthen
//! weak ones. These are computed here, purely, so the API, the CLI and `/metrics` report the
//! same numbers. Post-release security defects are not modelled in the gate state yet and are
//! therefore not reported (rather than reported as zero).
//!
//! The figures must cover every release, however many are stored, so they are folded one
//! release at a time ([`Accumulator`]): the server walks the store page by page and never holds
//! more than a page of gate states. [`compute`] is the same fold over a slice.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use gatehouse_pack::model::ReleaseClass;

use super::approvals::retrospective_due;
use super::evaluate::evaluate;
use super::model::{ApprovalDecision, ApprovalTarget, PrincipalKind, ReleaseGateState};
use super::verdict::{GateCategory, GateDecision};

/// A half-open period `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }
}

/// One release as the metrics see it: its gate state and its class (`None` when the pack no
/// longer defines it; such releases are counted and listed, never silently dropped).
#[derive(Debug, Clone, Copy)]
pub struct ReleaseRecord<'a> {
    pub state: &'a ReleaseGateState,
    pub class: Option<&'a ReleaseClass>,
}

/// An emergency release whose retrospective review was not done on time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueRetrospective {
    pub release: String,
    pub service: String,
    pub due: Timestamp,
    /// When it was done after all, if it was.
    pub completed_at: Option<Timestamp>,
}

/// The metrics of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateMetrics {
    pub period: Period,
    /// Releases submitted in the period.
    pub releases: u64,
    /// Bypasses recorded in the period (on any release).
    pub gate_bypasses: u64,
    /// Releases submitted in the period under an emergency class.
    pub emergency_releases: u64,
    /// Required evidence items of the period's releases, and how many were present and fresh
    /// when the release was decided (or at the end of the period while undecided).
    pub evidence_required: u64,
    pub evidence_present: u64,
    /// `evidence_present / evidence_required` in percent; `None` when nothing was required.
    pub evidence_completeness_percent: Option<f64>,
    /// Releases of the period with a decision (approver path complete, or a rejection).
    pub decided_releases: u64,
    /// Submission → decision, nearest-rank percentiles, in seconds.
    pub review_latency_p50_seconds: Option<i64>,
    pub review_latency_p90_seconds: Option<i64>,
    /// Emergency retrospectives due before the end of the period and not done by their due
    /// time (whenever the release was submitted).
    pub overdue_retrospectives: Vec<OverdueRetrospective>,
    /// Releases of the period whose class the pack does not define.
    pub releases_without_class: Vec<String>,
}

/// When the release was decided: its first fresh rejection of an approver step, else the last
/// approval that completed its approver path; `None` while undecided.
pub fn decided_at(class: &ReleaseClass, state: &ReleaseGateState) -> Option<Timestamp> {
    let steps = || {
        state.approvals.iter().filter(|a| {
            matches!(a.target, ApprovalTarget::Step { .. })
                && a.approver.kind == PrincipalKind::Person
                && a.approver.id != state.release.submitter
        })
    };
    if let Some(reject) = steps()
        .filter(|a| a.decision == ApprovalDecision::Reject)
        .map(|a| a.at)
        .min()
    {
        return Some(reject);
    }
    let last = steps()
        .filter(|a| a.decision == ApprovalDecision::Approve)
        .map(|a| a.at)
        .max()?;
    let verdict = evaluate(class, None, state, last);
    let approvals = verdict.category(GateCategory::Approvals)?;
    let path_complete = !approvals.reasons.iter().any(|r| {
        r.rule.field.starts_with("approver_path") && r.level.decision() != GateDecision::Pass
    });
    path_complete.then_some(last)
}

/// Computes the metrics of `period` as known at `now` (evaluations happen at the earlier of
/// the two, so a period that has not ended yet is not judged by the future).
pub fn compute(records: &[ReleaseRecord<'_>], period: Period, now: Timestamp) -> GateMetrics {
    let mut accumulator = Accumulator::new(period, now);
    for record in records {
        accumulator.add(*record);
    }
    accumulator.finish()
}

/// The metrics of one period, folded from releases given one at a time in any number; the
/// result lists overdue retrospectives and releases without a class in the order they were
/// added.
///
/// What it keeps grows only with the period's decided releases (one latency each, for exact
/// percentiles) and with the lists it reports, not with the releases added. A release submitted
/// at or after the end of the period changes nothing (its bypasses and its retrospective's due
/// time come after its submission), so a walk over the store may leave those out.
#[derive(Debug, Clone)]
pub struct Accumulator {
    /// When evaluations happen: the end of the period, or `now` if that is earlier.
    as_of: Timestamp,
    metrics: GateMetrics,
    latencies: Vec<SignedDuration>,
}

impl Accumulator {
    /// An empty fold for `period` as known at `now` (see [`compute`]).
    pub fn new(period: Period, now: Timestamp) -> Self {
        Self {
            as_of: period.end.min(now),
            metrics: GateMetrics {
                period,
                releases: 0,
                gate_bypasses: 0,
                emergency_releases: 0,
                evidence_required: 0,
                evidence_present: 0,
                evidence_completeness_percent: None,
                decided_releases: 0,
                review_latency_p50_seconds: None,
                review_latency_p90_seconds: None,
                overdue_retrospectives: Vec::new(),
                releases_without_class: Vec::new(),
            },
            latencies: Vec::new(),
        }
    }

    /// Whether [`Accumulator::add`] evaluates the gate of a release submitted at
    /// `created_at` (it was submitted in the period). Only those releases need their evidence
    /// facts; of any other release only its bypasses and retrospective count.
    pub fn evaluates(&self, created_at: Timestamp) -> bool {
        self.metrics.period.contains(created_at)
    }

    /// Folds one release in.
    pub fn add(&mut self, record: ReleaseRecord<'_>) {
        let period = self.metrics.period;
        let as_of = self.as_of;
        let metrics = &mut self.metrics;
        let state = record.state;
        let release = &state.release;
        metrics.gate_bypasses += state
            .bypasses
            .iter()
            .filter(|b| period.contains(b.at))
            .count() as u64;
        if let Some(class) = record.class
            && let Some(due) = retrospective_due(class, state)
            && due < as_of
        {
            let completed_at = state.retrospective.as_ref().map(|r| r.completed_at);
            if completed_at.is_none_or(|done| done > due) {
                metrics.overdue_retrospectives.push(OverdueRetrospective {
                    release: release.id.to_string(),
                    service: release.service.clone(),
                    due,
                    completed_at,
                });
            }
        }
        if !period.contains(release.created_at) {
            return;
        }
        metrics.releases += 1;
        let Some(class) = record.class else {
            metrics.releases_without_class.push(release.id.to_string());
            return;
        };
        if class.emergency.is_some() {
            metrics.emergency_releases += 1;
        }
        let decided = decided_at(class, state).filter(|at| *at <= as_of);
        if let Some(at) = decided {
            metrics.decided_releases += 1;
            self.latencies.push(at.duration_since(release.created_at));
        }
        let verdict = evaluate(class, None, state, decided.unwrap_or(as_of));
        metrics.evidence_required += class.required_evidence.len() as u64;
        metrics.evidence_present += verdict
            .category(GateCategory::Evidence)
            .map(|c| {
                c.reasons
                    .iter()
                    .filter(|r| r.code == "evidence_present")
                    .count() as u64
            })
            .unwrap_or(0);
    }

    /// The metrics of every release added.
    pub fn finish(self) -> GateMetrics {
        let Self {
            mut metrics,
            mut latencies,
            ..
        } = self;
        if metrics.evidence_required > 0 {
            metrics.evidence_completeness_percent =
                Some(metrics.evidence_present as f64 * 100.0 / metrics.evidence_required as f64);
        }
        latencies.sort();
        metrics.review_latency_p50_seconds = percentile(&latencies, 50).map(|d| d.as_secs());
        metrics.review_latency_p90_seconds = percentile(&latencies, 90).map(|d| d.as_secs());
        metrics
    }
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(values: &[SignedDuration], percent: usize) -> Option<SignedDuration> {
    if values.is_empty() {
        return None;
    }
    let rank = (percent * values.len()).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<SignedDuration> = (1..=10).map(SignedDuration::from_secs).collect();
        assert_eq!(percentile(&values, 50), Some(SignedDuration::from_secs(5)));
        assert_eq!(percentile(&values, 90), Some(SignedDuration::from_secs(9)));
        assert_eq!(
            percentile(&values[..1], 90),
            Some(SignedDuration::from_secs(1))
        );
        assert_eq!(percentile(&[], 50), None);
    }
}
