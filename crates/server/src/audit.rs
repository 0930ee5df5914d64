//! Appending to the audit log from request handlers.
//!
//! Every state change and every denied attempt goes through [`append`], so the audit log sees
//! the same actor, action and target names whichever route produced them.

use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::store::StoreError;

use crate::state::AppState;

/// Actor recorded for requests that presented no valid credential.
pub const ANONYMOUS: &str = "anonymous";

/// Appends one entry stamped with the server clock; returns its sequence number.
pub async fn append(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    outcome: AuditOutcome,
    detail: serde_json::Value,
) -> Result<i64, StoreError> {
    let record = AuditRecord {
        at: state.clock().now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome,
        detail,
    };
    let seq = state.store().append_audit(&record).await?;
    if let (Some(log), Ok(size)) = (state.audit_log(), u64::try_from(seq)) {
        log.after_append(size, record.at).await;
    }
    Ok(seq)
}

/// [`append`] for paths that must answer the client whatever happens to the audit write
/// (denials): a failure is logged loudly instead of replacing the client's answer.
pub async fn append_or_log(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    outcome: AuditOutcome,
    detail: serde_json::Value,
) {
    if let Err(err) = append(state, actor, action, target, outcome, detail).await {
        tracing::error!(error = %err, action, target, "cannot append to the audit log");
    }
}
