//! Gate category "approvals": the class's approver path, step by step with its quorum, by
//! people other than the submitter, each filling one slot, at the revision under review; the
//! emergency retrospective; and bypasses.

use std::collections::{BTreeSet, HashMap};

use gatehouse_pack::model::ReleaseClass;
use jiff::Timestamp;

use super::evaluate::{Ctx, human, plus, with_evidence};
use super::model::{
    Actor, ApprovalDecision, ApprovalTarget, Bypass, EvidenceItem, PrincipalKind, ReleaseGateState,
};
use super::verdict::{Reason, ReasonLevel};

pub(super) fn assess(ctx: &Ctx<'_>) -> (Vec<Reason>, Option<Timestamp>) {
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
pub(super) fn active_bypass<'a>(ctx: &Ctx<'a>) -> Option<&'a Bypass> {
    ctx.state
        .bypasses
        .iter()
        .filter(|b| b.revision == ctx.revision && bypass_problem(ctx, b).is_none())
        .max_by_key(|b| b.at)
}

fn bypass_problem(ctx: &Ctx<'_>, bypass: &Bypass) -> Option<String> {
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
