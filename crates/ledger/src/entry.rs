//! Audit entries, their canonical byte form, and the append state of the log.
//!
//! A tamper-evident log hashes bytes, not structs, so an entry must have exactly one byte
//! form: the same entry always encodes to the same bytes, on every machine and version. The
//! canonical form is compact JSON with a fixed field order (`seq` and `prev` first, so the
//! offline verifier can read them without parsing the rest), RFC 3339 UTC timestamps and
//! `detail` objects with keys sorted by their UTF-8 bytes. Each entry also carries `prev`, the
//! leaf hash of the entry before it, so that one changed, missing, inserted or moved entry
//! breaks a link next to it and the verifier can name it.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::merkle::{CompactRange, Hash, leaf_hash};
use crate::sth::{LogSigningKey, SignedTreeHead};

/// How the audited attempt ended (re-exported as `gatehouse_core::audit::AuditOutcome`: one
/// type, so the stored spelling and the hashed spelling cannot drift apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// The action was allowed and took effect.
    Succeeded,
    /// Authorization refused the action.
    Denied,
    /// The action was allowed but did not complete.
    Failed,
}

impl AuditOutcome {
    /// The canonical spelling, as written in the entry.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Succeeded => "succeeded",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failed => "failed",
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

impl std::str::FromStr for AuditOutcome {
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

/// One audited event before the ledger places it in the log (re-exported as
/// `gatehouse_core::audit::AuditRecord`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it happened (passed in: the ledger never reads the clock).
    pub at: Timestamp,
    /// Principal id of whoever acted, e.g. `user:alice` or `system`.
    pub actor: String,
    /// Dotted verb naming the action, e.g. `release.approve`.
    pub action: String,
    /// The object acted on, e.g. `release:0192…`.
    pub target: String,
    pub outcome: AuditOutcome,
    /// Action-specific facts; objects are encoded with sorted keys.
    pub detail: serde_json::Value,
}

/// One entry of the audit log: a record with its place in the log and its chain link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log: 1 for the first entry, no gaps (as in `gatehouse_core`). Entry
    /// `seq` is Merkle leaf `seq - 1`, and a tree of size `n` ends with entry `seq = n`.
    pub seq: u64,
    /// Leaf hash of entry `seq - 1` ([`Hash::ZERO`] for entry 1): the hash chain.
    pub prev: Hash,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// An entry whose bytes are not a canonical audit entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryDecodeError {
    #[error("not an audit entry: {0}")]
    Json(#[from] serde_json::Error),
    #[error("audit entry seq {seq} is not in canonical form (re-encoding gives different bytes)")]
    NotCanonical { seq: u64 },
}

impl AuditEntry {
    /// The canonical bytes of this entry (what is hashed, stored and exported).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"seq\":");
        out.extend_from_slice(self.seq.to_string().as_bytes());
        out.extend_from_slice(b",\"prev\":\"");
        out.extend_from_slice(self.prev.to_hex().as_bytes());
        out.extend_from_slice(b"\",\"at\":");
        let record = &self.record;
        write_json_string(out, &record.at.to_string());
        out.extend_from_slice(b",\"actor\":");
        write_json_string(out, &record.actor);
        out.extend_from_slice(b",\"action\":");
        write_json_string(out, &record.action);
        out.extend_from_slice(b",\"target\":");
        write_json_string(out, &record.target);
        out.extend_from_slice(b",\"outcome\":\"");
        out.extend_from_slice(record.outcome.as_str().as_bytes());
        out.extend_from_slice(b"\",\"detail\":");
        write_canonical_json(out, &record.detail);
        out.push(b'}');
    }

    /// Parses canonical bytes, refusing any other spelling of the same entry: accepting a
    /// second byte form would let two different leaf hashes stand for one entry.
    pub fn decode(bytes: &[u8]) -> Result<AuditEntry, EntryDecodeError> {
        let entry: AuditEntry = serde_json::from_slice(bytes)?;
        if entry.encode() != bytes {
            return Err(EntryDecodeError::NotCanonical { seq: entry.seq });
        }
        Ok(entry)
    }

    /// This entry's leaf index in the Merkle tree (`seq - 1`; 0 for a malformed seq 0).
    #[must_use]
    pub fn leaf_index(&self) -> u64 {
        self.seq.saturating_sub(1)
    }

    /// The RFC 9162 leaf hash of the canonical bytes.
    #[must_use]
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.encode())
    }
}

/// Writes `value` as compact JSON with object keys sorted by their UTF-8 bytes. Sorting is
/// done here rather than relied on from `serde_json::Map`, whose order changes when any crate
/// in the build enables its `preserve_order` feature.
pub fn write_canonical_json(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_json(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(out, key);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_canonical_json(out, v);
                }
            }
            out.push(b'}');
        }
    }
}

/// JSON string with the minimal escaping serde_json also uses (quote, backslash, control
/// characters); everything else, including non-ASCII, stays as UTF-8.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// An entry just placed in the log: what the store persists.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendedEntry {
    pub entry: AuditEntry,
    /// Canonical bytes of `entry`; store these verbatim.
    pub encoded: Vec<u8>,
    /// `SHA-256(0x00 ‖ encoded)`, the entry's Merkle leaf.
    pub leaf_hash: Hash,
    /// Size of the tree once this entry is in it (equal to `entry.seq`).
    pub tree_size: u64,
}

/// The append state of the audit log: O(log n) hashes, whatever the log's length. The store
/// owns persistence; to make an append atomic with its database commit it can clone the
/// ledger (cheap), append to the clone and keep the clone only once the commit succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    range: CompactRange,
    last_leaf: Hash,
}

impl Ledger {
    /// The state of an empty log.
    #[must_use]
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Resumes from persisted state: the compact range of the log and the leaf hash of its
    /// last entry ([`Hash::ZERO`] when empty).
    #[must_use]
    pub fn restore(range: CompactRange, last_leaf: Hash) -> Ledger {
        Ledger { range, last_leaf }
    }

    /// Number of entries in the log.
    #[must_use]
    pub fn tree_size(&self) -> u64 {
        self.range.size()
    }

    /// Current Merkle root.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.range.root()
    }

    /// Leaf hash of the last entry ([`Hash::ZERO`] when empty): the next entry's `prev`.
    #[must_use]
    pub fn last_leaf(&self) -> Hash {
        self.last_leaf
    }

    /// The compact range to persist beside the entries.
    #[must_use]
    pub fn compact_range(&self) -> &CompactRange {
        &self.range
    }

    /// Places a record at the end of the log: assigns `seq` and `prev`, encodes, hashes.
    pub fn append(&mut self, record: AuditRecord) -> AppendedEntry {
        let entry = AuditEntry {
            seq: self.range.size() + 1,
            prev: self.last_leaf,
            record,
        };
        let encoded = entry.encode();
        let leaf = leaf_hash(&encoded);
        self.range.append(leaf);
        self.last_leaf = leaf;
        AppendedEntry {
            entry,
            encoded,
            leaf_hash: leaf,
            tree_size: self.range.size(),
        }
    }

    /// Signs the current tree head.
    #[must_use]
    pub fn sign_head(&self, key: &LogSigningKey, timestamp: Timestamp) -> SignedTreeHead {
        SignedTreeHead::sign(self.tree_size(), self.root(), timestamp, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(detail: serde_json::Value) -> AuditRecord {
        AuditRecord {
            at: "2026-11-27T10:00:00.5Z".parse().unwrap(),
            actor: "user:alice".into(),
            action: "release.approve".into(),
            target: "release/42".into(),
            outcome: AuditOutcome::Succeeded,
            detail,
        }
    }

    #[test]
    fn canonical_form_is_fixed_field_order_with_sorted_detail() {
        let mut ledger = Ledger::new();
        let appended = ledger.append(draft(json!({"z": 1, "a": {"y": [true, null], "b": "é\n"}})));
        let text = String::from_utf8(appended.encoded.clone()).unwrap();
        assert_eq!(
            text,
            "{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\
             \"at\":\"2026-11-27T10:00:00.5Z\",\"actor\":\"user:alice\",\
             \"action\":\"release.approve\",\"target\":\"release/42\",\"outcome\":\"succeeded\",\
             \"detail\":{\"a\":{\"b\":\"é\\n\",\"y\":[true,null]},\"z\":1}}"
        );
        assert_eq!(
            AuditEntry::decode(&appended.encoded).unwrap(),
            appended.entry
        );
    }

    #[test]
    fn same_entry_always_hashes_the_same_whatever_the_key_order() {
        let a = Ledger::new().append(draft(json!({"b": 2, "a": 1})));
        let b = Ledger::new().append(draft(serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap()));
        assert_eq!(a.leaf_hash, b.leaf_hash);
        assert_eq!(a.entry.leaf_hash(), a.leaf_hash);
    }

    #[test]
    fn escaping_matches_serde_json_for_control_characters() {
        let s = "q\"b\\\u{1}\u{8}\u{c}\t\r\n\u{7f}ü";
        let mut ours = Vec::new();
        write_json_string(&mut ours, s);
        assert_eq!(ours, serde_json::to_vec(s).unwrap());
    }

    #[test]
    fn decode_refuses_non_canonical_spellings() {
        let appended = Ledger::new().append(draft(json!({})));
        let spaced = String::from_utf8(appended.encoded)
            .unwrap()
            .replace(",\"actor\"", ", \"actor\"");
        let err = AuditEntry::decode(spaced.as_bytes()).unwrap_err();
        assert!(
            matches!(err, EntryDecodeError::NotCanonical { seq: 1 }),
            "{err}"
        );
    }

    #[test]
    fn appends_chain_prev_links_and_grow_the_tree() {
        let mut ledger = Ledger::new();
        let first = ledger.append(draft(json!(null)));
        let second = ledger.append(draft(json!(null)));
        assert_eq!(second.entry.seq, 2);
        assert_eq!(second.entry.prev, first.leaf_hash);
        assert_eq!(second.tree_size, 2);
        assert_eq!(
            ledger.root(),
            crate::merkle::node_hash(&first.leaf_hash, &second.leaf_hash)
        );
        let resumed = Ledger::restore(ledger.compact_range().clone(), ledger.last_leaf());
        assert_eq!(resumed, ledger);
    }
}
