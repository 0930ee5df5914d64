//! The tamper-evident side of the audit log: the port that reads the log as a Merkle tree.
//!
//! Appending stays [`Store::append_audit`](crate::store::Store::append_audit): the store places
//! each record in the ledger (seq, `prev` link, canonical bytes, leaf hash) inside the same
//! transaction that assigns its sequence number, so every writer, online or offline, extends
//! the same hash chain. This port adds what the signed tree heads, the proof routes and the
//! offline export need: entries in their canonical bytes, stored leaf hashes, the compact range
//! at a size, the signed heads and the public keys that signed them. It is separate from
//! `Store` so that adapters can serve it from a pool of their own and so that code that only
//! appends never sees proof machinery.

use async_trait::async_trait;
use gatehouse_ledger::{CompactRange, Hash, LogSigningKey, LogVerifyingKey, SignedTreeHead};
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
