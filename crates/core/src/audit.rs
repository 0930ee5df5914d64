//! Audit records: who did what to which object, and how it ended.
//!
//! Every state change and every denied attempt is appended as an [`AuditRecord`]. The store keeps
//! them in an append-only table and numbers them with a gap-free sequence starting at 1, so the
//! tamper-evident log (a Merkle tree over the entries in sequence order) can be built on top
//! without renumbering.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How the audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// The action was allowed and took effect.
    Succeeded,
    /// Authorization refused the action.
    Denied,
    /// The action was allowed but did not complete (invalid input, conflict, backend error).
    Failed,
}

impl AuditOutcome {
    /// The stable lowercase name used in storage and JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`AuditOutcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit outcome `{0}` (expected succeeded, denied or failed)")]
pub struct UnknownAuditOutcome(pub String);

impl FromStr for AuditOutcome {
    type Err = UnknownAuditOutcome;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "succeeded" => Ok(Self::Succeeded),
            "denied" => Ok(Self::Denied),
            "failed" => Ok(Self::Failed),
            other => Err(UnknownAuditOutcome(other.to_owned())),
        }
    }
}

/// One audited event, as handed to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: Timestamp,
    /// Principal id of whoever acted (`system` for background jobs).
    pub actor: String,
    /// Dotted verb naming the action, e.g. `release.create`, `token.revoke`.
    pub action: String,
    /// The object acted on, e.g. `release:0190…` or `token:4f2a…`.
    pub target: String,
    pub outcome: AuditOutcome,
    /// Action-specific facts (never secrets).
    pub detail: serde_json::Value,
}

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
