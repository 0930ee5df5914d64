//! The self-contained audit export file and its offline verifier.
//!
//! `gatehouse audit export` must produce something an auditor can check without gatehouse's
//! database, and `gatehouse audit verify` must say not only *that* a file was tampered with but
//! *which* entry. The file is JSON lines: a header, the log's public keys, every entry in its
//! canonical bytes, and each signed tree head right after the entry that completes its size.
//! The verifier streams the file once: it hashes each entry line as it stands (no re-encoding),
//! rebuilds the Merkle tree in a [`CompactRange`], checks each head's signature and root at its
//! size, and follows the `prev` hash chain and `seq` numbers to name the entry that was
//! modified, deleted, inserted or moved. Memory stays bounded: a window of recent entries and
//! a cap on the number of findings.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufWriter, Read, Write};

use serde::{Deserialize, Serialize};

use crate::merkle::{CompactRange, Hash, leaf_hash};
use crate::sth::{KeyId, LogVerifyingKey, SignedTreeHead};

/// Value of the header's `format` field.
pub const EXPORT_FORMAT: &str = "gatehouse-audit-export";
/// Version of the export format this crate writes and reads.
pub const EXPORT_VERSION: u32 = 1;
/// Longest line the verifier accepts; longer lines are reported and skipped.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// How many recent entries the verifier keeps to pair broken links with their cause. An entry
/// moved farther than this is still detected, but reported as modified/inserted, not moved.
pub const LINK_WINDOW: usize = 4096;
/// Findings kept in a report; further ones are only counted.
pub const MAX_FINDINGS: usize = 1000;
/// Public keys one file may embed (a log rotates its signing key rarely).
pub const MAX_EMBEDDED_KEYS: usize = 256;

const READ_CHUNK: usize = 1 << 20;

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write audit export: {0}")]
    Io(#[from] io::Error),
    #[error(
        "stored audit entry #{index} contains a line break; its bytes are not a canonical entry"
    )]
    EntryHasLineBreak { index: u64 },
    #[error("signed tree head at size {tree_size} is beyond the {entries} exported entries")]
    HeadBeyondEntries { tree_size: u64, entries: u64 },
    #[error(
        "signed tree head at size {tree_size} was signed by key `{key_id}`, which is not among the exported public keys"
    )]
    HeadKeyMissing { tree_size: u64, key_id: KeyId },
    #[error("cannot encode export record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    pub entries: u64,
    pub heads: u64,
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderRecord {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRecord {
    key: LogVerifyingKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadRecord {
    head: SignedTreeHead,
}

/// Writes the export file: header, `keys`, then `entries` (canonical bytes exactly as stored,
/// oldest first, starting at seq 1) with each head of `heads` placed right after the entry that
/// completes its tree size. Entries are written verbatim, so a tampered store exports a
/// tampered file that [`verify`] will flag.
pub fn export<W, I, B>(
    entries: I,
    heads: &[SignedTreeHead],
    keys: &[LogVerifyingKey],
    writer: W,
) -> Result<ExportSummary, ExportError>
where
    W: Write,
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    export_entries(entries, heads, keys, writer, false)
}

/// [`export`] for entries read from a store that may have been tampered with: each head is
/// placed after the entry whose `seq` (read from the entry) reaches its tree size, and heads
/// beyond the last entry are written at the end instead of refusing the export. A store with
/// deleted rows thus still exports, and [`verify`] names what is missing (a deleted entry from
/// the hash chain, deleted tail entries from the misplaced heads) instead of the exporter
/// failing with no file to show. For an intact log the output is identical to [`export`].
pub fn export_as_stored<W, I, B>(
    entries: I,
    heads: &[SignedTreeHead],
    keys: &[LogVerifyingKey],
    writer: W,
) -> Result<ExportSummary, ExportError>
where
    W: Write,
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    export_entries(entries, heads, keys, writer, true)
}

fn export_entries<W, I, B>(
    entries: I,
    heads: &[SignedTreeHead],
    keys: &[LogVerifyingKey],
    writer: W,
    as_stored: bool,
) -> Result<ExportSummary, ExportError>
where
    W: Write,
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    for head in heads {
        if !keys.iter().any(|k| k.key_id() == &head.key_id) {
            return Err(ExportError::HeadKeyMissing {
                tree_size: head.tree_size,
                key_id: head.key_id.clone(),
            });
        }
    }
    let mut ordered: Vec<&SignedTreeHead> = heads.iter().collect();
    ordered.sort_by_key(|h| h.tree_size);
    let mut pending = ordered.into_iter().peekable();

    let mut out = CountingWriter {
        inner: BufWriter::with_capacity(READ_CHUNK, writer),
        bytes: 0,
    };
    let mut summary = ExportSummary {
        entries: 0,
        heads: 0,
        bytes: 0,
    };
    write_record(
        &mut out,
        &HeaderRecord {
            format: EXPORT_FORMAT.to_owned(),
            version: EXPORT_VERSION,
        },
    )?;
    for key in keys {
        write_record(&mut out, &KeyRecord { key: key.clone() })?;
    }
    while let Some(head) = pending.next_if(|h| h.tree_size == 0) {
        write_record(&mut out, &HeadRecord { head: head.clone() })?;
        summary.heads += 1;
    }
    for entry in entries {
        let bytes = entry.as_ref();
        if memchr::memchr(b'\n', bytes).is_some() {
            return Err(ExportError::EntryHasLineBreak {
                index: summary.entries,
            });
        }
        out.write_all(bytes)?;
        out.write_all(b"\n")?;
        summary.entries += 1;
        let position = if as_stored {
            parse_entry_prefix(bytes).map_or(summary.entries, |(seq, _)| seq)
        } else {
            summary.entries
        };
        while let Some(head) =
            pending.next_if(|h| h.tree_size == position || (as_stored && h.tree_size < position))
        {
            write_record(&mut out, &HeadRecord { head: head.clone() })?;
            summary.heads += 1;
        }
    }
    if as_stored {
        for head in pending.by_ref() {
            write_record(&mut out, &HeadRecord { head: head.clone() })?;
            summary.heads += 1;
        }
    }
    if let Some(head) = pending.next() {
        return Err(ExportError::HeadBeyondEntries {
            tree_size: head.tree_size,
            entries: summary.entries,
        });
    }
    out.flush()?;
    summary.bytes = out.bytes;
    Ok(summary)
}

struct CountingWriter<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_record<W: Write, T: Serialize>(out: &mut W, record: &T) -> Result<(), ExportError> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Which keys head signatures were checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyTrust {
    /// Only the keys the caller trusts: the file cannot vouch for itself.
    TrustedKeys,
    /// The keys embedded in the file: proves internal consistency, not who signed.
    EmbeddedKeys,
}

/// The outcome of [`verify`]. Serialises to JSON for `gatehouse audit verify --format json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub lines: u64,
    pub bytes: u64,
    pub entries: u64,
    /// Merkle root of all entries, in file order.
    pub root: Hash,
    pub heads_seen: u64,
    pub heads_verified: u64,
    /// The largest head whose signature and root both checked out.
    pub last_verified_head: Option<SignedTreeHead>,
    pub key_trust: KeyTrust,
    pub findings: Vec<Finding>,
    /// Findings beyond [`MAX_FINDINGS`], counted only.
    pub findings_omitted: u64,
}

impl VerifyReport {
    /// True when nothing was found wrong and at least one signed head vouches for the file.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty() && self.findings_omitted == 0 && self.heads_verified > 0
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_intact() {
            "intact"
        } else {
            "TAMPERED or invalid"
        };
        writeln!(
            f,
            "audit export {verdict}: {} entries, {} of {} signed tree heads verified ({}), root {}",
            self.entries,
            self.heads_verified,
            self.heads_seen,
            match self.key_trust {
                KeyTrust::TrustedKeys => "against trusted keys",
                KeyTrust::EmbeddedKeys => "against keys embedded in the file",
            },
            self.root
        )?;
        for finding in &self.findings {
            writeln!(f, "  {finding}")?;
        }
        if self.findings_omitted > 0 {
            writeln!(f, "  … and {} more findings", self.findings_omitted)?;
        }
        Ok(())
    }
}

/// One thing wrong with the file, at a line (1-based). In JSON:
/// `{"line": 8, "message": "entry seq 5 was modified: …", "kind": "modified", "seq": 5, …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: u64,
    pub problem: Problem,
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct FindingJson<'a> {
            line: u64,
            message: String,
            #[serde(flatten)]
            problem: &'a Problem,
        }
        FindingJson {
            line: self.line,
            message: self.problem.to_string(),
            problem: &self.problem,
        }
        .serialize(serializer)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// What is wrong. Entry problems name the entry by `seq` (as written on the line, when it
/// could be read) and by line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The file does not start with the export header.
    MissingHeader,
    /// The header names another format or version.
    BadHeader { reason: String },
    /// A line that is not a readable export record.
    Malformed { reason: String },
    /// A line longer than [`MAX_LINE_BYTES`].
    LineTooLong,
    /// Lines end in `\r\n`: the file went through a line-ending conversion, which changes
    /// every entry's bytes. Reported once, at the first such line.
    CrlfLineEndings,
    /// An embedded public key that cannot be used.
    BadKey { reason: String },
    /// The entry's bytes changed: its hash is not what the next entry's `prev` link records.
    Modified {
        seq: Option<u64>,
        linked_by_seq: Option<u64>,
        linked_by_line: u64,
    },
    /// Entries with these seqs are missing between two entries that the chain joins.
    Deleted { first_seq: u64, last_seq: u64 },
    /// An entry no later entry links to: added after the fact.
    Inserted {
        seq: Option<u64>,
        same_seq_at_line: Option<u64>,
    },
    /// The entry belongs before an entry that appears earlier in the file.
    Reordered {
        seq: Option<u64>,
        belongs_before_seq: Option<u64>,
        belongs_before_line: u64,
    },
    /// The entry's `prev` link matches no entry, and no nearby change explains it.
    BrokenLink { seq: Option<u64> },
    /// `seq` numbers are not consecutive although every hash link holds.
    SeqDiscontinuity { seq: u64, expected: u64 },
    /// A head's size is not the number of entries before it.
    HeadMisplaced {
        tree_size: u64,
        entries_before: u64,
        /// The highest seq read so far, which pins down deleted tail entries.
        max_seq: Option<u64>,
    },
    /// A head signed by a key the verifier does not have.
    HeadUnknownKey { tree_size: u64, key_id: KeyId },
    /// A head signed by a key in the file that the caller does not trust.
    HeadUntrustedKey { tree_size: u64, key_id: KeyId },
    /// A head whose signature does not verify.
    HeadBadSignature { tree_size: u64, key_id: KeyId },
    /// The entries do not hash to the root the head signed.
    HeadRootMismatch {
        tree_size: u64,
        signed_root: Hash,
        computed_root: Hash,
        /// First seq not covered by an earlier verified head: the change lies in
        /// `first_suspect_seq..=tree_size`.
        first_suspect_seq: u64,
    },
    /// Entries after the last signed head: nothing vouches for them.
    Unsigned {
        first_seq: Option<u64>,
        last_seq: Option<u64>,
    },
    /// The file holds no head that verified.
    NoVerifiedHead,
}

fn count(n: u64) -> String {
    if n == 1 {
        "one entry".to_owned()
    } else {
        format!("{n} entries")
    }
}

fn seq_text(seq: Option<u64>) -> String {
    seq.map_or_else(|| "with unreadable seq".to_owned(), |s| format!("seq {s}"))
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingHeader => write!(f, "missing `{EXPORT_FORMAT}` header"),
            Problem::BadHeader { reason } => write!(f, "bad header: {reason}"),
            Problem::Malformed { reason } => write!(f, "not a valid export record: {reason}"),
            Problem::LineTooLong => write!(f, "line longer than {MAX_LINE_BYTES} bytes, skipped"),
            Problem::CrlfLineEndings => write!(
                f,
                "line ends with CR LF: the file was converted to other line endings, so entry hashes no longer match"
            ),
            Problem::BadKey { reason } => write!(f, "unusable public key: {reason}"),
            Problem::Modified {
                seq,
                linked_by_seq,
                linked_by_line,
            } => write!(
                f,
                "entry {} was modified: its hash differs from the `prev` link recorded by entry {} (line {linked_by_line})",
                seq_text(*seq),
                seq_text(*linked_by_seq)
            ),
            Problem::Deleted {
                first_seq,
                last_seq,
            } => {
                if first_seq == last_seq {
                    write!(
                        f,
                        "entry seq {first_seq} was deleted (missing before this line)"
                    )
                } else {
                    write!(
                        f,
                        "entries seq {first_seq}..={last_seq} were deleted (missing before this line)"
                    )
                }
            }
            Problem::Inserted {
                seq,
                same_seq_at_line,
            } => {
                write!(
                    f,
                    "entry {} was inserted: no later entry links to it",
                    seq_text(*seq)
                )?;
                if let Some(other) = same_seq_at_line {
                    write!(f, " (the same seq is also at line {other})")?;
                }
                Ok(())
            }
            Problem::Reordered {
                seq,
                belongs_before_seq,
                belongs_before_line,
            } => write!(
                f,
                "entry {} is out of order: it belongs before entry {} at line {belongs_before_line}",
                seq_text(*seq),
                seq_text(*belongs_before_seq)
            ),
            Problem::BrokenLink { seq } => write!(
                f,
                "entry {} links (`prev`) to no entry in the file: its link was altered or its predecessor replaced",
                seq_text(*seq)
            ),
            Problem::SeqDiscontinuity { seq, expected } => {
                write!(f, "entry has seq {seq} where seq {expected} was expected")
            }
            Problem::HeadMisplaced {
                tree_size,
                entries_before,
                max_seq,
            } => {
                write!(
                    f,
                    "signed tree head for size {tree_size} follows {entries_before} entries: "
                )?;
                if tree_size > entries_before {
                    if *max_seq == Some(*entries_before) {
                        write!(
                            f,
                            "entries seq {}..={tree_size} are missing (deleted)",
                            entries_before + 1
                        )
                    } else {
                        write!(f, "{} before it deleted", count(tree_size - entries_before))
                    }
                } else {
                    write!(
                        f,
                        "{} before it inserted (or the head was moved)",
                        count(entries_before - tree_size)
                    )
                }
            }
            Problem::HeadUnknownKey { tree_size, key_id } => write!(
                f,
                "signed tree head for size {tree_size} names key `{key_id}`, which is not available"
            ),
            Problem::HeadUntrustedKey { tree_size, key_id } => write!(
                f,
                "signed tree head for size {tree_size} is signed by key `{key_id}`, which is not among the trusted keys"
            ),
            Problem::HeadBadSignature { tree_size, key_id } => write!(
                f,
                "signed tree head for size {tree_size}: signature by key `{key_id}` is invalid"
            ),
            Problem::HeadRootMismatch {
                tree_size,
                signed_root,
                computed_root,
                first_suspect_seq,
            } => write!(
                f,
                "signed tree head for size {tree_size} has root {signed_root} but the entries hash to {computed_root}: an entry in seq {first_suspect_seq}..={tree_size} changed after signing"
            ),
            Problem::Unsigned {
                first_seq,
                last_seq,
            } => write!(
                f,
                "entries from this line on (entry {} to entry {}) come after the last signed tree head: nothing vouches for them",
                seq_text(*first_seq),
                seq_text(*last_seq)
            ),
            Problem::NoVerifiedHead => {
                write!(f, "no signed tree head verified: the file proves nothing")
            }
        }
    }
}

/// Verifies an export file offline. With `trusted_keys`, heads count only when signed by one of
/// them; without, the keys embedded in the file are used (and the report says so). I/O errors
/// abort; everything wrong with the content is a [`Finding`].
pub fn verify<R: Read>(
    reader: R,
    trusted_keys: Option<&[LogVerifyingKey]>,
) -> io::Result<VerifyReport> {
    let mut lines = LineReader::new(reader);
    let mut verifier = Verifier::new(trusted_keys);
    while let Some(line) = lines.next_line()? {
        verifier.line_no += 1;
        match line {
            Line::TooLong { bytes } => {
                verifier.report.bytes += bytes;
                verifier.find(verifier.line_no, Problem::LineTooLong);
            }
            Line::Complete(bytes) => verifier.on_line(bytes),
        }
    }
    Ok(verifier.finish())
}

/// An entry line the verifier still remembers, to pair a broken link with its cause.
#[derive(Debug, Clone)]
struct Mark {
    /// Position among entry lines (0-based), i.e. the leaf index in file order.
    idx: u64,
    line: u64,
    seq: Option<u64>,
    leaf: Hash,
    /// A later entry's `prev` is this entry's hash.
    referenced: bool,
    /// A finding already names this entry.
    explained: bool,
    same_seq_at_line: Option<u64>,
    /// Byte-for-byte copy of an earlier line: never a link target, so the original keeps
    /// its place in the chain and the copy is the one named.
    copy: bool,
}

/// An entry whose `prev` matched no remembered entry (yet).
#[derive(Debug, Clone)]
struct Dangling {
    idx: u64,
    line: u64,
    seq: Option<u64>,
    prev: Hash,
}

/// Hashes of SHA-256 outputs: they are uniformly random already, so their first bytes are a
/// perfectly good hash and SipHash would only slow the hot path.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// How many remembered entries (or pending links) carry each hash: lets a miss be answered
/// without scanning the window, so a badly damaged file still verifies in linear time.
#[derive(Default)]
struct HashCounts(HashMap<Hash, u32, BuildHasherDefault<DigestHasher>>);

impl HashCounts {
    fn add(&mut self, hash: Hash) {
        *self.0.entry(hash).or_insert(0) += 1;
    }
    fn remove(&mut self, hash: &Hash) {
        if let Some(count) = self.0.get_mut(hash) {
            *count -= 1;
            if *count == 0 {
                self.0.remove(hash);
            }
        }
    }
    fn contains(&self, hash: &Hash) -> bool {
        self.0.contains_key(hash)
    }
}

struct Verifier<'k> {
    trusted: Option<&'k [LogVerifyingKey]>,
    embedded: HashMap<KeyId, LogVerifyingKey>,
    range: CompactRange,
    recent: VecDeque<Mark>,
    /// Built only once links start missing often (a damaged file); an intact file never
    /// pays for it.
    recent_leaves: Option<HashCounts>,
    link_misses: u32,
    dangling: VecDeque<Dangling>,
    dangling_prevs: HashCounts,
    max_seq: Option<u64>,
    first_seq_anomaly: Option<(u64, u64, u64)>,
    verified_size: u64,
    /// First entry line (line, seq) after the latest head line: unsigned unless a head follows.
    first_after_head: Option<(u64, Option<u64>)>,
    misplaced_offset: Option<i128>,
    root_mismatch_pending: bool,
    crlf_reported: bool,
    line_no: u64,
    report: VerifyReport,
}

impl<'k> Verifier<'k> {
    fn new(trusted: Option<&'k [LogVerifyingKey]>) -> Verifier<'k> {
        Verifier {
            trusted,
            embedded: HashMap::new(),
            range: CompactRange::new(),
            recent: VecDeque::with_capacity(LINK_WINDOW + 1),
            recent_leaves: None,
            link_misses: 0,
            dangling: VecDeque::new(),
            dangling_prevs: HashCounts::default(),
            max_seq: None,
            first_seq_anomaly: None,
            verified_size: 0,
            first_after_head: None,
            misplaced_offset: None,
            root_mismatch_pending: false,
            crlf_reported: false,
            line_no: 0,
            report: VerifyReport {
                lines: 0,
                bytes: 0,
                entries: 0,
                root: Hash::ZERO,
                heads_seen: 0,
                heads_verified: 0,
                last_verified_head: None,
                key_trust: if trusted.is_some() {
                    KeyTrust::TrustedKeys
                } else {
                    KeyTrust::EmbeddedKeys
                },
                findings: Vec::new(),
                findings_omitted: 0,
            },
        }
    }

    fn find(&mut self, line: u64, problem: Problem) {
        if self.report.findings.len() < MAX_FINDINGS {
            self.report.findings.push(Finding { line, problem });
        } else {
            self.report.findings_omitted += 1;
        }
    }

    fn on_line(&mut self, bytes: &[u8]) {
        self.report.bytes += bytes.len() as u64 + 1;
        let line = self.line_no;
        if !self.crlf_reported && bytes.ends_with(b"\r") {
            self.crlf_reported = true;
            self.find(line, Problem::CrlfLineEndings);
        }
        if bytes.starts_with(b"{\"seq\":") {
            if line == 1 {
                self.find(line, Problem::MissingHeader);
            }
            self.on_entry(bytes);
        } else if bytes.starts_with(b"{\"head\":") {
            if line == 1 {
                self.find(line, Problem::MissingHeader);
            }
            self.on_head(bytes);
        } else if bytes.starts_with(b"{\"key\":") {
            if line == 1 {
                self.find(line, Problem::MissingHeader);
            }
            self.on_key(bytes);
        } else if line == 1 {
            match serde_json::from_slice::<HeaderRecord>(bytes) {
                Ok(h) if h.format == EXPORT_FORMAT && h.version == EXPORT_VERSION => {}
                Ok(h) => self.find(
                    line,
                    Problem::BadHeader {
                        reason: format!(
                            "format `{}` version {} (expected `{EXPORT_FORMAT}` version {EXPORT_VERSION})",
                            h.format, h.version
                        ),
                    },
                ),
                Err(e) => self.find(line, Problem::BadHeader { reason: e.to_string() }),
            }
        } else {
            let reason = if bytes.is_empty() {
                "empty line".to_owned()
            } else if bytes.starts_with(b"{\"format\":") {
                "header repeated inside the file".to_owned()
            } else {
                "expected an entry, head or key record".to_owned()
            };
            self.find(line, Problem::Malformed { reason });
        }
    }

    fn on_key(&mut self, bytes: &[u8]) {
        if self.embedded.len() >= MAX_EMBEDDED_KEYS {
            self.find(
                self.line_no,
                Problem::BadKey {
                    reason: format!("more than {MAX_EMBEDDED_KEYS} keys in one file"),
                },
            );
            return;
        }
        match serde_json::from_slice::<KeyRecord>(bytes) {
            Ok(record) => {
                self.embedded
                    .insert(record.key.key_id().clone(), record.key);
            }
            Err(e) => self.find(
                self.line_no,
                Problem::BadKey {
                    reason: e.to_string(),
                },
            ),
        }
    }

    fn on_entry(&mut self, bytes: &[u8]) {
        let line = self.line_no;
        let leaf = leaf_hash(bytes);
        self.range.append(leaf);
        let idx = self.report.entries;
        self.report.entries += 1;

        let parsed = parse_entry_prefix(bytes);
        if self.first_after_head.is_none() {
            self.first_after_head = Some((line, parsed.as_ref().ok().map(|p| p.0)));
        }
        let (seq, prev) = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.find(
                    line,
                    Problem::Malformed {
                        reason: reason.to_owned(),
                    },
                );
                self.remember(Mark {
                    idx,
                    line,
                    seq: None,
                    leaf,
                    referenced: false,
                    explained: true,
                    same_seq_at_line: None,
                    copy: false,
                });
                return;
            }
        };
        let mut mark = Mark {
            idx,
            line,
            seq: Some(seq),
            leaf,
            referenced: false,
            explained: false,
            same_seq_at_line: None,
            copy: false,
        };

        // An earlier entry linked to this one: it was moved later in the file.
        if !self.dangling.is_empty()
            && self.dangling_prevs.contains(&leaf)
            && let Some(pos) = self.dangling.iter().position(|d| d.prev == leaf)
            && let Some(d) = self.dangling.remove(pos)
        {
            self.dangling_prevs.remove(&d.prev);
            mark.referenced = true;
            mark.explained = true;
            self.find(
                line,
                Problem::Reordered {
                    seq: Some(seq),
                    belongs_before_seq: d.seq,
                    belongs_before_line: d.line,
                },
            );
        }

        let expected = self.max_seq.map_or(1, |m| m + 1);
        if seq != expected {
            if self.first_seq_anomaly.is_none() {
                self.first_seq_anomaly = Some((line, seq, expected));
            }
            if seq < expected
                && let Some(same) = self.recent.iter().rev().find(|m| m.seq == Some(seq))
            {
                mark.same_seq_at_line = Some(same.line);
                if same.leaf == leaf {
                    mark.copy = true;
                    mark.referenced = true;
                    mark.explained = true;
                    self.find(
                        line,
                        Problem::Inserted {
                            seq: Some(seq),
                            same_seq_at_line: mark.same_seq_at_line,
                        },
                    );
                }
            }
        }
        self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));

        let genesis = seq == 1 && prev == Hash::ZERO;
        if !genesis {
            let last_matches = self
                .recent
                .back()
                .is_some_and(|last| last.leaf == prev && !last.copy);
            if !last_matches {
                self.note_link_miss();
            }
            let pred = if last_matches {
                self.recent.back_mut()
            } else if self
                .recent_leaves
                .as_ref()
                .is_none_or(|ix| ix.contains(&prev))
            {
                self.recent
                    .iter_mut()
                    .rev()
                    .find(|m| m.leaf == prev && !m.copy)
            } else {
                None
            };
            match pred {
                Some(pred) => pred.referenced = true,
                None => {
                    if self.dangling.len() >= LINK_WINDOW {
                        self.settle_oldest_dangling();
                    }
                    self.dangling_prevs.add(prev);
                    self.dangling.push_back(Dangling {
                        idx,
                        line,
                        seq: Some(seq),
                        prev,
                    });
                }
            }
        }
        self.remember(mark);
    }

    /// Scanning the window on a miss is fine while misses are rare; once they are not, index
    /// the window so that verification stays linear.
    fn note_link_miss(&mut self) {
        self.link_misses = self.link_misses.saturating_add(1);
        if self.recent_leaves.is_none() && self.link_misses > 64 {
            let mut index = HashCounts::default();
            for mark in &self.recent {
                index.add(mark.leaf);
            }
            self.recent_leaves = Some(index);
        }
    }

    fn remember(&mut self, mark: Mark) {
        if let Some(index) = &mut self.recent_leaves {
            index.add(mark.leaf);
        }
        self.recent.push_back(mark);
        if self.recent.len() > LINK_WINDOW {
            let oldest = self.recent.front().map_or(0, |m| m.idx);
            while self.dangling.front().is_some_and(|d| d.idx <= oldest + 1) {
                self.settle_oldest_dangling();
            }
            if let Some(evicted) = self.recent.pop_front() {
                if let Some(index) = &mut self.recent_leaves {
                    index.remove(&evicted.leaf);
                }
                self.settle_mark(&evicted);
            }
        }
    }

    fn mark_at(&mut self, idx: u64) -> Option<&mut Mark> {
        let base = self.recent.front()?.idx;
        let offset = usize::try_from(idx.checked_sub(base)?).ok()?;
        self.recent.get_mut(offset)
    }

    /// A `prev` link no remembered entry satisfies: decide what happened just before it.
    fn settle_oldest_dangling(&mut self) {
        let Some(d) = self.dangling.pop_front() else {
            return;
        };
        self.dangling_prevs.remove(&d.prev);
        let pred = if d.idx == 0 {
            None
        } else {
            self.mark_at(d.idx - 1)
                .map(|m| (m.seq, m.line, m.referenced, m.explained))
        };
        let problem = match (pred, d.seq) {
            (None, Some(s)) if d.idx == 0 && s > 1 => Some(Problem::Deleted {
                first_seq: 1,
                last_seq: s - 1,
            }),
            (Some((Some(ps), _, _, _)), Some(s)) if s > ps.saturating_add(1) => {
                if let Some(m) = self.mark_at(d.idx - 1) {
                    m.explained = true;
                }
                Some(Problem::Deleted {
                    first_seq: ps + 1,
                    last_seq: s - 1,
                })
            }
            (Some((_, _, _, true)), _) => None,
            (Some((pseq, pline, false, false)), _) => {
                if let Some(m) = self.mark_at(d.idx - 1) {
                    m.explained = true;
                }
                self.find(
                    pline,
                    Problem::Modified {
                        seq: pseq,
                        linked_by_seq: d.seq,
                        linked_by_line: d.line,
                    },
                );
                None
            }
            _ => Some(Problem::BrokenLink { seq: d.seq }),
        };
        if let Some(problem) = problem {
            self.find(d.line, problem);
        }
    }

    fn settle_mark(&mut self, mark: &Mark) {
        if !mark.referenced && !mark.explained {
            self.find(
                mark.line,
                Problem::Inserted {
                    seq: mark.seq,
                    same_seq_at_line: mark.same_seq_at_line,
                },
            );
        }
    }

    fn on_head(&mut self, bytes: &[u8]) {
        let line = self.line_no;
        let head = match serde_json::from_slice::<HeadRecord>(bytes) {
            Ok(record) => record.head,
            Err(e) => {
                self.find(
                    line,
                    Problem::Malformed {
                        reason: format!("signed tree head: {e}"),
                    },
                );
                return;
            }
        };
        self.report.heads_seen += 1;
        self.first_after_head = None;
        let entries = self.range.size();
        if head.tree_size != entries {
            // Later heads are off by the same count for the same cause: report changes only.
            let offset = i128::from(entries) - i128::from(head.tree_size);
            if self.misplaced_offset.replace(offset) == Some(offset) {
                return;
            }
            self.find(
                line,
                Problem::HeadMisplaced {
                    tree_size: head.tree_size,
                    entries_before: entries,
                    max_seq: self.max_seq,
                },
            );
            return;
        }
        let key = match self.trusted {
            Some(trusted) => match trusted.iter().find(|k| k.key_id() == &head.key_id) {
                Some(k) => k,
                None => {
                    let problem = if self.embedded.contains_key(&head.key_id) {
                        Problem::HeadUntrustedKey {
                            tree_size: head.tree_size,
                            key_id: head.key_id.clone(),
                        }
                    } else {
                        Problem::HeadUnknownKey {
                            tree_size: head.tree_size,
                            key_id: head.key_id.clone(),
                        }
                    };
                    self.find(line, problem);
                    return;
                }
            },
            None => match self.embedded.get(&head.key_id) {
                Some(k) => k,
                None => {
                    self.find(
                        line,
                        Problem::HeadUnknownKey {
                            tree_size: head.tree_size,
                            key_id: head.key_id.clone(),
                        },
                    );
                    return;
                }
            },
        };
        if head.verify(key).is_err() {
            self.find(
                line,
                Problem::HeadBadSignature {
                    tree_size: head.tree_size,
                    key_id: head.key_id.clone(),
                },
            );
            return;
        }
        let computed = self.range.root();
        if computed != head.root_hash {
            // Once a root mismatches, every later head does too until one verifies again.
            if std::mem::replace(&mut self.root_mismatch_pending, true) {
                return;
            }
            self.find(
                line,
                Problem::HeadRootMismatch {
                    tree_size: head.tree_size,
                    signed_root: head.root_hash,
                    computed_root: computed,
                    first_suspect_seq: self.verified_size + 1,
                },
            );
            return;
        }
        self.report.heads_verified += 1;
        self.root_mismatch_pending = false;
        self.verified_size = head.tree_size;
        self.report.last_verified_head = Some(head);
    }

    fn finish(mut self) -> VerifyReport {
        while !self.dangling.is_empty() {
            self.settle_oldest_dangling();
        }
        // The newest entry has no successor to link to it; the heads vouch for it instead.
        let newest = self.recent.pop_back();
        while let Some(mark) = self.recent.pop_front() {
            self.settle_mark(&mark);
        }
        if self.report.heads_seen > 0
            && let Some((line, first_seq)) = self.first_after_head
        {
            self.find(
                line,
                Problem::Unsigned {
                    first_seq,
                    last_seq: newest.as_ref().and_then(|m| m.seq),
                },
            );
        }
        if self.line_no == 0 {
            self.find(1, Problem::MissingHeader);
        }
        if self.report.heads_verified == 0 {
            self.find(self.line_no.max(1), Problem::NoVerifiedHead);
        }
        // Every seq change also changes a hash, so the chain or a head has already spoken;
        // this only guarantees that a seq gap can never pass silently.
        if self.report.findings.is_empty()
            && let Some((line, seq, expected)) = self.first_seq_anomaly
        {
            self.find(line, Problem::SeqDiscontinuity { seq, expected });
        }
        self.report.findings.sort_by_key(|f| f.line);
        self.report.lines = self.line_no;
        self.report.root = self.range.root();
        self.report
    }
}

/// Reads `seq` and `prev` from the fixed start of a canonical entry
/// (`{"seq":N,"prev":"<64 hex>",`) without parsing the rest: the rest only needs hashing.
fn parse_entry_prefix(bytes: &[u8]) -> Result<(u64, Hash), &'static str> {
    let rest = bytes
        .strip_prefix(b"{\"seq\":")
        .ok_or("entry does not start with `{\"seq\":`")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return Err("entry seq is not a canonical unsigned integer");
    }
    let mut seq: u64 = 0;
    for &d in &rest[..digits] {
        seq = seq
            .checked_mul(10)
            .and_then(|s| s.checked_add(u64::from(d - b'0')))
            .ok_or("entry seq is too large")?;
    }
    let rest = rest[digits..]
        .strip_prefix(b",\"prev\":\"")
        .ok_or("entry `prev` does not follow `seq`")?;
    if rest.len() < 66 || &rest[64..66] != b"\"," {
        return Err("entry `prev` is not 64 hexadecimal characters");
    }
    let prev = Hash::from_hex_bytes(&rest[..64])
        .map_err(|_| "entry `prev` is not 64 hexadecimal characters")?;
    if !bytes.ends_with(b"}") {
        return Err("entry does not end with `}`");
    }
    Ok((seq, prev))
}

enum Line<'a> {
    Complete(&'a [u8]),
    TooLong { bytes: u64 },
}

/// Splits a reader into lines without copying them out of one large buffer, and without ever
/// holding more than [`MAX_LINE_BYTES`] of a single line.
struct LineReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    skipped: Option<u64>,
}

impl<R: Read> LineReader<R> {
    fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            eof: false,
            skipped: None,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line_start = self.start;
                self.start += pos + 1;
                if let Some(skipped) = self.skipped.take() {
                    return Ok(Some(Line::TooLong {
                        bytes: skipped + pos as u64 + 1,
                    }));
                }
                return Ok(Some(Line::Complete(
                    &self.buf[line_start..line_start + pos],
                )));
            }
            if self.eof {
                if let Some(skipped) = self.skipped.take() {
                    let tail = (self.end - self.start) as u64;
                    self.start = self.end;
                    return Ok(Some(Line::TooLong {
                        bytes: skipped + tail,
                    }));
                }
                if self.start < self.end {
                    let line_start = self.start;
                    self.start = self.end;
                    return Ok(Some(Line::Complete(&self.buf[line_start..self.end])));
                }
                return Ok(None);
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                if self.buf.len() > MAX_LINE_BYTES {
                    // Drop what we have of this line and skip to its end.
                    self.skipped = Some(self.skipped.unwrap_or(0) + self.end as u64);
                    self.end = 0;
                } else {
                    let grown = (self.buf.len() * 2).min(MAX_LINE_BYTES + 1);
                    self.buf.resize(grown, 0);
                }
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_prefix_parser_reads_seq_and_prev() {
        let prev = "ab".repeat(32);
        let line = format!("{{\"seq\":42,\"prev\":\"{prev}\",\"x\":1}}");
        let (seq, hash) = parse_entry_prefix(line.as_bytes()).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(hash.to_hex(), prev);
    }

    #[test]
    fn entry_prefix_parser_rejects_non_canonical_and_overflow() {
        let prev = "00".repeat(32);
        for bad in [
            format!("{{\"seq\":042,\"prev\":\"{prev}\",\"x\":1}}"),
            format!("{{\"seq\":,\"prev\":\"{prev}\",\"x\":1}}"),
            format!("{{\"seq\":99999999999999999999,\"prev\":\"{prev}\",\"x\":1}}"),
            format!("{{\"seq\":1, \"prev\":\"{prev}\",\"x\":1}}"),
            format!("{{\"seq\":1,\"prev\":\"{}\",\"x\":1}}", "0".repeat(63)),
            format!("{{\"seq\":1,\"prev\":\"{}\",\"x\":1}}", "g".repeat(64)),
            format!("{{\"seq\":1,\"prev\":\"{prev}\",\"x\":1"),
        ] {
            assert!(parse_entry_prefix(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_reader_splits_handles_missing_final_newline_and_small_reads() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut reader = LineReader::new(Trickle(b"one\n\ntwo words\nlast"));
        let mut got = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            match line {
                Line::Complete(b) => got.push(String::from_utf8(b.to_vec()).unwrap()),
                Line::TooLong { .. } => panic!("unexpected long line"),
            }
        }
        assert_eq!(got, ["one", "", "two words", "last"]);
    }
}
