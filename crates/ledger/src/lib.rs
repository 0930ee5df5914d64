//! gatehouse's tamper-evident audit ledger and envelope encryption, as a pure library.
//!
//! gatehouse authorises production releases, so its own records must be trustworthy: every
//! state change and every denied attempt goes into an append-only log whose integrity anyone
//! can check offline, and the evidence it keeps is encrypted at rest under keys that can be
//! rotated. This crate holds the parts of that which are pure computation, so the store and
//! the server (which own persistence and the clock) share one tested implementation:
//!
//! - [`merkle`]: the RFC 9162 Merkle tree, compact range, inclusion and consistency proofs;
//! - [`subtree`]: the same proofs and roots from O(log n) perfect-subtree hashes;
//! - [`entry`]: audit entries, their canonical bytes, and the [`Ledger`] append state;
//! - [`sth`]: Ed25519 signed tree heads and log signing keys;
//! - [`mod@export`]: the self-contained export file and its streaming offline verifier;
//! - [`envelope`]: per-object data keys wrapped by named key-encryption keys;
//! - [`stream`]: blobs of any size sealed as numbered, order-bound chunks under one data key.
//!
//! Nothing here reads the clock or touches storage; the only I/O is [`export::export`] and
//! [`export::verify`] over caller-supplied `Write`/`Read`, and OS randomness for new keys.
//!
//! ```
//! use gatehouse_ledger::{AuditOutcome, AuditRecord, Kek, Keyring, Ledger, LogSigningKey};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now: jiff::Timestamp = "2026-11-27T12:00:00Z".parse()?;
//! let key = LogSigningKey::generate()?;
//! let mut ledger = Ledger::new();
//! let appended = ledger.append(AuditRecord {
//!     at: now,
//!     actor: "user:alice".into(),
//!     action: "release.approve".into(),
//!     target: "release:42".into(),
//!     outcome: AuditOutcome::Succeeded,
//!     detail: serde_json::json!({"slot": "security-lead"}),
//! });
//! // The store persists `appended.encoded` and `appended.leaf_hash`, and signed heads.
//! let head = ledger.sign_head(&key, now);
//!
//! let mut file = Vec::new();
//! gatehouse_ledger::export([&appended.encoded], &[head], &[key.verifying_key()], &mut file)?;
//! let report = gatehouse_ledger::verify(file.as_slice(), Some(&[key.verifying_key()]))?;
//! assert!(report.is_intact(), "{report}");
//!
//! let mut keyring = Keyring::new();
//! keyring.insert(Kek::generate(now)?)?;
//! let kek = keyring.active().ok_or("no key")?;
//! let sealed = gatehouse_ledger::seal(b"evidence:7", b"SARIF bytes", kek)?;
//! let opened = gatehouse_ledger::open(b"evidence:7", &sealed, &keyring)?;
//! assert_eq!(opened.as_slice(), b"SARIF bytes");
//! # Ok(())
//! # }
//! ```

pub mod entry;
pub mod envelope;
pub mod export;
pub mod merkle;
pub mod sth;
pub mod stream;
pub mod subtree;

pub use entry::{AppendedEntry, AuditEntry, AuditOutcome, AuditRecord, Ledger};
pub use envelope::{Kek, KekId, Keyring, SealedObject, WrappedDataKey, open, rewrap, seal};
pub use export::{Finding, Problem, VerifyReport, export, export_as_stored, verify};
pub use merkle::{
    CompactRange, ConsistencyProof, Hash, InclusionProof, LeafHashSource, consistency_proof,
    consistency_proof_ranges, inclusion_proof, inclusion_proof_ranges, verify_consistency,
    verify_inclusion,
};
pub use sth::{KeyId, LogSigningKey, LogVerifyingKey, SignedTreeHead};
pub use stream::{
    FramedChunks, OpeningReader, SealedChunks, SealingWriter, StreamError, StreamHeader,
    StreamOpener, StreamSealer,
};
pub use subtree::{SubtreeHashSource, SubtreeKey};
