//! The tamper-evident side of the audit log: the port that reads the log as a Merkle tree.
//!
//! Appending stays [`Store::append_audit`](crate::store::Store::append_audit): the store places
//! each record in the ledger (seq, `prev` link, canonical bytes, leaf hash) inside the same
//! transaction that assigns its sequence number, so every writer, online or offline, extends
//! the same hash chain. This port adds what the signed tree heads, the proof routes and the
//! offline export need: entries in their canonical bytes, stored leaf hashes, the compact range
//! at a size, the hashes of perfect subtrees, the signed heads and the public keys that signed
//! them. It is separate from `Store` so that adapters can serve it from a pool of their own and
//! so that code that only appends never sees proof machinery.
//!
//! Proofs ([`prove_inclusion`], [`prove_consistency`]) read O(log n) perfect-subtree hashes in
//! one call instead of every leaf hash: the store keeps the hash of every complete, aligned
//! subtree, written in the append transaction (`gatehouse_ledger::subtree`). Those hashes are a
//! cache derived from the leaf hashes, never evidence: a damaged row yields a proof that fails
//! against the signed tree head, and signed heads themselves are computed from leaf hashes
//! ([`sign_tree_head`]), so the cache can never get a wrong root signed.

use std::collections::HashMap;

use async_trait::async_trait;
use gatehouse_ledger::merkle::ProofError;
use gatehouse_ledger::subtree::{self, SubtreeKey};
use gatehouse_ledger::{
    CompactRange, ConsistencyProof, Hash, InclusionProof, LogSigningKey, LogVerifyingKey,
    SignedTreeHead,
};
use jiff::Timestamp;

use crate::store::StoreError;

/// One entry as exported: its sequence number and its canonical bytes, re-encoded from the
/// stored row (so a row edited in the database exports as edited bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEntry {
    pub seq: u64,
    /// Canonical entry bytes (`gatehouse_ledger::AuditEntry::encode`), or, for a row that
    /// cannot be read back into an entry at all, a line that names the row and can never
    /// verify.
    pub bytes: Vec<u8>,
    /// The leaf hash stored at append time (`None` for a row without one).
    pub stored_leaf_hash: Option<Hash>,
}

/// Read access to the audit log as an RFC 9162 Merkle tree, plus its signed tree heads.
#[async_trait]
pub trait AuditLedger: Send + Sync {
    /// Number of entries in the log (the seq of the newest entry).
    async fn tree_size(&self) -> Result<u64, StoreError>;

    /// Entries with `seq > after_seq`, in seq order, at most `limit` (capped at
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE)).
    async fn encoded_entries(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<EncodedEntry>, StoreError>;

    /// Stored leaf hashes of leaves `start..end` (0-based: leaf `i` is entry `seq = i + 1`).
    /// [`StoreError::Corrupt`] when a row in the range has none or the range has a gap.
    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError>;

    /// The compact range of the first `size` leaves (resumes from the nearest stored head).
    async fn compact_range(&self, size: u64) -> Result<CompactRange, StoreError>;

    /// Stored hashes of the perfect subtrees `keys`, in the order of `keys`, read in one query:
    /// level 0 is the leaf hash of the entry (`seq = index + 1`), higher levels come from the
    /// subtree table the append transaction fills. [`StoreError::NotFound`] when a key reaches
    /// beyond the log, [`StoreError::Corrupt`] when a key inside the log has no stored hash.
    async fn subtree_hashes(&self, keys: &[SubtreeKey]) -> Result<Vec<Hash>, StoreError>;

    /// Stores a signed head with the compact range it was computed from.
    async fn record_tree_head(
        &self,
        head: &SignedTreeHead,
        range: &CompactRange,
    ) -> Result<(), StoreError>;

    /// The head with the largest tree size (the newest among equals), if any.
    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError>;

    /// Every stored head, by tree size.
    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError>;

    /// Records a public key that signs heads (idempotent).
    async fn record_log_key(&self, key: &LogVerifyingKey, at: Timestamp) -> Result<(), StoreError>;

    /// Every public key that has signed heads of this log.
    async fn log_keys(&self) -> Result<Vec<LogVerifyingKey>, StoreError>;
}

/// Signs a head over the first `size` entries with `key` and stores it. The root comes from
/// the stored leaf hashes, so a head never vouches for entries the store does not hold.
pub async fn sign_tree_head(
    ledger: &dyn AuditLedger,
    key: &LogSigningKey,
    size: u64,
    now: Timestamp,
) -> Result<SignedTreeHead, StoreError> {
    let range = ledger.compact_range(size).await?;
    let head = SignedTreeHead::sign(range.size(), range.root(), now, key);
    ledger.record_tree_head(&head, &range).await?;
    Ok(head)
}

/// An inclusion proof with the root it leads to, both from stored subtree hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenInclusion {
    pub proof: InclusionProof,
    /// The root of the tree of `proof.tree_size` leaves as the store computes it; a client
    /// compares it with a signed tree head rather than trusting it.
    pub root: Hash,
}

/// A consistency proof with the roots of both trees, from stored subtree hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenConsistency {
    pub proof: ConsistencyProof,
    pub first_root: Hash,
    pub second_root: Hash,
}

/// Inclusion proof of leaf `leaf_index` in the tree of the first `tree_size` leaves, from the
/// O(log n) subtree hashes it needs (one [`AuditLedger::subtree_hashes`] call).
pub async fn prove_inclusion(
    ledger: &dyn AuditLedger,
    leaf_index: u64,
    tree_size: u64,
) -> Result<ProvenInclusion, StoreError> {
    let keys = subtree::inclusion_keys(leaf_index, tree_size).map_err(proof_request)?;
    let source = fetch(ledger, keys).await?;
    Ok(ProvenInclusion {
        proof: InclusionProof {
            leaf_index,
            tree_size,
            path: subtree::inclusion_proof(&source, leaf_index, tree_size)
                .map_err(proof_request)?,
        },
        root: subtree::root(&source, tree_size).map_err(proof_request)?,
    })
}

/// Consistency proof from tree size `first` to `second`, with both roots, from the O(log n)
/// subtree hashes it needs (one [`AuditLedger::subtree_hashes`] call).
pub async fn prove_consistency(
    ledger: &dyn AuditLedger,
    first: u64,
    second: u64,
) -> Result<ProvenConsistency, StoreError> {
    let keys = subtree::consistency_keys(first, second).map_err(proof_request)?;
    let source = fetch(ledger, keys).await?;
    Ok(ProvenConsistency {
        proof: ConsistencyProof {
            first_size: first,
            second_size: second,
            path: subtree::consistency_proof(&source, first, second).map_err(proof_request)?,
        },
        first_root: subtree::root(&source, first).map_err(proof_request)?,
        second_root: subtree::root(&source, second).map_err(proof_request)?,
    })
}

async fn fetch(
    ledger: &dyn AuditLedger,
    keys: Vec<SubtreeKey>,
) -> Result<HashMap<SubtreeKey, Hash>, StoreError> {
    let hashes = ledger.subtree_hashes(&keys).await?;
    if hashes.len() != keys.len() {
        return Err(StoreError::Backend(format!(
            "asked for {} subtree hashes, got {}",
            keys.len(),
            hashes.len()
        )));
    }
    Ok(keys.into_iter().zip(hashes).collect())
}

/// A proof that cannot be built: the sizes or the index asked for are out of range (the map
/// holds every key the proof needs, so the source itself cannot fail).
fn proof_request(err: ProofError) -> StoreError {
    StoreError::InvalidValue {
        field: "proof".into(),
        reason: err.to_string(),
    }
}
