//! The gate's answer: a decision, one result per gate category, and the reasons behind each.
//!
//! Every [`Reason`] names the rule it applies (release class id and field, or a built-in gate
//! rule) and the evidence it rests on, so a blocked release tells its owner exactly what to
//! fix and an auditor exactly why a release passed. The types serialize to the JSON that
//! `gate check --format json` prints and deserialize back, so the CLI can render a verdict
//! fetched from the server.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::model::{Bypass, Revision};

/// The overall or per-category outcome. Ordered by severity so the worst one wins:
/// `Pass < Pending < Blocked`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum GateDecision {
    /// Everything required is present, valid and approved.
    Pass,
    /// Nothing is wrong, but something required has not arrived yet (evidence, a status, an
    /// approval).
    #[default]
    Pending,
    /// Something is wrong and needs action: a finding over threshold, a rejection, stale or
    /// untrustworthy evidence, an expired exception, a rule the gate cannot interpret.
    Blocked,
}

impl GateDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Pending => "pending",
            Self::Blocked => "blocked",
        }
    }
}

impl fmt::Display for GateDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gate categories of the release-gate standard, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateCategory {
    ContextAndOwnership,
    Requirements,
    Evidence,
    Findings,
    Risks,
    Approvals,
}

impl GateCategory {
    pub const ALL: [GateCategory; 6] = [
        Self::ContextAndOwnership,
        Self::Requirements,
        Self::Evidence,
        Self::Findings,
        Self::Risks,
        Self::Approvals,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContextAndOwnership => "context_and_ownership",
            Self::Requirements => "requirements",
            Self::Evidence => "evidence",
            Self::Findings => "findings",
            Self::Risks => "risks",
            Self::Approvals => "approvals",
        }
    }

    /// Heading used in summaries and memos.
    pub fn title(self) -> &'static str {
        match self {
            Self::ContextAndOwnership => "Context & ownership",
            Self::Requirements => "Requirements",
            Self::Evidence => "Evidence",
            Self::Findings => "Findings",
            Self::Risks => "Risks",
            Self::Approvals => "Approvals",
        }
    }
}

/// How much a reason weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonLevel {
    /// Informational: what was checked and found in order.
    Info,
    /// Does not stop the release but needs attention soon (an exception about to expire).
    Warning,
    /// Makes the category pending.
    Pending,
    /// Makes the category blocked.
    Block,
}

impl ReasonLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Pending => "pending",
            Self::Block => "block",
        }
    }

    /// The category decision this level implies on its own.
    pub fn decision(self) -> GateDecision {
        match self {
            Self::Info | Self::Warning => GateDecision::Pass,
            Self::Pending => GateDecision::Pending,
            Self::Block => GateDecision::Blocked,
        }
    }
}

/// The rule a reason applies: a field of the release class, or a built-in gate rule
/// (`field` then starts with `gate.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleRef {
    /// Release class id.
    pub class: String,
    /// Field path in the class (`required_evidence[2].max_age`) or built-in rule
    /// (`gate.separation_of_duties`).
    pub field: String,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.field)
    }
}

/// Evidence a reason rests on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub id: String,
    pub kind: String,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// One thing the gate found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub level: ReasonLevel,
    /// Stable machine-readable code, e.g. `evidence_stale`, `approval_stale`.
    pub code: String,
    pub rule: RuleRef,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EvidenceRef>,
}

/// The outcome of one gate category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryResult {
    pub category: GateCategory,
    pub decision: GateDecision,
    pub reasons: Vec<Reason>,
}

impl CategoryResult {
    /// A result whose decision is the worst level among `reasons` (pass when none weighs).
    pub fn from_reasons(category: GateCategory, reasons: Vec<Reason>) -> Self {
        let decision = reasons
            .iter()
            .map(|r| r.level.decision())
            .max()
            .unwrap_or(GateDecision::Pass);
        Self {
            category,
            decision,
            reasons,
        }
    }
}

/// Open findings per severity after suppressions, VEX statements and exceptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingTally {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

/// The gate's answer for one release at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateVerdict {
    /// Release id.
    pub release: String,
    /// Release class id the release was evaluated against.
    pub class: String,
    /// `Blocked` if any category is blocked, else `Pending` if any is pending, else `Pass`.
    pub decision: GateDecision,
    /// The state revision evaluated (approvals and bypasses refer to it).
    pub revision: Revision,
    pub evaluated_at: Timestamp,
    /// One per [`GateCategory`], in [`GateCategory::ALL`] order.
    pub categories: Vec<CategoryResult>,
    pub findings: FindingTally,
    /// When the class is an emergency class: when the retrospective review is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrospective_due: Option<Timestamp>,
    /// A bypass in force for this revision. It does not change `decision`: the gate's own
    /// answer stays visible next to the override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass: Option<Bypass>,
}

impl GateVerdict {
    /// Builds a verdict whose decision is derived from `categories`, so the two can never
    /// disagree.
    pub fn from_categories(
        release: String,
        class: String,
        revision: Revision,
        evaluated_at: Timestamp,
        categories: Vec<CategoryResult>,
    ) -> Self {
        // No categories at all would otherwise read as "nothing failed"; fail closed.
        let decision = if categories.is_empty() {
            GateDecision::Blocked
        } else {
            categories
                .iter()
                .map(|c| c.decision)
                .max()
                .unwrap_or(GateDecision::Blocked)
        };
        Self {
            release,
            class,
            decision,
            revision,
            evaluated_at,
            categories,
            findings: FindingTally::default(),
            retrospective_due: None,
            bypass: None,
        }
    }

    /// The result of `category`.
    pub fn category(&self, category: GateCategory) -> Option<&CategoryResult> {
        self.categories.iter().find(|c| c.category == category)
    }

    /// All reasons of all categories.
    pub fn reasons(&self) -> impl Iterator<Item = (GateCategory, &Reason)> {
        self.categories
            .iter()
            .flat_map(|c| c.reasons.iter().map(move |r| (c.category, r)))
    }

    /// Whether the release may proceed: the gate passed, or a bypass for this revision is in
    /// force.
    pub fn allows_release(&self) -> bool {
        self.decision == GateDecision::Pass || self.bypass.is_some()
    }

    /// The exit status of `gatehouse gate check`: 0 when the release may proceed (passed, or
    /// bypassed for this revision), 1 blocked, 3 pending. (2 is the CLI's own error status.)
    pub fn exit_code(&self) -> u8 {
        if self.allows_release() {
            return 0;
        }
        match self.decision {
            GateDecision::Pass => 0,
            GateDecision::Blocked => 1,
            GateDecision::Pending => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(category: GateCategory, decision: GateDecision) -> CategoryResult {
        CategoryResult {
            category,
            decision,
            reasons: Vec::new(),
        }
    }

    fn verdict(decisions: [GateDecision; 6]) -> GateVerdict {
        GateVerdict::from_categories(
            "r".into(),
            "c".into(),
            1,
            Timestamp::UNIX_EPOCH,
            GateCategory::ALL
                .iter()
                .zip(decisions)
                .map(|(c, d)| category(*c, d))
                .collect(),
        )
    }

    #[test]
    fn the_worst_category_decides() {
        use GateDecision::*;
        assert_eq!(verdict([Pass; 6]).decision, Pass);
        assert_eq!(
            verdict([Pass, Pending, Pass, Pass, Pass, Pass]).decision,
            Pending
        );
        assert_eq!(
            verdict([Pass, Pending, Blocked, Pass, Pass, Pass]).decision,
            Blocked
        );
    }

    #[test]
    fn no_categories_is_blocked() {
        let empty = GateVerdict::from_categories(
            "r".into(),
            "c".into(),
            0,
            Timestamp::UNIX_EPOCH,
            Vec::new(),
        );
        assert_eq!(empty.decision, GateDecision::Blocked);
    }

    #[test]
    fn exit_codes_follow_the_cli_contract() {
        use GateDecision::*;
        assert_eq!(verdict([Pass; 6]).exit_code(), 0);
        assert_eq!(verdict([Blocked; 6]).exit_code(), 1);
        assert_eq!(verdict([Pending; 6]).exit_code(), 3);
    }

    #[test]
    fn reason_levels_map_to_decisions() {
        let result = CategoryResult::from_reasons(
            GateCategory::Evidence,
            vec![Reason {
                level: ReasonLevel::Warning,
                code: "w".into(),
                rule: RuleRef {
                    class: "c".into(),
                    field: "f".into(),
                },
                message: String::new(),
                evidence: Vec::new(),
            }],
        );
        assert_eq!(result.decision, GateDecision::Pass);
    }
}
