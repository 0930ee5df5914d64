//! The verdict function: (release class, risk model, release gate state, time) → verdict.
//!
//! Pure and total: it reads only its arguments, never the clock, never panics, and fails
//! closed: whatever it cannot interpret (a kind it does not know, facts it cannot read, a risk
//! without a model, a quorum of zero) blocks, with a reason that names the rule and the
//! evidence. See [`super`] for the meaning of each category. This module holds the entry
//! points and what every category shares ([`Ctx`], exception standing, reason helpers); each
//! category lives in its own module.

use std::collections::{BTreeSet, HashSet};

use gatehouse_pack::Pack;
use gatehouse_pack::model::{ReleaseClass, RiskModel};
use jiff::{SignedDuration, Timestamp};

use super::model::{EvidenceItem, Exception, ExceptionScope, PrincipalKind, ReleaseGateState};
use super::verdict::{
    CategoryResult, EvidenceRef, GateCategory, GateVerdict, Reason, ReasonLevel, RuleRef,
};
use super::{approvals, context, evidence, findings, policy, requirements, risks};

/// How long before expiry an exception is reported with a warning.
pub const EXCEPTION_WARNING_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Evaluates the gate for `state` under `class` at `now`.
///
/// `risk_model` is the model the class's `delegated_risk.risk_model` names (or the pack's
/// model when the class names none); `None` while the release has risks blocks.
pub fn evaluate(
    class: &ReleaseClass,
    risk_model: Option<&RiskModel>,
    state: &ReleaseGateState,
    now: Timestamp,
) -> GateVerdict {
    let ctx = Ctx::new(class, risk_model, state, now);
    let (mut finding_reasons, tally) = findings::assess(&ctx);
    finding_reasons.extend(policy::assess(&ctx));
    let (approval_reasons, retrospective_due) = approvals::assess(&ctx);
    let categories = vec![
        CategoryResult::from_reasons(GateCategory::ContextAndOwnership, context::assess(&ctx)),
        CategoryResult::from_reasons(GateCategory::Requirements, requirements::assess(&ctx)),
        CategoryResult::from_reasons(GateCategory::Evidence, evidence::assess(&ctx)),
        CategoryResult::from_reasons(GateCategory::Findings, finding_reasons),
        CategoryResult::from_reasons(GateCategory::Risks, risks::assess(&ctx)),
        CategoryResult::from_reasons(GateCategory::Approvals, approval_reasons),
    ];
    let mut verdict = GateVerdict::from_categories(
        state.release.id.to_string(),
        class.id.value.clone(),
        ctx.revision,
        now,
        categories,
    );
    verdict.findings = tally;
    verdict.retrospective_due = retrospective_due;
    verdict.bypass = approvals::active_bypass(&ctx).cloned();
    verdict
}

/// Evaluates `state` with the class and risk model looked up in `pack`; a release whose class
/// is not in the pack is blocked (see [`class_missing`]).
pub fn evaluate_in_pack(pack: &Pack, state: &ReleaseGateState, now: Timestamp) -> GateVerdict {
    let Some(class) = pack.release_class(&state.release.release_class) else {
        return class_missing(state, now);
    };
    evaluate(class, risk_model_for(pack, class), state, now)
}

/// The risk model `class` is scored with: the one its `delegated_risk.risk_model` names, else
/// the pack's only risk model. `None` when the named model is missing or the choice is
/// ambiguous, which blocks a release that has risks.
pub fn risk_model_for<'p>(pack: &'p Pack, class: &ReleaseClass) -> Option<&'p RiskModel> {
    match class
        .delegated_risk
        .as_ref()
        .and_then(|d| d.risk_model.as_ref())
    {
        Some(id) => pack.risk_model(id),
        None => {
            let mut models = pack.risk_models();
            match (models.next(), models.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
}

/// The verdict for a release whose class the pack does not define: every category blocked.
pub fn class_missing(state: &ReleaseGateState, now: Timestamp) -> GateVerdict {
    let class = state.release.release_class.clone();
    let categories = GateCategory::ALL
        .iter()
        .map(|&category| {
            CategoryResult::from_reasons(
                category,
                vec![Reason {
                    level: ReasonLevel::Block,
                    code: "class_missing".into(),
                    rule: RuleRef {
                        class: class.clone(),
                        field: "gate.release_class".into(),
                    },
                    message: format!(
                        "release class `{class}` is not defined in the policy pack; nothing \
                         can be checked, so the release is blocked"
                    ),
                    evidence: Vec::new(),
                }],
            )
        })
        .collect();
    GateVerdict::from_categories(
        state.release.id.to_string(),
        class,
        state.revision(),
        now,
        categories,
    )
}

/// How an exception stands at evaluation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExceptionStanding {
    Valid,
    ExpiringSoon,
    Expired,
    Withdrawn,
    /// Recorded in breach of the rules (why).
    Invalid(String),
}

impl ExceptionStanding {
    pub(super) fn counts(&self) -> bool {
        matches!(self, Self::Valid | Self::ExpiringSoon)
    }
}

/// What every category reads, computed once.
pub(super) struct Ctx<'a> {
    pub class: &'a ReleaseClass,
    pub risk_model: Option<&'a RiskModel>,
    pub state: &'a ReleaseGateState,
    pub now: Timestamp,
    pub revision: u64,
    /// Ids of items some other item supersedes.
    superseded: HashSet<&'a str>,
    /// Roles that approve this class (path roles, escalation and retrospective roles).
    pub approving_roles: BTreeSet<&'a str>,
    /// Lower-case hex of the release's artifact digests.
    pub artifact_hexes: Vec<&'a str>,
}

impl<'a> Ctx<'a> {
    fn new(
        class: &'a ReleaseClass,
        risk_model: Option<&'a RiskModel>,
        state: &'a ReleaseGateState,
        now: Timestamp,
    ) -> Self {
        let superseded = state
            .evidence
            .iter()
            .filter_map(|e| e.supersedes.as_deref())
            .collect();
        let approving_roles = approving_roles(class);
        Self {
            class,
            risk_model,
            state,
            now,
            revision: state.revision(),
            superseded,
            approving_roles,
            artifact_hexes: state
                .release
                .artifact_digests
                .iter()
                .map(|d| d.hex())
                .collect(),
        }
    }

    pub fn rule(&self, field: impl Into<String>) -> RuleRef {
        RuleRef {
            class: self.class.id.value.clone(),
            field: field.into(),
        }
    }

    pub fn reason(
        &self,
        level: ReasonLevel,
        code: &str,
        field: impl Into<String>,
        message: String,
    ) -> Reason {
        Reason {
            level,
            code: code.to_owned(),
            rule: self.rule(field),
            message,
            evidence: Vec::new(),
        }
    }

    pub fn is_superseded(&self, item: &EvidenceItem) -> bool {
        self.superseded.contains(item.id.as_str())
    }

    /// Items that count: not superseded, and only the first of several with the same digest
    /// (re-uploading a file must not double its findings).
    pub fn active_items(&self) -> Vec<&'a EvidenceItem> {
        let mut seen = HashSet::new();
        self.state
            .evidence
            .iter()
            .filter(|e| !self.superseded.contains(e.id.as_str()))
            .filter(|e| seen.insert(e.sha256.as_str()))
            .collect()
    }

    pub fn roles_approving(&self) -> String {
        self.approving_roles
            .iter()
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn standing(&self, exception: &Exception) -> ExceptionStanding {
        if let Some(why) = exception_problem(
            self.class,
            &self.approving_roles,
            &self.state.release.submitter,
            exception,
        ) {
            return ExceptionStanding::Invalid(why);
        }
        if exception.is_withdrawn(self.now) {
            return ExceptionStanding::Withdrawn;
        }
        if exception.is_expired(self.now) {
            return ExceptionStanding::Expired;
        }
        if exception.expires_at.duration_since(self.now) <= EXCEPTION_WARNING_WINDOW {
            return ExceptionStanding::ExpiringSoon;
        }
        ExceptionStanding::Valid
    }

    /// Usable exceptions whose scope satisfies `matches`.
    pub fn usable_exceptions(
        &self,
        matches: impl Fn(&ExceptionScope) -> bool,
    ) -> impl Iterator<Item = &'a Exception> {
        self.state
            .exceptions
            .iter()
            .filter(move |x| matches(&x.scope) && self.standing(x).counts())
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// Roles that approve `class`: its approver-path roles, its escalation role and its
/// retrospective role. Only they may approve exceptions and deferrals for it.
pub(super) fn approving_roles(class: &ReleaseClass) -> BTreeSet<&str> {
    let mut roles: BTreeSet<&str> = class
        .approver_path
        .iter()
        .map(|s| s.role.as_str())
        .collect();
    if let Some(d) = &class.delegated_risk {
        roles.insert(d.escalate_to.as_str());
    }
    if let Some(role) = class
        .emergency
        .as_ref()
        .and_then(|e| e.retrospective_role.as_ref())
    {
        roles.insert(role.as_str());
    }
    roles
}

/// Why `exception` breaks the rules for an exception of `class` on a release submitted by
/// `submitter`, if it does.
pub(super) fn exception_problem(
    class: &ReleaseClass,
    approving_roles: &BTreeSet<&str>,
    submitter: &str,
    exception: &Exception,
) -> Option<String> {
    if exception.approver.id == submitter {
        return Some(format!(
            "was approved by the release's submitter {submitter} (separation of duties)"
        ));
    }
    if exception.approver.kind != PrincipalKind::Person {
        return Some(format!(
            "was approved by {}, which is not a person",
            exception.approver.id
        ));
    }
    if !approving_roles.contains(exception.approver_role.as_str()) {
        return Some(format!(
            "was approved in role `{}`, which does not approve class `{}` (roles: {})",
            exception.approver_role,
            class.id.value,
            approving_roles
                .iter()
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if exception.justification.trim().is_empty() {
        return Some("has no justification".into());
    }
    if exception.expires_at <= exception.approved_at {
        return Some("expires before it was approved".into());
    }
    None
}

/// The name of the band of `model` that `score` falls in (bands are inclusive).
pub(super) fn risk_model_band(model: &RiskModel, score: u32) -> Option<&str> {
    model
        .bands
        .iter()
        .find(|b| b.min.value <= score && score <= b.max.value)
        .map(|b| b.name.as_str())
}

pub(super) fn evidence_ref(item: &EvidenceItem) -> EvidenceRef {
    EvidenceRef {
        id: item.id.clone(),
        kind: item.kind.to_string(),
        digest: item.digest(),
    }
}

pub(super) fn with_evidence(mut reason: Reason, items: &[&EvidenceItem]) -> Reason {
    reason.evidence = items.iter().map(|i| evidence_ref(i)).collect();
    reason
}

/// `2d 4h`, `3h 5m`, `40s`: durations as people read them in reasons.
pub(super) fn human(duration: SignedDuration) -> String {
    let secs = duration.as_secs().unsigned_abs();
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    let text = if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m")
    } else {
        format!("{secs}s")
    };
    if duration.is_negative() {
        format!("-{text}")
    } else {
        text
    }
}

pub(super) fn plus(at: Timestamp, duration: SignedDuration) -> Timestamp {
    at.saturating_add(duration).unwrap_or(Timestamp::MAX)
}

/// Reasons about the exceptions whose scope `in_category` selects: expired ones raise a
/// blocking finding (they stop counting and must be renewed or withdrawn), soon-expiring ones
/// warn, invalid ones block.
pub(super) fn exception_reasons(
    ctx: &Ctx<'_>,
    reasons: &mut Vec<Reason>,
    in_category: impl Fn(&ExceptionScope) -> bool,
) {
    for x in ctx
        .state
        .exceptions
        .iter()
        .filter(|x| in_category(&x.scope))
    {
        match ctx.standing(x) {
            ExceptionStanding::Valid | ExceptionStanding::Withdrawn => {}
            ExceptionStanding::ExpiringSoon => reasons.push(ctx.reason(
                ReasonLevel::Warning,
                "exception_expiring",
                "gate.exception_expiry",
                format!(
                    "exception {} expires at {} (in {}); renew or resolve it",
                    x.id,
                    x.expires_at,
                    human(x.expires_at.duration_since(ctx.now))
                ),
            )),
            ExceptionStanding::Expired => reasons.push(ctx.reason(
                ReasonLevel::Block,
                "exception_expired",
                "gate.exception_expiry",
                format!(
                    "exception {} expired at {}; it no longer counts — renew it with a new \
                     approval or withdraw it",
                    x.id, x.expires_at
                ),
            )),
            ExceptionStanding::Invalid(why) => reasons.push(ctx.reason(
                ReasonLevel::Block,
                "exception_invalid",
                "gate.separation_of_duties",
                format!("exception {} does not count: it {why}", x.id),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human(SignedDuration::from_secs(40)), "40s");
        assert_eq!(human(SignedDuration::from_mins(65)), "1h 5m");
        assert_eq!(human(SignedDuration::from_hours(49)), "2d 1h");
        assert_eq!(human(SignedDuration::from_hours(-3)), "-3h 0m");
    }

    #[test]
    fn plus_saturates_instead_of_failing() {
        assert_eq!(
            plus(Timestamp::MAX, SignedDuration::from_hours(1)),
            Timestamp::MAX
        );
    }
}
