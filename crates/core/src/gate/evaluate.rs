//! The verdict function: (release class, risk model, release gate state, time) → verdict.
//!
//! Pure and total: it reads only its arguments, never the clock, never panics, and fails
//! closed: whatever it cannot interpret (a kind it does not know, facts it cannot read, a risk
//! without a model, a quorum of zero) blocks, with a reason that names the rule and the
//! evidence. See [`super`] for the meaning of each category.

use std::collections::{BTreeSet, HashMap, HashSet};

use gatehouse_evidence::{Facts, SignatureCheck};
use gatehouse_pack::Pack;
use gatehouse_pack::model::{ReleaseClass, RiskModel};
use jiff::{SignedDuration, Timestamp};

use super::findings;
use super::kinds::{self, RequiredKind};
use super::model::{
    Actor, ApprovalDecision, ApprovalTarget, EvidenceFacts, EvidenceItem, Exception,
    ExceptionScope, PrincipalKind, ReleaseGateState, RequirementStatus, RiskStatus,
};
use super::verdict::{
    CategoryResult, EvidenceRef, GateCategory, GateVerdict, Reason, ReasonLevel, RuleRef,
};

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
    let (finding_reasons, tally) = findings::assess(&ctx);
    let (approval_reasons, retrospective_due) = approvals(&ctx);
    let categories = vec![
        CategoryResult::from_reasons(GateCategory::ContextAndOwnership, context(&ctx)),
        CategoryResult::from_reasons(GateCategory::Requirements, requirements(&ctx)),
        CategoryResult::from_reasons(GateCategory::Evidence, evidence(&ctx)),
        CategoryResult::from_reasons(GateCategory::Findings, finding_reasons),
        CategoryResult::from_reasons(GateCategory::Risks, risks(&ctx)),
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
    verdict.bypass = active_bypass(&ctx).cloned();
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
    approving_roles: BTreeSet<&'a str>,
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

fn plus(at: Timestamp, duration: SignedDuration) -> Timestamp {
    at.saturating_add(duration).unwrap_or(Timestamp::MAX)
}

// ---------------------------------------------------------------------------------------------
// Context & ownership

fn context(ctx: &Ctx<'_>) -> Vec<Reason> {
    let release = &ctx.state.release;
    let mut reasons = Vec::new();
    if release.release_class != ctx.class.id.value {
        reasons.push(ctx.reason(
            ReasonLevel::Block,
            "class_mismatch",
            "gate.release_class",
            format!(
                "the release names class `{}` but was evaluated against `{}`",
                release.release_class, ctx.class.id.value
            ),
        ));
    }
    if release.owner.trim().is_empty() {
        reasons.push(ctx.reason(
            ReasonLevel::Block,
            "owner_missing",
            "gate.context.owner",
            "the release has no accountable owner".into(),
        ));
    }
    if release.change.summary.trim().is_empty() {
        reasons.push(ctx.reason(
            ReasonLevel::Block,
            "change_summary_missing",
            "gate.context.change.summary",
            "the release records no change summary (what changes and why)".into(),
        ));
    }
    if release.change.ticket.is_none() && release.change.pull_request.is_none() {
        reasons.push(ctx.reason(
            ReasonLevel::Warning,
            "change_links_missing",
            "gate.context.change",
            "the release links neither a ticket nor a pull request".into(),
        ));
    }
    if release.artifact_digests.is_empty() {
        reasons.push(
            ctx.reason(
                ReasonLevel::Block,
                "artifacts_missing",
                "gate.context.artifact_digests",
                "the release names no artifact digest, so nothing ties the evidence to what is \
             deployed"
                    .into(),
            ),
        );
    }
    if reasons.iter().all(|r| r.level < ReasonLevel::Pending) {
        reasons.push(ctx.reason(
            ReasonLevel::Info,
            "context_recorded",
            "gate.context",
            format!(
                "{} {} to {}, owned by {}, submitted by {} ({} artifact digest{})",
                release.service,
                release.version,
                release.target_environment,
                release.owner,
                release.submitter,
                release.artifact_digests.len(),
                if release.artifact_digests.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        ));
    }
    reasons
}

// ---------------------------------------------------------------------------------------------
// Requirements

fn requirements(ctx: &Ctx<'_>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let state = ctx.state;
    for (index, requirement) in ctx.class.security_requirements.iter().enumerate() {
        let field = format!("security_requirements[{index}]");
        let id = requirement.id.as_str();
        let Some(record) = state.requirement_record(id) else {
            reasons.push(ctx.reason(
                ReasonLevel::Pending,
                "requirement_without_status",
                field,
                format!(
                    "{id} ({}) has no status: mark it complete with evidence, defer it with \
                     approval, or except it",
                    requirement.title
                ),
            ));
            continue;
        };
        match &record.status {
            RequirementStatus::Complete { evidence } => {
                if evidence.is_empty() {
                    reasons.push(ctx.reason(
                        ReasonLevel::Block,
                        "requirement_without_evidence",
                        field,
                        format!("{id} is marked complete but points at no evidence"),
                    ));
                    continue;
                }
                let mut found = Vec::new();
                let mut problems = Vec::new();
                for evidence_id in evidence {
                    match state.evidence_item(evidence_id) {
                        None => problems.push(format!("evidence {evidence_id} does not exist")),
                        Some(item) if matches!(item.facts, EvidenceFacts::Unreadable { .. }) => {
                            problems.push(format!("evidence {evidence_id} is unreadable"));
                            found.push(item);
                        }
                        Some(item) if ctx.is_superseded(item) => {
                            problems.push(format!("evidence {evidence_id} has been superseded"));
                            found.push(item);
                        }
                        Some(item) => found.push(item),
                    }
                }
                if problems.is_empty() {
                    reasons.push(with_evidence(
                        ctx.reason(
                            ReasonLevel::Info,
                            "requirement_complete",
                            field,
                            format!("{id} ({}) is complete", requirement.title),
                        ),
                        &found,
                    ));
                } else {
                    reasons.push(with_evidence(
                        ctx.reason(
                            ReasonLevel::Block,
                            "requirement_evidence_invalid",
                            field,
                            format!("{id} is marked complete, but {}", problems.join("; ")),
                        ),
                        &found,
                    ));
                }
            }
            RequirementStatus::Deferred {
                approved_by,
                role,
                due,
            } => {
                let problem = if approved_by.id == state.release.submitter {
                    Some(format!(
                        "the deferral was approved by the submitter {} (separation of duties)",
                        approved_by.id
                    ))
                } else if approved_by.kind != PrincipalKind::Person {
                    Some(format!(
                        "the deferral was approved by {}, which is not a person",
                        approved_by.id
                    ))
                } else if !ctx.approving_roles.contains(role.as_str()) {
                    Some(format!(
                        "the deferral was approved in role `{role}`, which does not approve \
                         this class (roles: {})",
                        ctx.roles_approving()
                    ))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    reasons.push(ctx.reason(
                        ReasonLevel::Block,
                        "deferral_invalid",
                        field,
                        format!("{id} is deferred, but {problem}"),
                    ));
                } else if *due <= ctx.now {
                    reasons.push(ctx.reason(
                        ReasonLevel::Block,
                        "deferral_overdue",
                        field,
                        format!(
                            "{id} was deferred until {due} by {} ({role}); that date has passed",
                            approved_by.display
                        ),
                    ));
                } else {
                    reasons.push(ctx.reason(
                        ReasonLevel::Info,
                        "requirement_deferred",
                        field,
                        format!(
                            "{id} ({}) is deferred until {due}, approved by {} ({role})",
                            requirement.title, approved_by.display
                        ),
                    ));
                }
            }
            RequirementStatus::Excepted { exception } => {
                let Some(x) = state.exception(exception) else {
                    reasons.push(ctx.reason(
                        ReasonLevel::Block,
                        "requirement_exception_unknown",
                        field,
                        format!("{id} is excepted by {exception}, which does not exist"),
                    ));
                    continue;
                };
                if x.scope != (ExceptionScope::Requirement { id: id.to_owned() }) {
                    reasons.push(ctx.reason(
                        ReasonLevel::Block,
                        "exception_scope_mismatch",
                        field,
                        format!("{id} is excepted by {exception}, which covers something else"),
                    ));
                    continue;
                }
                let standing = ctx.standing(x);
                let (level, code, text) = match &standing {
                    ExceptionStanding::Valid | ExceptionStanding::ExpiringSoon => (
                        ReasonLevel::Info,
                        "requirement_excepted",
                        format!(
                            "{id} ({}) is excepted by {} until {}",
                            requirement.title, x.id, x.expires_at
                        ),
                    ),
                    ExceptionStanding::Expired => (
                        ReasonLevel::Block,
                        "requirement_unmet",
                        format!(
                            "{id} is unmet: its exception {} expired at {}",
                            x.id, x.expires_at
                        ),
                    ),
                    ExceptionStanding::Withdrawn => (
                        ReasonLevel::Pending,
                        "requirement_without_status",
                        format!("{id} is unmet: its exception {} was withdrawn", x.id),
                    ),
                    ExceptionStanding::Invalid(why) => (
                        ReasonLevel::Block,
                        "requirement_unmet",
                        format!("{id} is unmet: its exception {} {why}", x.id),
                    ),
                };
                reasons.push(ctx.reason(level, code, field, text));
            }
        }
    }
    if ctx.class.security_requirements.is_empty() {
        reasons.push(ctx.reason(
            ReasonLevel::Info,
            "no_requirements",
            "security_requirements",
            "the class lists no security requirements".into(),
        ));
    }
    for record in &state.requirements {
        if !ctx
            .class
            .security_requirements
            .iter()
            .any(|r| r.id.value == record.requirement)
        {
            reasons.push(ctx.reason(
                ReasonLevel::Info,
                "requirement_not_in_class",
                "security_requirements",
                format!(
                    "a status was recorded for {}, which the class does not list; ignored",
                    record.requirement
                ),
            ));
        }
    }
    exception_reasons(ctx, &mut reasons, |scope| {
        matches!(scope, ExceptionScope::Requirement { .. })
    });
    reasons
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

// ---------------------------------------------------------------------------------------------
// Evidence

/// Why an item cannot be relied on (empty when it can).
fn distrust(ctx: &Ctx<'_>, item: &EvidenceItem) -> Vec<(ReasonLevel, &'static str, String)> {
    let mut problems = Vec::new();
    match &item.facts {
        EvidenceFacts::Unreadable { reason } => problems.push((
            ReasonLevel::Block,
            "evidence_unreadable",
            format!("the facts of evidence {} cannot be read: {reason}", item.id),
        )),
        EvidenceFacts::Parsed(Facts::InToto(facts)) => {
            if facts.envelopes.is_empty() {
                problems.push((
                    ReasonLevel::Block,
                    "attestation_unverified",
                    format!("attestation {} contains no statement", item.id),
                ));
            }
            for (index, envelope) in facts.envelopes.iter().enumerate() {
                match &envelope.signature_check {
                    SignatureCheck::Verified(_) => {}
                    SignatureCheck::NotChecked => problems.push((
                        ReasonLevel::Block,
                        "attestation_unverified",
                        format!(
                            "attestation {} envelope {} was not checked against the pack's \
                             trusted keys",
                            item.id,
                            index + 1
                        ),
                    )),
                    SignatureCheck::Unsigned => problems.push((
                        ReasonLevel::Warning,
                        "attestation_unsigned",
                        format!(
                            "attestation {} statement {} is unsigned; it does not count as \
                             evidence",
                            item.id,
                            index + 1
                        ),
                    )),
                }
            }
            let digests: Vec<&str> = facts
                .subjects
                .iter()
                .filter_map(|s| s.sha256.as_deref())
                .collect();
            if !digests.iter().any(|d| ctx.artifact_hexes.contains(d)) {
                let shown = if digests.is_empty() {
                    "no sha256 subject".to_owned()
                } else {
                    digests
                        .iter()
                        .take(5)
                        .map(|d| format!("sha256:{d}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                problems.push((
                    ReasonLevel::Block,
                    "attestation_subject_mismatch",
                    format!(
                        "attestation {} is about {shown}, none of which is an artifact of \
                         this release",
                        item.id
                    ),
                ));
            }
        }
        EvidenceFacts::Parsed(Facts::CycloneDx(facts)) if !facts.problems.is_empty() => problems
            .push((
                ReasonLevel::Warning,
                "evidence_problems",
                format!(
                    "SBOM {} has schema problems ({}); it does not satisfy a requirement",
                    item.id,
                    facts.problems.join("; ")
                ),
            )),
        EvidenceFacts::Parsed(_) => {}
    }
    problems
}

fn evidence(ctx: &Ctx<'_>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let state = ctx.state;
    for (index, required) in ctx.class.required_evidence.iter().enumerate() {
        let field = format!("required_evidence[{index}]");
        let name = required.kind.as_str();
        let resolved = kinds::resolve(name);
        let candidates: Vec<&EvidenceItem> = state
            .evidence
            .iter()
            .filter(|e| kinds::satisfies(&e.kind, &resolved))
            .collect();
        if matches!(resolved, RequiredKind::Declared(_)) && candidates.is_empty() {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "unknown_evidence_kind",
                format!("{field}.kind"),
                format!(
                    "`{name}` is not an evidence kind gatehouse knows ({}) and no attached \
                     document declares it; attach a document with `--kind {}` or correct the \
                     class",
                    kinds::known_names().join(", "),
                    kinds::normalize(name)
                ),
            ));
            continue;
        }
        let exception = ctx
            .usable_exceptions(|scope| {
                matches!(scope, ExceptionScope::Evidence { kind } if kinds::normalize(kind) == kinds::normalize(name))
            })
            .next();
        let live: Vec<&EvidenceItem> = candidates
            .iter()
            .copied()
            .filter(|e| !ctx.is_superseded(e))
            .collect();
        let trusted: Vec<&EvidenceItem> = live
            .iter()
            .copied()
            .filter(|e| distrust(ctx, e).is_empty())
            .collect();
        let Some(newest) = trusted.iter().copied().max_by_key(|e| e.attached_at) else {
            if let Some(x) = exception {
                reasons.push(ctx.reason(
                    ReasonLevel::Info,
                    "evidence_excepted",
                    field,
                    format!(
                        "no usable `{name}` evidence; excepted by {} until {}",
                        x.id, x.expires_at
                    ),
                ));
            } else if live.is_empty() {
                reasons.push(ctx.reason(
                    ReasonLevel::Pending,
                    "evidence_missing",
                    field,
                    format!(
                        "no `{name}` evidence attached{}",
                        required
                            .description
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                ));
            } else {
                reasons.push(with_evidence(
                    ctx.reason(
                        ReasonLevel::Block,
                        "evidence_untrustworthy",
                        field,
                        format!(
                            "`{name}` evidence is attached but none of it can be relied on \
                             (see the reasons for each item)"
                        ),
                    ),
                    &live,
                ));
            }
            continue;
        };
        let age = ctx.now.duration_since(newest.attached_at);
        let max_age = required.max_age.as_ref().map(|a| a.value.to_signed());
        match max_age {
            Some(max) if age > max => {
                if let Some(x) = exception {
                    reasons.push(with_evidence(
                        ctx.reason(
                            ReasonLevel::Info,
                            "evidence_excepted",
                            format!("{field}.max_age"),
                            format!(
                                "newest `{name}` evidence is {} old (max {}); excepted by {} \
                                 until {}",
                                human(age),
                                human(max),
                                x.id,
                                x.expires_at
                            ),
                        ),
                        &[newest],
                    ));
                } else {
                    reasons.push(with_evidence(
                        ctx.reason(
                            ReasonLevel::Block,
                            "evidence_stale",
                            format!("{field}.max_age"),
                            format!(
                                "newest `{name}` evidence {} was attached {} ago; the class \
                                 accepts at most {}",
                                newest.id,
                                human(age),
                                human(max)
                            ),
                        ),
                        &[newest],
                    ));
                }
            }
            _ => reasons.push(with_evidence(
                ctx.reason(
                    ReasonLevel::Info,
                    "evidence_present",
                    field,
                    format!(
                        "`{name}` evidence {} attached {} ago{}",
                        newest.id,
                        human(age),
                        max_age
                            .map(|m| format!(" (max {})", human(m)))
                            .unwrap_or_default()
                    ),
                ),
                &[newest],
            )),
        }
    }

    // Checks of every attached item, required or not: anything attached that cannot be read
    // or trusted is a problem in its own right.
    let mut first_by_digest: HashMap<&str, &str> = HashMap::new();
    for item in &state.evidence {
        if let Some(target) = &item.supersedes
            && state.evidence_item(target).is_none()
        {
            reasons.push(with_evidence(
                ctx.reason(
                    ReasonLevel::Warning,
                    "evidence_supersedes_unknown",
                    "gate.evidence.supersedes",
                    format!(
                        "evidence {} supersedes {target}, which does not exist",
                        item.id
                    ),
                ),
                &[item],
            ));
        }
        if ctx.is_superseded(item) {
            continue;
        }
        if let Some(first) = first_by_digest.get(item.sha256.as_str()) {
            reasons.push(with_evidence(
                ctx.reason(
                    ReasonLevel::Info,
                    "evidence_duplicate",
                    "gate.evidence.duplicate",
                    format!(
                        "evidence {} has the same content as {first}; counted once",
                        item.id
                    ),
                ),
                &[item],
            ));
            continue;
        }
        first_by_digest.insert(item.sha256.as_str(), item.id.as_str());
        for (level, code, message) in distrust(ctx, item) {
            reasons.push(with_evidence(
                ctx.reason(level, code, "gate.evidence.integrity", message),
                &[item],
            ));
        }
    }
    exception_reasons(ctx, &mut reasons, |scope| {
        matches!(scope, ExceptionScope::Evidence { .. })
    });
    reasons
}

// ---------------------------------------------------------------------------------------------
// Risks

fn risks(ctx: &Ctx<'_>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let state = ctx.state;
    if state.risks.is_empty() {
        reasons.push(ctx.reason(
            ReasonLevel::Info,
            "no_risks",
            "delegated_risk",
            "the risk register of this release is empty".into(),
        ));
        return reasons;
    }
    let delegated = ctx.class.delegated_risk.as_ref();
    let Some(model) = ctx.risk_model else {
        reasons.push(ctx.reason(
            ReasonLevel::Block,
            "risk_model_missing",
            "delegated_risk.risk_model",
            format!(
                "the release has {} risk(s) but no risk model to score them with",
                state.risks.len()
            ),
        ));
        return reasons;
    };
    if let Some(named) = delegated.and_then(|d| d.risk_model.as_ref())
        && named.value != model.id.value
    {
        reasons.push(ctx.reason(
            ReasonLevel::Block,
            "risk_model_mismatch",
            "delegated_risk.risk_model",
            format!(
                "the class scores risks with `{}` but `{}` was supplied",
                named.value, model.id.value
            ),
        ));
        return reasons;
    }
    for risk in &state.risks {
        if risk.owner.trim().is_empty() && risk.status != RiskStatus::Closed {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "risk_owner_missing",
                "gate.risk.owner",
                format!("risk {} ({}) has no owner", risk.id, risk.title),
            ));
        }
        let likelihood = model
            .likelihood
            .iter()
            .find(|l| l.value.value == risk.likelihood);
        let impact = model.impact.iter().find(|l| l.value.value == risk.impact);
        let (Some(likelihood), Some(impact)) = (likelihood, impact) else {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "risk_unscorable",
                "delegated_risk.risk_model",
                format!(
                    "risk {} has likelihood {} and impact {}, which are not both on the scales \
                     of risk model `{}`",
                    risk.id, risk.likelihood, risk.impact, model.id.value
                ),
            ));
            continue;
        };
        let score = risk.likelihood.saturating_mul(risk.impact);
        let band = risk_model_band(model, score).unwrap_or("no band");
        let scored = format!(
            "risk {} ({}) scores {score} ({band}: likelihood {} × impact {}), {}",
            risk.id,
            risk.title,
            likelihood.label,
            impact.label,
            risk.status.as_str()
        );
        let Some(delegated) = delegated else {
            reasons.push(ctx.reason(ReasonLevel::Info, "risk_scored", "delegated_risk", scored));
            continue;
        };
        let max = delegated.max_score.value;
        if risk.status != RiskStatus::Open || score <= max {
            reasons.push(ctx.reason(
                ReasonLevel::Info,
                "risk_within_delegation",
                "delegated_risk.max_score",
                format!("{scored}; within the delegated maximum {max} or not open"),
            ));
            continue;
        }
        let role = delegated.escalate_to.as_str();
        let target = ApprovalTarget::RiskEscalation {
            risk: risk.id.clone(),
        };
        let decisions: Vec<_> = state
            .approvals
            .iter()
            .filter(|a| {
                a.target == target && a.revision >= risk.revision && a.revision <= ctx.revision
            })
            .filter(|a| {
                a.role == role
                    && a.approver.kind == PrincipalKind::Person
                    && a.approver.id != state.release.submitter
            })
            .collect();
        if let Some(reject) = decisions
            .iter()
            .find(|a| a.decision == ApprovalDecision::Reject)
        {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "risk_escalation_rejected",
                "delegated_risk.escalate_to",
                format!(
                    "{scored}; {} ({role}) rejected accepting it at {}: {}",
                    reject.approver.display, reject.at, reject.comment
                ),
            ));
        } else if let Some(accept) = decisions.first() {
            reasons.push(ctx.reason(
                ReasonLevel::Info,
                "risk_escalated",
                "delegated_risk.escalate_to",
                format!(
                    "{scored}; above the delegated maximum {max}, accepted by {} ({role}) at {}",
                    accept.approver.display, accept.at
                ),
            ));
        } else {
            let stale = state
                .approvals
                .iter()
                .any(|a| a.target == target && a.revision < risk.revision);
            reasons.push(ctx.reason(
                ReasonLevel::Pending,
                "risk_escalation_required",
                "delegated_risk.escalate_to",
                format!(
                    "{scored}; above the delegated maximum {max}, it needs an escalation \
                     approval by role `{role}`{}",
                    if stale {
                        " (an earlier one predates the risk's last change)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    reasons
}

// ---------------------------------------------------------------------------------------------
// Approvals

fn approvals(ctx: &Ctx<'_>) -> (Vec<Reason>, Option<Timestamp>) {
    let mut reasons = Vec::new();
    let state = ctx.state;
    let submitter = &state.release.submitter;
    let path = &ctx.class.approver_path;
    if path.is_empty() {
        reasons.push(ctx.reason(
            ReasonLevel::Block,
            "approver_path_empty",
            "approver_path",
            "the class has no approver path; gatehouse never implies an approval".into(),
        ));
    }

    // Every recorded decision must have been allowed; one that was not signals records written
    // around the domain rules, so it blocks rather than being quietly skipped.
    let mut slots_by_identity: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for approval in &state.approvals {
        let who = &approval.approver;
        let problem = if who.id == *submitter {
            Some(format!(
                "{} submitted the release and cannot approve it",
                who.id
            ))
        } else if who.kind != PrincipalKind::Person {
            Some(format!(
                "{} is not a person; a pipeline cannot approve",
                who.id
            ))
        } else if approval.revision > ctx.revision {
            // Nobody can have reviewed a revision that does not exist yet; such a record would
            // otherwise stay fresh through every later change.
            Some(format!(
                "it claims revision {}, but the release is at revision {}",
                approval.revision, ctx.revision
            ))
        } else {
            match &approval.target {
                ApprovalTarget::Step { index } => match path.get(*index) {
                    None => Some(format!(
                        "it is for step {} but the approver path has {} step(s)",
                        index + 1,
                        path.len()
                    )),
                    Some(step) if step.role.value != approval.role => Some(format!(
                        "it was given in role `{}` but step {} needs `{}`",
                        approval.role,
                        index + 1,
                        step.role.value
                    )),
                    Some(_) => None,
                },
                ApprovalTarget::RiskEscalation { risk } => {
                    match (&ctx.class.delegated_risk, state.risk(risk)) {
                        (None, _) => Some("the class has no delegated risk threshold".into()),
                        (_, None) => Some(format!("risk {risk} does not exist")),
                        (Some(d), Some(_)) if d.escalate_to.value != approval.role => {
                            Some(format!(
                                "it was given in role `{}` but escalations go to `{}`",
                                approval.role, d.escalate_to.value
                            ))
                        }
                        _ => None,
                    }
                }
            }
        };
        if let Some(problem) = problem {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "approval_invalid",
                "gate.separation_of_duties",
                format!(
                    "approval {} by {} does not count: {problem}",
                    approval.id, who.display
                ),
            ));
            continue;
        }
        let fresh = match &approval.target {
            ApprovalTarget::Step { .. } => approval.revision == ctx.revision,
            ApprovalTarget::RiskEscalation { risk } => state
                .risk(risk)
                .is_some_and(|r| approval.revision >= r.revision),
        };
        if fresh && approval.decision == ApprovalDecision::Approve {
            slots_by_identity
                .entry(who.id.as_str())
                .or_default()
                .insert(slot_name(&approval.target));
        }
    }
    for (identity, slots) in &slots_by_identity {
        if slots.len() > 1 {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "approval_slots_shared",
                "gate.separation_of_duties",
                format!(
                    "{identity} fills {} approval slots ({}); one identity may fill one",
                    slots.len(),
                    slots.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }

    for (index, step) in path.iter().enumerate() {
        let field = format!("approver_path[{index}]");
        let quorum = step.quorum.value;
        let role = step.role.as_str();
        if quorum == 0 {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "quorum_zero",
                format!("{field}.quorum"),
                format!(
                    "step {} ({role}) has quorum 0, which would be an implied approval",
                    index + 1
                ),
            ));
            continue;
        }
        let target = ApprovalTarget::Step { index };
        let valid: Vec<_> = state
            .approvals
            .iter()
            .filter(|a| {
                a.target == target
                    && a.role == role
                    && a.approver.id != *submitter
                    && a.approver.kind == PrincipalKind::Person
            })
            .collect();
        let (fresh, stale): (Vec<_>, Vec<_>) =
            valid.into_iter().partition(|a| a.revision == ctx.revision);
        if let Some(reject) = fresh
            .iter()
            .find(|a| a.decision == ApprovalDecision::Reject)
        {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "approval_rejected",
                field,
                format!(
                    "step {} ({role}): rejected by {} at {}: {}",
                    index + 1,
                    reject.approver.display,
                    reject.at,
                    reject.comment
                ),
            ));
            continue;
        }
        // Quorum counts distinct identities; names are only for the message.
        let mut approvers: Vec<&Actor> = fresh
            .iter()
            .filter(|a| a.decision == ApprovalDecision::Approve)
            .map(|a| &a.approver)
            .collect();
        approvers.sort_by(|a, b| a.id.cmp(&b.id));
        approvers.dedup_by(|a, b| a.id == b.id);
        let approvers: Vec<&str> = approvers.iter().map(|a| a.display.as_str()).collect();
        let have = u32::try_from(approvers.len()).unwrap_or(u32::MAX);
        if have >= quorum {
            reasons.push(ctx.reason(
                ReasonLevel::Info,
                "step_approved",
                field,
                format!(
                    "step {} ({role}): approved by {} (quorum {quorum})",
                    index + 1,
                    approvers.join(", ")
                ),
            ));
            continue;
        }
        let mut message = format!(
            "step {} ({role}): {have} of {quorum} approval(s){}; awaiting {} more",
            index + 1,
            if approvers.is_empty() {
                String::new()
            } else {
                format!(" ({})", approvers.join(", "))
            },
            quorum - have
        );
        if !stale.is_empty() {
            let oldest = stale.iter().map(|a| a.revision).min().unwrap_or(0);
            let stale_by: Vec<&str> = stale.iter().map(|a| a.approver.display.as_str()).collect();
            message.push_str(&format!(
                "; approval by {} is stale because {}",
                stale_by.join(", "),
                state.changes_after(oldest).join(", ")
            ));
        }
        let changed: Vec<&EvidenceItem> = stale
            .iter()
            .map(|a| a.revision)
            .min()
            .map(|oldest| {
                state
                    .evidence
                    .iter()
                    .filter(|e| e.revision > oldest)
                    .collect()
            })
            .unwrap_or_default();
        let code = if stale.is_empty() {
            "approval_pending"
        } else {
            "approval_stale"
        };
        reasons.push(with_evidence(
            ctx.reason(ReasonLevel::Pending, code, field, message),
            &changed,
        ));
    }

    let retrospective_due = emergency(ctx, &mut reasons);
    bypass_reasons(ctx, &mut reasons);
    (reasons, retrospective_due)
}

fn slot_name(target: &ApprovalTarget) -> String {
    match target {
        ApprovalTarget::Step { index } => format!("approver step {}", index + 1),
        ApprovalTarget::RiskEscalation { risk } => format!("escalation of risk {risk}"),
    }
}

/// When the retrospective of an emergency release is due (`None` for other classes), with
/// its reasons.
pub(super) fn retrospective_due(
    class: &ReleaseClass,
    state: &ReleaseGateState,
) -> Option<Timestamp> {
    let policy = class.emergency.as_ref()?;
    let from = state.deployed_at.unwrap_or(state.release.created_at);
    Some(plus(from, policy.retrospective_within.value.to_signed()))
}

fn emergency(ctx: &Ctx<'_>, reasons: &mut Vec<Reason>) -> Option<Timestamp> {
    let policy = ctx.class.emergency.as_ref()?;
    let due = retrospective_due(ctx.class, ctx.state)?;
    let field = "emergency.retrospective_within";
    let state = ctx.state;
    match &state.retrospective {
        Some(retro) => {
            let role_ok = policy
                .retrospective_role
                .as_ref()
                .is_none_or(|r| r.value == retro.role);
            if retro.reviewer.id == state.release.submitter
                || retro.reviewer.kind != PrincipalKind::Person
                || !role_ok
            {
                reasons.push(ctx.reason(
                    ReasonLevel::Block,
                    "retrospective_invalid",
                    "emergency.retrospective_role",
                    format!(
                        "the retrospective by {} ({}) does not count: it needs a person other \
                         than the submitter{}",
                        retro.reviewer.display,
                        retro.role,
                        policy
                            .retrospective_role
                            .as_ref()
                            .map(|r| format!(" holding role `{}`", r.value))
                            .unwrap_or_default()
                    ),
                ));
            } else {
                reasons.push(ctx.reason(
                    if retro.completed_at > due {
                        ReasonLevel::Warning
                    } else {
                        ReasonLevel::Info
                    },
                    "retrospective_done",
                    field,
                    format!(
                        "emergency retrospective completed by {} at {} (due {due})",
                        retro.reviewer.display, retro.completed_at
                    ),
                ));
            }
        }
        None if ctx.now > due => reasons.push(ctx.reason(
            ReasonLevel::Block,
            "retrospective_overdue",
            field,
            format!(
                "emergency release: the retrospective review was due at {due} and is {} overdue",
                human(ctx.now.duration_since(due))
            ),
        )),
        None => reasons.push(ctx.reason(
            ReasonLevel::Info,
            "retrospective_due",
            field,
            format!(
                "emergency release on the shortened path: a retrospective review{} is due by \
                 {due}",
                policy
                    .retrospective_role
                    .as_ref()
                    .map(|r| format!(" by role `{}`", r.value))
                    .unwrap_or_default()
            ),
        )),
    }
    Some(due)
}

/// The bypass in force: the latest valid one granted for the current revision.
fn active_bypass<'a>(ctx: &Ctx<'a>) -> Option<&'a super::model::Bypass> {
    ctx.state
        .bypasses
        .iter()
        .filter(|b| b.revision == ctx.revision && bypass_problem(ctx, b).is_none())
        .max_by_key(|b| b.at)
}

fn bypass_problem(ctx: &Ctx<'_>, bypass: &super::model::Bypass) -> Option<String> {
    if bypass.by.id == ctx.state.release.submitter {
        Some("the submitter cannot bypass the gate for their own release".into())
    } else if bypass.by.kind != PrincipalKind::Person {
        Some(format!("{} is not a person", bypass.by.id))
    } else if bypass.reason.trim().is_empty() {
        Some("it gives no reason".into())
    } else {
        None
    }
}

fn bypass_reasons(ctx: &Ctx<'_>, reasons: &mut Vec<Reason>) {
    for bypass in &ctx.state.bypasses {
        if let Some(problem) = bypass_problem(ctx, bypass) {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "bypass_invalid",
                "gate.bypass",
                format!("bypass {} does not count: {problem}", bypass.id),
            ));
        } else if bypass.revision == ctx.revision {
            reasons.push(ctx.reason(
                ReasonLevel::Warning,
                "bypassed",
                "gate.bypass",
                format!(
                    "the gate ({}) was bypassed by {} at {}: {}",
                    bypass.overridden, bypass.by.display, bypass.at, bypass.reason
                ),
            ));
        } else {
            reasons.push(ctx.reason(
                ReasonLevel::Info,
                "bypass_superseded",
                "gate.bypass",
                format!(
                    "bypass {} by {} was for revision {}; the release has changed since \
                     (revision {}), so it no longer applies",
                    bypass.id, bypass.by.display, bypass.revision, ctx.revision
                ),
            ));
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
