//! Decisions on state changes: may this principal approve, may this bypass be recorded, is
//! this evidence new? Each returns the record to store or a typed error naming the rule.
//!
//! The server calls these before writing, so the rules hold in the domain and not only in HTTP
//! handlers; [`super::evaluate`] re-checks every stored record anyway and blocks on one that
//! breaks a rule (records written around these functions must not count).

use gatehouse_evidence::EvidenceKind;
use gatehouse_pack::model::{ReleaseClass, RiskModel};
use jiff::Timestamp;

use crate::identity::Principal;

use super::evaluate::{approving_roles, exception_problem};
use super::model::{
    Actor, Approval, ApprovalDecision, ApprovalTarget, Bypass, EvidenceFacts, EvidenceItem,
    Exception, ExceptionScope, PrincipalKind, ReleaseGateState, RequirementRecord,
    RequirementStatus, Revision, Risk, RiskStatus,
};
use super::verdict::{GateDecision, GateVerdict};

/// Longest accepted approval comment, bypass reason or justification, in bytes.
pub const MAX_COMMENT_LEN: usize = 4096;
/// Shortest accepted bypass reason, in characters: "ok" is not a reason.
pub const MIN_BYPASS_REASON_CHARS: usize = 10;

/// What an approver asks to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub target: ApprovalTarget,
    pub decision: ApprovalDecision,
    pub comment: String,
    /// The state revision the approver reviewed (shown to them with the release).
    pub seen_revision: Revision,
}

/// Why an approval may not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("{approver} submitted the release and cannot approve it (separation of duties)")]
    Submitter { approver: String },
    #[error("{approver} is not a person; a pipeline cannot approve a release")]
    NotAPerson { approver: String },
    #[error("{approver} does not hold role `{role}`, which {slot} requires")]
    MissingRole {
        approver: String,
        role: String,
        slot: String,
    },
    #[error("class `{class}` has {steps} approver step(s); step {step} does not exist")]
    NoSuchStep {
        class: String,
        steps: usize,
        step: usize,
    },
    #[error("step {step} cannot be approved before step {previous} is approved")]
    PreviousStepIncomplete { step: usize, previous: usize },
    #[error(
        "risk(s) {} need an escalation approval before the release can be approved",
        .risks.join(", ")
    )]
    EscalationOutstanding { risks: Vec<String> },
    #[error("risk {risk} does not exist")]
    UnknownRisk { risk: String },
    #[error("class `{class}` has no delegated risk threshold, so nothing is escalated")]
    NoDelegatedRisk { class: String },
    #[error("risk {risk} is within the delegated threshold or not open; it needs no escalation")]
    EscalationNotNeeded { risk: String },
    #[error("{approver} already fills {slot}; one identity may fill one approval slot")]
    SlotTaken { approver: String, slot: String },
    #[error("{approver} already decided {slot} at this revision")]
    AlreadyDecided { approver: String, slot: String },
    #[error(
        "you reviewed revision {seen} but the release is at revision {current} ({}); review it again",
        .changes.join("; ")
    )]
    StaleReview {
        seen: Revision,
        current: Revision,
        changes: Vec<String>,
    },
    #[error("a rejection needs a comment saying why")]
    CommentRequired,
    #[error("the comment is {len} bytes; at most {MAX_COMMENT_LEN} are accepted")]
    CommentTooLong { len: usize },
}

/// Checks whether `approver` (classified as `kind`) may record `request` on `state`.
pub fn can_approve(
    class: &ReleaseClass,
    risk_model: Option<&RiskModel>,
    state: &ReleaseGateState,
    approver: &Principal,
    kind: PrincipalKind,
    request: &ApprovalRequest,
) -> Result<(), ApprovalError> {
    required_role(class, risk_model, state, approver, kind, request).map(|_| ())
}

/// Vets `request` and returns the approval to store, with id `id`, recorded at `at`.
#[allow(clippy::too_many_arguments)]
pub fn record_approval(
    class: &ReleaseClass,
    risk_model: Option<&RiskModel>,
    state: &ReleaseGateState,
    approver: &Principal,
    kind: PrincipalKind,
    request: &ApprovalRequest,
    id: String,
    at: Timestamp,
) -> Result<Approval, ApprovalError> {
    let role = required_role(class, risk_model, state, approver, kind, request)?;
    Ok(Approval {
        id,
        target: request.target.clone(),
        approver: Actor {
            id: approver.id.clone(),
            display: approver.display.clone(),
            kind,
        },
        role,
        decision: request.decision,
        comment: request.comment.clone(),
        at,
        revision: request.seen_revision,
    })
}

fn slot_name(target: &ApprovalTarget) -> String {
    match target {
        ApprovalTarget::Step { index } => format!("approver step {}", index + 1),
        ApprovalTarget::RiskEscalation { risk } => format!("the escalation of risk {risk}"),
    }
}

/// The checks of [`can_approve`]; returns the role the approval is given in.
fn required_role(
    class: &ReleaseClass,
    risk_model: Option<&RiskModel>,
    state: &ReleaseGateState,
    approver: &Principal,
    kind: PrincipalKind,
    request: &ApprovalRequest,
) -> Result<String, ApprovalError> {
    let who = || approver.id.clone();
    if request.comment.len() > MAX_COMMENT_LEN {
        return Err(ApprovalError::CommentTooLong {
            len: request.comment.len(),
        });
    }
    if request.decision == ApprovalDecision::Reject && request.comment.trim().is_empty() {
        return Err(ApprovalError::CommentRequired);
    }
    if approver.id == state.release.submitter {
        return Err(ApprovalError::Submitter { approver: who() });
    }
    if kind != PrincipalKind::Person {
        return Err(ApprovalError::NotAPerson { approver: who() });
    }
    let slot = slot_name(&request.target);
    let role =
        match &request.target {
            ApprovalTarget::Step { index } => class
                .approver_path
                .get(*index)
                .map(|step| step.role.value.clone())
                .ok_or(ApprovalError::NoSuchStep {
                    class: class.id.value.clone(),
                    steps: class.approver_path.len(),
                    step: index + 1,
                })?,
            ApprovalTarget::RiskEscalation { risk } => {
                let delegated = class.delegated_risk.as_ref().ok_or_else(|| {
                    ApprovalError::NoDelegatedRisk {
                        class: class.id.value.clone(),
                    }
                })?;
                if state.risk(risk).is_none() {
                    return Err(ApprovalError::UnknownRisk { risk: risk.clone() });
                }
                if !needs_escalation(class, risk_model, state, risk) {
                    return Err(ApprovalError::EscalationNotNeeded { risk: risk.clone() });
                }
                delegated.escalate_to.value.clone()
            }
        };
    if !approver.has_role(&role) {
        return Err(ApprovalError::MissingRole {
            approver: who(),
            role,
            slot,
        });
    }
    let current = match &request.target {
        ApprovalTarget::Step { .. } => state.revision(),
        ApprovalTarget::RiskEscalation { risk } => {
            state.risk(risk).map(|r| r.revision).unwrap_or(0)
        }
    };
    if request.seen_revision < current {
        return Err(ApprovalError::StaleReview {
            seen: request.seen_revision,
            current,
            changes: state.changes_after(request.seen_revision),
        });
    }
    if request.seen_revision > state.revision() {
        // A revision from the future cannot have been reviewed; treat it as a stale view.
        return Err(ApprovalError::StaleReview {
            seen: request.seen_revision,
            current: state.revision(),
            changes: vec!["the reviewed revision does not exist yet".into()],
        });
    }
    let fresh = |a: &&Approval| match &a.target {
        ApprovalTarget::Step { .. } => a.revision == state.revision(),
        ApprovalTarget::RiskEscalation { risk } => {
            state.risk(risk).is_some_and(|r| a.revision >= r.revision)
        }
    };
    for existing in state
        .approvals
        .iter()
        .filter(fresh)
        .filter(|a| a.approver.id == approver.id)
    {
        if existing.target == request.target {
            return Err(ApprovalError::AlreadyDecided {
                approver: who(),
                slot,
            });
        }
        if existing.decision == ApprovalDecision::Approve
            && request.decision == ApprovalDecision::Approve
        {
            return Err(ApprovalError::SlotTaken {
                approver: who(),
                slot: slot_name(&existing.target),
            });
        }
    }
    if request.decision == ApprovalDecision::Approve
        && let ApprovalTarget::Step { index } = request.target
    {
        let outstanding: Vec<String> = state
            .risks
            .iter()
            .filter(|r| needs_escalation(class, risk_model, state, &r.id))
            .filter(|r| !escalation_accepted(class, state, &r.id))
            .map(|r| r.id.clone())
            .collect();
        if !outstanding.is_empty() {
            return Err(ApprovalError::EscalationOutstanding { risks: outstanding });
        }
        if index > 0 && !step_approved(class, state, index - 1) {
            return Err(ApprovalError::PreviousStepIncomplete {
                step: index + 1,
                previous: index,
            });
        }
    }
    Ok(role)
}

/// Whether an open risk scores above the class's delegated maximum. A risk that cannot be
/// scored (no model, value off the scale) needs escalation: fail closed.
fn needs_escalation(
    class: &ReleaseClass,
    risk_model: Option<&RiskModel>,
    state: &ReleaseGateState,
    risk: &str,
) -> bool {
    let (Some(delegated), Some(risk)) = (&class.delegated_risk, state.risk(risk)) else {
        return false;
    };
    if risk.status != RiskStatus::Open {
        return false;
    }
    let on_scales = risk_model.is_some_and(|m| {
        m.likelihood
            .iter()
            .any(|l| l.value.value == risk.likelihood)
            && m.impact.iter().any(|l| l.value.value == risk.impact)
    });
    !on_scales || risk.likelihood.saturating_mul(risk.impact) > delegated.max_score.value
}

fn escalation_accepted(class: &ReleaseClass, state: &ReleaseGateState, risk: &str) -> bool {
    let (Some(delegated), Some(r)) = (&class.delegated_risk, state.risk(risk)) else {
        return false;
    };
    let target = ApprovalTarget::RiskEscalation {
        risk: risk.to_owned(),
    };
    let decisions: Vec<&Approval> = state
        .approvals
        .iter()
        .filter(|a| {
            a.target == target
                && a.revision >= r.revision
                && a.revision <= state.revision()
                && a.role == delegated.escalate_to.value
                && a.approver.kind == PrincipalKind::Person
                && a.approver.id != state.release.submitter
        })
        .collect();
    decisions
        .iter()
        .any(|a| a.decision == ApprovalDecision::Approve)
        && !decisions
            .iter()
            .any(|a| a.decision == ApprovalDecision::Reject)
}

fn step_approved(class: &ReleaseClass, state: &ReleaseGateState, index: usize) -> bool {
    let Some(step) = class.approver_path.get(index) else {
        return false;
    };
    let target = ApprovalTarget::Step { index };
    let revision = state.revision();
    let fresh: Vec<&Approval> = state
        .approvals
        .iter()
        .filter(|a| {
            a.target == target
                && a.revision == revision
                && a.role == step.role.value
                && a.approver.kind == PrincipalKind::Person
                && a.approver.id != state.release.submitter
        })
        .collect();
    if fresh.iter().any(|a| a.decision == ApprovalDecision::Reject) {
        return false;
    }
    let mut approvers: Vec<&str> = fresh
        .iter()
        .filter(|a| a.decision == ApprovalDecision::Approve)
        .map(|a| a.approver.id.as_str())
        .collect();
    approvers.sort_unstable();
    approvers.dedup();
    let quorum = step.quorum.value;
    quorum > 0 && u32::try_from(approvers.len()).unwrap_or(u32::MAX) >= quorum
}

// ---------------------------------------------------------------------------------------------
// Bypass

/// Why a bypass may not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BypassError {
    #[error("{principal} lacks the gate-bypass permission")]
    PermissionDenied { principal: String },
    #[error("{principal} is not a person; a pipeline cannot bypass the gate")]
    NotAPerson { principal: String },
    #[error("{principal} submitted the release and cannot bypass its gate")]
    Submitter { principal: String },
    #[error(
        "a bypass needs a reason of at least {MIN_BYPASS_REASON_CHARS} characters and at most \
         {MAX_COMMENT_LEN} bytes"
    )]
    ReasonRequired,
    #[error("the gate passes; there is nothing to bypass")]
    NothingToBypass,
    #[error(
        "the verdict shown was for revision {verdict} but the release is at revision {current}; \
         check the gate again before bypassing it"
    )]
    StaleVerdict {
        verdict: Revision,
        current: Revision,
    },
}

/// Vets a bypass of `verdict` (the gate's answer the principal saw) and returns the record to
/// store and count. `holds_bypass_permission` comes from the permission matrix: bypassing is
/// its own permission, not implied by approving.
#[allow(clippy::too_many_arguments)]
pub fn record_bypass(
    state: &ReleaseGateState,
    principal: &Principal,
    kind: PrincipalKind,
    holds_bypass_permission: bool,
    reason: &str,
    verdict: &GateVerdict,
    id: String,
    at: Timestamp,
) -> Result<Bypass, BypassError> {
    let who = || principal.id.clone();
    if !holds_bypass_permission {
        return Err(BypassError::PermissionDenied { principal: who() });
    }
    if kind != PrincipalKind::Person {
        return Err(BypassError::NotAPerson { principal: who() });
    }
    if principal.id == state.release.submitter {
        return Err(BypassError::Submitter { principal: who() });
    }
    let reason = reason.trim();
    if reason.chars().count() < MIN_BYPASS_REASON_CHARS || reason.len() > MAX_COMMENT_LEN {
        return Err(BypassError::ReasonRequired);
    }
    if verdict.revision != state.revision() {
        return Err(BypassError::StaleVerdict {
            verdict: verdict.revision,
            current: state.revision(),
        });
    }
    if verdict.decision == GateDecision::Pass {
        return Err(BypassError::NothingToBypass);
    }
    Ok(Bypass {
        id,
        by: Actor {
            id: principal.id.clone(),
            display: principal.display.clone(),
            kind,
        },
        reason: reason.to_owned(),
        at,
        revision: state.revision(),
        overridden: verdict.decision,
    })
}

// ---------------------------------------------------------------------------------------------
// Evidence

/// A parsed upload, before it becomes an [`EvidenceItem`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvidence {
    pub kind: EvidenceKind,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: u64,
    pub facts: EvidenceFacts,
    pub supersedes: Option<String>,
}

/// The outcome of attaching evidence.
#[derive(Debug, Clone, PartialEq)]
pub enum Attachment {
    /// A new item, at the next revision: store it (approvals given before it go stale).
    New(Box<EvidenceItem>),
    /// The same bytes were already attached as the same kind: nothing changes (idempotent
    /// re-upload), and approvals stay fresh.
    AlreadyAttached { existing: String },
}

/// Why evidence may not be attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    #[error("`{sha256}` is not a lower-case hex SHA-256 digest")]
    InvalidDigest { sha256: String },
    #[error("these bytes are already attached as {existing} of kind {kind}; one file has one kind")]
    OtherKind { existing: String, kind: String },
    #[error("evidence {target} does not exist, so it cannot be superseded")]
    SupersedesUnknown { target: String },
    #[error("evidence {target} is of kind {target_kind}; a {kind} upload cannot supersede it")]
    SupersedesOtherKind {
        target: String,
        target_kind: String,
        kind: String,
    },
    #[error("evidence {target} was already superseded by {by}")]
    AlreadySuperseded { target: String, by: String },
}

/// Decides what attaching `new` to `state` does.
pub fn attach_evidence(
    state: &ReleaseGateState,
    new: NewEvidence,
    id: String,
    attached_by: &str,
    at: Timestamp,
) -> Result<Attachment, AttachError> {
    if new.sha256.len() != 64
        || !new
            .sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(AttachError::InvalidDigest {
            sha256: crate::release::truncate_for_message(&new.sha256),
        });
    }
    if let Some(existing) = state.evidence.iter().find(|e| e.sha256 == new.sha256) {
        if existing.kind == new.kind {
            return Ok(Attachment::AlreadyAttached {
                existing: existing.id.clone(),
            });
        }
        return Err(AttachError::OtherKind {
            existing: existing.id.clone(),
            kind: existing.kind.to_string(),
        });
    }
    if let Some(target) = &new.supersedes {
        let Some(old) = state.evidence_item(target) else {
            return Err(AttachError::SupersedesUnknown {
                target: target.clone(),
            });
        };
        if old.kind != new.kind {
            return Err(AttachError::SupersedesOtherKind {
                target: target.clone(),
                target_kind: old.kind.to_string(),
                kind: new.kind.to_string(),
            });
        }
        if let Some(by) = state
            .evidence
            .iter()
            .find(|e| e.supersedes.as_deref() == Some(target))
        {
            return Err(AttachError::AlreadySuperseded {
                target: target.clone(),
                by: by.id.clone(),
            });
        }
    }
    Ok(Attachment::New(Box::new(EvidenceItem {
        id,
        kind: new.kind,
        sha256: new.sha256,
        size: new.size,
        attached_at: at,
        attached_by: attached_by.to_owned(),
        facts: new.facts,
        supersedes: new.supersedes,
        revision: state.next_revision(),
    })))
}

// ---------------------------------------------------------------------------------------------
// Exceptions

/// Why an exception may not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExceptionError {
    #[error("the exception is not valid: {why}")]
    Invalid { why: String },
    #[error("{approver} does not hold role `{role}`")]
    MissingRole { approver: String, role: String },
    #[error("class `{class}` has no {what} `{id}` to except")]
    UnknownScope {
        class: String,
        what: &'static str,
        id: String,
    },
    #[error("it already expired at {expires_at}")]
    AlreadyExpired { expires_at: Timestamp },
    #[error("the justification is empty or longer than {MAX_COMMENT_LEN} bytes")]
    Justification,
}

/// Vets an exception approved by `approver` (who must hold `exception.approver_role`) before
/// it is stored. The same rules make [`evaluate`](super::evaluate()) ignore an exception that
/// breaks them.
pub fn record_exception(
    class: &ReleaseClass,
    state: &ReleaseGateState,
    approver: &Principal,
    exception: Exception,
) -> Result<Exception, ExceptionError> {
    let justification = exception.justification.trim();
    if justification.is_empty() || exception.justification.len() > MAX_COMMENT_LEN {
        return Err(ExceptionError::Justification);
    }
    if !approver.has_role(&exception.approver_role) {
        return Err(ExceptionError::MissingRole {
            approver: approver.id.clone(),
            role: exception.approver_role.clone(),
        });
    }
    let unknown = |what: &'static str, id: &str| ExceptionError::UnknownScope {
        class: class.id.value.clone(),
        what,
        id: id.to_owned(),
    };
    match &exception.scope {
        ExceptionScope::Requirement { id } => {
            if !class
                .security_requirements
                .iter()
                .any(|r| r.id.value == *id)
            {
                return Err(unknown("security requirement", id));
            }
        }
        ExceptionScope::Evidence { kind } => {
            let wanted = super::kinds::normalize(kind);
            if !class
                .required_evidence
                .iter()
                .any(|r| super::kinds::normalize(&r.kind) == wanted)
            {
                return Err(unknown("required evidence kind", kind));
            }
        }
        ExceptionScope::Finding { .. } => {}
    }
    if exception.expires_at <= exception.approved_at {
        return Err(ExceptionError::AlreadyExpired {
            expires_at: exception.expires_at,
        });
    }
    let roles = approving_roles(class);
    if let Some(why) = exception_problem(class, &roles, &state.release.submitter, &exception) {
        return Err(ExceptionError::Invalid { why });
    }
    Ok(exception)
}

// ---------------------------------------------------------------------------------------------
// Requirement statuses and risks

/// Why a requirement status may not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("class `{class}` has no security requirement `{requirement}`")]
    UnknownRequirement { class: String, requirement: String },
    #[error("a complete requirement must point at evidence")]
    NoEvidence,
    #[error("evidence {evidence} is not attached to this release")]
    UnknownEvidence { evidence: String },
    #[error("{principal} submitted the release and cannot approve deferring its requirements")]
    Submitter { principal: String },
    #[error("{principal} is not a person; a pipeline cannot approve a deferral")]
    NotAPerson { principal: String },
    #[error(
        "a deferral is approved in a role that approves class `{class}` ({roles}) and that \
         {principal} holds; `{role}` is not one"
    )]
    RoleNotApproving {
        principal: String,
        role: String,
        class: String,
        roles: String,
    },
    #[error("the deferral is due at {due}, which is not after now ({at})")]
    DueInThePast { due: Timestamp, at: Timestamp },
    #[error("exception {exception} does not exist or does not cover requirement {requirement}")]
    ExceptionMismatch {
        exception: String,
        requirement: String,
    },
}

/// Vets a status for `requirement` recorded by `recorder` at `at` and returns the record to
/// store, at the next revision. A deferral is approved by the person recording it, so its
/// `approved_by` must be `recorder`, holding `role`.
pub fn record_requirement_status(
    class: &ReleaseClass,
    state: &ReleaseGateState,
    recorder: &Principal,
    kind: PrincipalKind,
    requirement: &str,
    status: RequirementStatus,
    at: Timestamp,
) -> Result<RequirementRecord, RequirementError> {
    if !class
        .security_requirements
        .iter()
        .any(|r| r.id.value == requirement)
    {
        return Err(RequirementError::UnknownRequirement {
            class: class.id.value.clone(),
            requirement: requirement.to_owned(),
        });
    }
    let status = match status {
        RequirementStatus::Complete { evidence } => {
            if evidence.is_empty() {
                return Err(RequirementError::NoEvidence);
            }
            if let Some(missing) = evidence.iter().find(|e| state.evidence_item(e).is_none()) {
                return Err(RequirementError::UnknownEvidence {
                    evidence: missing.clone(),
                });
            }
            RequirementStatus::Complete { evidence }
        }
        RequirementStatus::Deferred { role, due, .. } => {
            let principal = || recorder.id.clone();
            if recorder.id == state.release.submitter {
                return Err(RequirementError::Submitter {
                    principal: principal(),
                });
            }
            if kind != PrincipalKind::Person {
                return Err(RequirementError::NotAPerson {
                    principal: principal(),
                });
            }
            let roles = approving_roles(class);
            if !roles.contains(role.as_str()) || !recorder.has_role(&role) {
                return Err(RequirementError::RoleNotApproving {
                    principal: principal(),
                    role,
                    class: class.id.value.clone(),
                    roles: roles.iter().copied().collect::<Vec<_>>().join(", "),
                });
            }
            if due <= at {
                return Err(RequirementError::DueInThePast { due, at });
            }
            RequirementStatus::Deferred {
                approved_by: Actor {
                    id: recorder.id.clone(),
                    display: recorder.display.clone(),
                    kind,
                },
                role,
                due,
            }
        }
        RequirementStatus::Excepted { exception } => {
            let covers = state.exception(&exception).is_some_and(|x| {
                x.scope
                    == ExceptionScope::Requirement {
                        id: requirement.to_owned(),
                    }
            });
            if !covers {
                return Err(RequirementError::ExceptionMismatch {
                    exception,
                    requirement: requirement.to_owned(),
                });
            }
            RequirementStatus::Excepted { exception }
        }
    };
    Ok(RequirementRecord {
        requirement: requirement.to_owned(),
        status,
        recorded_by: recorder.id.clone(),
        at,
        revision: state.next_revision(),
    })
}

/// Why a risk may not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    #[error("risk {risk} needs a title and an owner")]
    Incomplete { risk: String },
    #[error(
        "risk {risk}: likelihood {likelihood} and impact {impact} must be values of risk model \
         `{model}`'s scales"
    )]
    OffScale {
        risk: String,
        likelihood: u32,
        impact: u32,
        model: String,
    },
}

/// Vets a new or changed risk against `risk_model` and returns it at the next revision (so
/// approvals given before the change go stale).
pub fn record_risk(
    risk_model: &RiskModel,
    state: &ReleaseGateState,
    mut risk: Risk,
) -> Result<Risk, RiskError> {
    if risk.title.trim().is_empty() || risk.owner.trim().is_empty() {
        return Err(RiskError::Incomplete { risk: risk.id });
    }
    let on_scale = risk_model
        .likelihood
        .iter()
        .any(|l| l.value.value == risk.likelihood)
        && risk_model
            .impact
            .iter()
            .any(|l| l.value.value == risk.impact);
    if !on_scale {
        return Err(RiskError::OffScale {
            risk: risk.id,
            likelihood: risk.likelihood,
            impact: risk.impact,
            model: risk_model.id.value.clone(),
        });
    }
    risk.revision = state.next_revision();
    Ok(risk)
}
