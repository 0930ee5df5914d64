//! Gate category "risks": every risk is scored with the class's risk model, and each open
//! risk above the delegated threshold carries an escalation approval by the named role.

use super::evaluate::{Ctx, risk_model_band};
use super::model::{ApprovalDecision, ApprovalTarget, PrincipalKind, RiskStatus};
use super::verdict::{Reason, ReasonLevel};

pub(super) fn assess(ctx: &Ctx<'_>) -> Vec<Reason> {
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
