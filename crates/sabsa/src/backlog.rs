//! The improvement backlog rules of `003_*` (6.6.3): priority score = risk reduction ×
//! implementation effort score; ≥ 6 is approved automatically, 3–5 needs Security Lead
//! approval, < 3 is deferred unless a business driver is recorded; the lifecycle runs
//! Backlog → Approved → In Progress → Completed → Closed.
//!
//! The pack records each item's current status; this module computes the decision the rules
//! give and flags items whose status contradicts it, so a review finds them without a spreadsheet.

use gatehouse_pack::Pack;
use gatehouse_pack::model::{Improvement, ImprovementStatus};

/// Scores at or above this are approved for the next quarter without a meeting.
pub const AUTO_APPROVE_MIN: i64 = 6;
/// Scores at or above this (and below [`AUTO_APPROVE_MIN`]) need the Security Lead.
pub const LEAD_APPROVAL_MIN: i64 = 3;

/// What the scoring rule decides for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    /// Score ≥ 6.
    AutoApproved,
    /// Score 3–5.
    NeedsSecurityLead,
    /// Score < 3 and no business driver recorded.
    Deferred,
    /// Score < 3 but a business driver is recorded: goes to the Security Lead like 3–5.
    DeferredWithDriver,
}

impl Decision {
    pub fn label(self) -> &'static str {
        match self {
            Decision::AutoApproved => "auto-approved",
            Decision::NeedsSecurityLead => "needs Security Lead approval",
            Decision::Deferred => "deferred",
            Decision::DeferredWithDriver => "deferred, business driver recorded",
        }
    }
}

/// The decision for a score. `has_driver` is whether a business driver is recorded.
pub fn decide(score: i64, has_driver: bool) -> Decision {
    if score >= AUTO_APPROVE_MIN {
        Decision::AutoApproved
    } else if score >= LEAD_APPROVAL_MIN {
        Decision::NeedsSecurityLead
    } else if has_driver {
        Decision::DeferredWithDriver
    } else {
        Decision::Deferred
    }
}

/// Lifecycle position, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Backlog,
    Approved,
    InProgress,
    Completed,
    Closed,
}

impl Stage {
    pub const ORDER: [Stage; 5] = [
        Stage::Backlog,
        Stage::Approved,
        Stage::InProgress,
        Stage::Completed,
        Stage::Closed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Stage::Backlog => "Backlog",
            Stage::Approved => "Approved",
            Stage::InProgress => "In Progress",
            Stage::Completed => "Completed",
            Stage::Closed => "Closed",
        }
    }

    /// The only stage an item may move to next (none after Closed).
    pub fn next(self) -> Option<Stage> {
        let i = Stage::ORDER.iter().position(|s| *s == self)?;
        Stage::ORDER.get(i + 1).copied()
    }

    /// Whether `to` is a legal next step from `self`: one stage forward only.
    pub fn can_move_to(self, to: Stage) -> bool {
        self.next() == Some(to)
    }
}

impl From<ImprovementStatus> for Stage {
    fn from(status: ImprovementStatus) -> Self {
        match status {
            ImprovementStatus::Backlog => Stage::Backlog,
            ImprovementStatus::Approved => Stage::Approved,
            ImprovementStatus::InProgress => Stage::InProgress,
            ImprovementStatus::Completed => Stage::Completed,
            ImprovementStatus::Closed => Stage::Closed,
        }
    }
}

/// One backlog row with its score, decision and any contradiction with the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogItem {
    pub id: String,
    pub title: String,
    pub category: Option<String>,
    pub risk_reduction: i64,
    pub effort: i64,
    pub score: i64,
    pub decision: Decision,
    pub status: Stage,
    pub owner: Option<String>,
    pub due: Option<String>,
    /// Why the recorded status contradicts the rules, if it does.
    pub conflict: Option<String>,
}

/// Whether an improvement records a business driver. The pack model has no dedicated field
/// yet, so a `business driver:` line in its description is what counts.
fn business_driver(item: &Improvement) -> bool {
    item.description.as_deref().is_some_and(|d| {
        d.lines().any(|l| {
            l.trim_start()
                .to_ascii_lowercase()
                .starts_with("business driver:")
        })
    })
}

fn conflict(score_ok: bool, decision: Decision, status: Stage) -> Option<String> {
    if !score_ok {
        return Some(
            "risk_reduction and effort must each be 1, 2 or 3; the score is meaningless".to_owned(),
        );
    }
    match (decision, status) {
        (Decision::AutoApproved, Stage::Backlog) => {
            Some("score ≥ 6 is approved automatically: move it to Approved".to_owned())
        }
        (Decision::Deferred, s) if s > Stage::Backlog && s < Stage::Closed => Some(format!(
            "score < 3 is deferred unless a business driver is recorded, yet it is {}",
            s.label()
        )),
        _ => None,
    }
}

/// The pack's improvements with score and decision, best first (ties by id).
pub fn prioritise(pack: &Pack) -> Vec<BacklogItem> {
    let mut items: Vec<BacklogItem> = pack
        .improvements()
        .map(|item| {
            let (risk, effort) = (item.risk_reduction.value, item.effort.value);
            let score_ok = (1..=3).contains(&risk) && (1..=3).contains(&effort);
            let score = item.priority_score();
            let decision = decide(score, business_driver(item));
            let status = Stage::from(item.status);
            BacklogItem {
                id: item.id.value.clone(),
                title: item.title.clone().unwrap_or_else(|| item.id.value.clone()),
                category: item.category.clone(),
                risk_reduction: risk,
                effort,
                score,
                decision,
                status,
                owner: item.owner.as_ref().map(|o| o.value.clone()),
                due: item.due.as_ref().map(|d| d.value.clone()),
                conflict: conflict(score_ok, decision, status),
            }
        })
        .collect();
    items.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_003() {
        assert_eq!(decide(9, false), Decision::AutoApproved);
        assert_eq!(decide(6, false), Decision::AutoApproved);
        assert_eq!(decide(5, false), Decision::NeedsSecurityLead);
        assert_eq!(decide(3, false), Decision::NeedsSecurityLead);
        assert_eq!(decide(2, false), Decision::Deferred);
        assert_eq!(decide(2, true), Decision::DeferredWithDriver);
        assert_eq!(decide(1, false), Decision::Deferred);
    }

    #[test]
    fn lifecycle_moves_one_stage_forward_only() {
        assert!(Stage::Backlog.can_move_to(Stage::Approved));
        assert!(Stage::Completed.can_move_to(Stage::Closed));
        assert!(!Stage::Backlog.can_move_to(Stage::InProgress));
        assert!(!Stage::Approved.can_move_to(Stage::Backlog));
        assert_eq!(Stage::Closed.next(), None);
    }

    #[test]
    fn contradictions_are_named() {
        assert!(conflict(true, Decision::AutoApproved, Stage::Backlog).is_some());
        assert!(conflict(true, Decision::Deferred, Stage::InProgress).is_some());
        assert!(conflict(true, Decision::Deferred, Stage::Backlog).is_none());
        assert!(conflict(true, Decision::NeedsSecurityLead, Stage::Approved).is_none());
        assert!(conflict(false, Decision::Deferred, Stage::Backlog).is_some());
    }
}
