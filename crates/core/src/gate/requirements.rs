//! Gate category "requirements": each security requirement of the class is complete (with
//! evidence), deferred with an approving role's consent and a due date, or excepted by a
//! valid exception.

use super::evaluate::{Ctx, ExceptionStanding, exception_reasons, with_evidence};
use super::model::{EvidenceFacts, ExceptionScope, PrincipalKind, RequirementStatus};
use super::verdict::{Reason, ReasonLevel};

pub(super) fn assess(ctx: &Ctx<'_>) -> Vec<Reason> {
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
