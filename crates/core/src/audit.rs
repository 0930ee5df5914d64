//! Audit records: who did what to which object, and how it ended.
//!
//! Every state change and every denied attempt is appended as an [`AuditRecord`]. The store keeps
//! them in an append-only table and numbers them with a gap-free sequence starting at 1, so the
//! tamper-evident log (a Merkle tree over the entries in sequence order) can be built on top
//! without renumbering.

use serde::{Deserialize, Serialize};

/// How the audited attempt ended, and one audited event as handed to the store. Both are the
/// ledger's own types: the store hashes exactly what the domain records, through one canonical
/// encoding (`gatehouse_ledger::entry`), so there is no second definition to keep in step.
/// `detail` holds action-specific facts and never secrets.
pub use gatehouse_ledger::entry::{AuditOutcome, AuditRecord, UnknownAuditOutcome};

/// An audit record as stored, with its position in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log: 1 for the first entry, no gaps.
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for outcome in [
            AuditOutcome::Succeeded,
            AuditOutcome::Denied,
            AuditOutcome::Failed,
        ] {
            assert_eq!(outcome.as_str().parse::<AuditOutcome>().unwrap(), outcome);
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::Value::String(outcome.as_str().into())
            );
        }
        assert!("ok".parse::<AuditOutcome>().is_err());
    }
}
