//! Gate category "context & ownership": the change is described, owned and tied to the
//! artifacts being deployed, so evidence and approvals can refer to something definite.

use super::evaluate::Ctx;
use super::verdict::{Reason, ReasonLevel};

pub(super) fn assess(ctx: &Ctx<'_>) -> Vec<Reason> {
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
