//! The tamper-evident audit log in the database: hashed appends and the `AuditLedger` port.
//!
//! Why here: the seq of an audit entry is assigned by the database, and the entry's canonical
//! bytes contain that seq and the leaf hash of the entry before it. So the ledger step (place,
//! encode, hash) must run inside the transaction that holds the append lock, or two writers
//! could chain onto the same predecessor. [`AuditAppender`] does that for both backends: on
//! SQLite `BEGIN IMMEDIATE` takes the write lock before the last row is read, on PostgreSQL a
//! table lock in EXCLUSIVE mode (readers are not blocked). Every writer, the server and the
//! offline CLI alike, therefore extends one chain, gap-free and in commit order. Because the
//! lock makes appends take turns anyway, concurrent appends of one store share a transaction
//! (group commit): one lock, one durable commit for every record waiting, each caller
//! answered only after that commit.
//!
//! The row keeps its columns as before plus `prev_hash` and `leaf_hash`. The canonical bytes
//! are not stored: they are re-encoded from the columns whenever they are needed (export,
//! proofs), with `gatehouse_ledger`'s single encoding, so a column edited behind the store's
//! back exports as an edited entry, and the offline verifier names it. `detail` is encoded
//! from its stored text parsed back, both at append and at export, so the bytes hashed at
//! append are the bytes exported.
//!
//! [`SqlAuditLedger`] serves the read side (entries, leaf hashes, compact ranges, subtree
//! hashes, signed tree heads, public keys) from a pool of its own, like the gate and event
//! stores.
//!
//! Proofs read perfect-subtree hashes (migration 0430, `audit_subtrees`): the append writes the
//! subtrees its leaf completes in the same transaction (amortised one row), so a proof needs
//! O(log n) rows found by primary key, in one query, instead of every leaf hash. The table is
//! filled in leaf order and only under the append lock, so it always covers a prefix of the
//! log; whoever finds it behind (the adapter at start-up after the migration, or an append)
//! fills it from where it stopped.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::audit_log::{AuditLedger, EncodedEntry};
use gatehouse_core::store::{MAX_PAGE_SIZE, StoreError};
use gatehouse_ledger::entry::AuditEntry as LedgerEntry;
use gatehouse_ledger::merkle::leaf_hash;
use gatehouse_ledger::subtree::{SubtreeKey, completed_subtrees, left_siblings, tree_subtrees};
use gatehouse_ledger::{CompactRange, Hash, KeyId, LogVerifyingKey, SignedTreeHead};
use jiff::Timestamp;
use sqlx::Row;
use tokio::sync::oneshot;

use crate::StoreConfig;
use crate::pool::Pool;
use crate::queries::query_error;

/// How long a SQLite writer waits for the write lock (the API's own writes share the file).
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Leaf hashes read per query while rebuilding a compact range.
const LEAF_CHUNK: u64 = 10_000;

/// Subtree rows written per INSERT while filling the table (three parameters each).
const SUBTREE_BATCH: usize = 300;

/// Subtree keys read per query (two parameters each; a proof needs fewer than 200).
const KEY_BATCH: usize = 400;

/// Columns an entry is encoded from.
const ENTRY_COLUMNS: &str =
    "seq, at_ns, actor, action, target, outcome, detail, prev_hash, leaf_hash";

fn corrupt(record: impl Into<String>, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        record: record.into(),
        reason: reason.to_string(),
    }
}

fn to_i64(field: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidValue {
        field: field.into(),
        reason: format!("{value} is too large"),
    })
}

fn to_u64(record: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(record, format!("negative number {value}")))
}

fn parse_hash(record: &str, column: &str, text: &str) -> Result<Hash, StoreError> {
    Hash::from_hex(text).map_err(|e| corrupt(record, format!("{column}: {e}")))
}

/// The columns of one `audit_log` row.
struct EntryRow {
    seq: i64,
    at_ns: i64,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    detail: String,
    prev_hash: Option<String>,
    leaf_hash: Option<String>,
}

impl EntryRow {
    fn read<R>(row: &R) -> Result<EntryRow, sqlx::Error>
    where
        R: Row,
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(EntryRow {
            seq: row.try_get("seq")?,
            at_ns: row.try_get("at_ns")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            outcome: row.try_get("outcome")?,
            detail: row.try_get("detail")?,
            prev_hash: row.try_get("prev_hash")?,
            leaf_hash: row.try_get("leaf_hash")?,
        })
    }

    fn record_name(&self) -> String {
        format!("audit_log {}", self.seq)
    }

    /// The ledger entry this row stands for, with `prev` given (the row's own `prev_hash`
    /// when exporting; the predecessor's leaf hash when filling legacy rows).
    fn entry(&self, prev: Hash) -> Result<LedgerEntry, String> {
        let seq = u64::try_from(self.seq).map_err(|_| format!("negative seq {}", self.seq))?;
        let at = Timestamp::from_nanosecond(i128::from(self.at_ns))
            .map_err(|e| format!("at_ns: {e}"))?;
        let outcome = AuditOutcome::from_str(&self.outcome).map_err(|e| format!("outcome: {e}"))?;
        let detail: serde_json::Value =
            serde_json::from_str(&self.detail).map_err(|e| format!("detail: {e}"))?;
        Ok(LedgerEntry {
            seq,
            prev,
            record: AuditRecord {
                at,
                actor: self.actor.clone(),
                action: self.action.clone(),
                target: self.target.clone(),
                outcome,
                detail,
            },
        })
    }

    /// Canonical bytes for the export, or, when the row cannot be read back into an entry, a
    /// line that names the row and can never verify (the verifier reports it).
    fn encoded(&self) -> Result<EncodedEntry, StoreError> {
        let record = self.record_name();
        let seq = to_u64(&record, self.seq)?;
        let stored_leaf_hash = match &self.leaf_hash {
            Some(text) => Some(parse_hash(&record, "leaf_hash", text)?),
            None => None,
        };
        let entry = match &self.prev_hash {
            None => Err("prev_hash is missing".to_owned()),
            Some(text) => Hash::from_hex(text)
                .map_err(|e| format!("prev_hash: {e}"))
                .and_then(|prev| self.entry(prev)),
        };
        let bytes = match entry {
            Ok(entry) => entry.encode(),
            Err(reason) => serde_json::to_vec(&serde_json::json!({
                "seq": seq,
                "unreadable_row": reason,
            }))
            .map_err(|e| corrupt(&record, e))?,
        };
        Ok(EncodedEntry {
            seq,
            bytes,
            stored_leaf_hash,
        })
    }
}

/// How a subtree is named in errors: level 0 is the entry's own row.
fn subtree_record(key: SubtreeKey) -> String {
    if key.level == 0 {
        format!("audit_log {}", key.index.saturating_add(1))
    } else {
        format!("audit_subtrees level {} index {}", key.level, key.index)
    }
}

/// The query that reads the hashes of `count` subtrees, bound as `(level, index)` pairs: level
/// 0 from the leaf hashes of `audit_log`, higher levels from `audit_subtrees`, every key found
/// by primary key (a row-value `IN` would scan the table on SQLite; this join does not).
fn subtree_query(count: usize) -> String {
    let values = (0..count)
        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH k (l, i) AS (VALUES {values}) \
         SELECT k.l AS level, k.i AS idx, s.hash AS hash \
         FROM k JOIN audit_subtrees s ON s.level = k.l AND s.idx = k.i \
         UNION ALL \
         SELECT k.l, k.i, a.leaf_hash FROM k JOIN audit_log a ON k.l = 0 AND a.seq = k.i + 1"
    )
}

/// The stored hashes of `$keys` (`&[SubtreeKey]`) that exist, as a map, read through executor
/// `$exec` (a pool, or `&mut *tx`); `$err` maps `sqlx::Error`.
macro_rules! read_subtrees {
    ($exec:expr, $keys:expr, $err:expr) => {{
        let keys: &[SubtreeKey] = $keys;
        let mut found: HashMap<SubtreeKey, Hash> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(KEY_BATCH) {
            let sql = subtree_query(chunk.len());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for key in chunk {
                query = query
                    .bind(i32::from(key.level))
                    .bind(to_i64("subtree index", key.index)?);
            }
            let rows = query.fetch_all($exec).await.map_err($err)?;
            for row in &rows {
                let level: i32 = row.try_get("level").map_err($err)?;
                let index: i64 = row.try_get("idx").map_err($err)?;
                let hash: Option<String> = row.try_get("hash").map_err($err)?;
                // The key columns echo bound keys, so they always convert back.
                let (Ok(level), Ok(index)) = (u8::try_from(level), u64::try_from(index)) else {
                    continue;
                };
                let key = SubtreeKey { level, index };
                if let Some(text) = hash {
                    found.insert(key, parse_hash(&subtree_record(key), "hash", &text)?);
                }
            }
        }
        Ok::<HashMap<SubtreeKey, Hash>, StoreError>(found)
    }};
}

/// Writes subtree rows (`&[(SubtreeKey, Hash)]`). A row that exists already is kept: the table
/// is derived from the leaf hashes, and a forged row shows as a proof that fails against the
/// signed head, not as audit appends that stop.
macro_rules! insert_subtrees {
    ($exec:expr, $rows:expr, $err:expr) => {{
        let rows: &[(SubtreeKey, Hash)] = $rows;
        for chunk in rows.chunks(SUBTREE_BATCH) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO audit_subtrees (level, idx, hash) VALUES {values} \
                 ON CONFLICT (level, idx) DO NOTHING"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (key, hash) in chunk {
                query = query
                    .bind(i32::from(key.level))
                    .bind(to_i64("subtree index", key.index)?)
                    .bind(hash.to_hex());
            }
            query.execute($exec).await.map_err($err)?;
        }
        Ok::<(), StoreError>(())
    }};
}

/// Stored leaf hashes of leaves `$start..$end` (`u64`), gap-free, through executor `$exec`.
macro_rules! read_leaf_hashes {
    ($exec:expr, $start:expr, $end:expr, $err:expr) => {{
        let (start, end): (u64, u64) = ($start, $end);
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT seq, leaf_hash FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(to_i64("start", start)?)
        .bind(to_i64("end", end)?)
        .fetch_all($exec)
        .await
        .map_err($err)?;
        let mut hashes = Vec::with_capacity(rows.len());
        let mut expected = start + 1;
        for (seq, text) in rows {
            let record = format!("audit_log {seq}");
            if to_u64(&record, seq)? != expected {
                return Err(corrupt(
                    format!("audit_log {expected}"),
                    "entry is missing (the sequence has a gap)",
                ));
            }
            let text = text.ok_or_else(|| corrupt(&record, "leaf_hash is missing"))?;
            hashes.push(parse_hash(&record, "leaf_hash", &text)?);
            expected += 1;
        }
        if expected != end + 1 {
            return Err(StoreError::NotFound {
                what: format!("audit entry seq {expected} (the log has fewer than {end} entries)"),
            });
        }
        Ok::<Vec<Hash>, StoreError>(hashes)
    }};
}

/// The compact range of the first `$size` leaves read from the subtree table, or `None` when
/// a row is missing. Rows are only ever written in leaf order, so finding the range's
/// smallest subtree means every subtree before it is there too: the table has caught up.
macro_rules! range_from_subtrees {
    ($exec:expr, $size:expr, $err:expr) => {{
        let size: u64 = $size;
        let keys = tree_subtrees(size);
        let found = read_subtrees!($exec, &keys, $err)?;
        match keys
            .iter()
            .map(|k| found.get(k).copied())
            .collect::<Option<Vec<_>>>()
        {
            Some(hashes) => Some(
                CompactRange::from_parts(size, hashes).map_err(|e| corrupt("audit_subtrees", e))?,
            ),
            None => None,
        }
    }};
}

/// Fills `audit_subtrees` up to leaf `$size` from where it stopped, inside transaction `$tx`,
/// which holds the append lock; evaluates to the compact range of `$size` leaves.
macro_rules! catch_up_subtrees {
    ($tx:expr, $size:expr, $err:expr) => {{
        let size: u64 = $size;
        let last_pair: Option<i64> =
            sqlx::query_scalar("SELECT MAX(idx) FROM audit_subtrees WHERE level = 1")
                .fetch_one(&mut *$tx)
                .await
                .map_err($err)?;
        // Level-1 rows come one per pair of leaves, in order: the table covers every leaf up
        // to the end of the last pair (a table ahead of the log is only trusted up to `size`).
        let filled = match last_pair {
            Some(pair) => to_u64("audit_subtrees", pair)?
                .saturating_add(1)
                .saturating_mul(2)
                .min(size & !1),
            None => 0,
        };
        // A row missing below that point (deleted behind the store's back): start again from
        // the first leaf; the rows that are there are kept.
        let mut range = range_from_subtrees!(&mut *$tx, filled, $err).unwrap_or_default();
        let mut completed = Vec::new();
        while range.size() < size {
            let end = size.min(range.size() + LEAF_CHUNK);
            for leaf in read_leaf_hashes!(&mut *$tx, range.size(), end, $err)? {
                range.append_completing(leaf, |key, hash| completed.push((key, hash)));
            }
            insert_subtrees!(&mut *$tx, &completed, $err)?;
            completed.clear();
        }
        Ok::<CompactRange, StoreError>(range)
    }};
}

/// Most entries one append transaction takes from the queue (group commit).
const MAX_BATCH: usize = 256;

/// Entry rows written per INSERT (nine parameters each).
const ENTRY_BATCH: usize = 64;

/// One record for the log, already turned into the values its row and its hash need by its
/// caller, so a record that could never be stored fails alone, never its batch.
struct Pending {
    /// The record with `detail` as its stored text parses back: the bytes hashed at append
    /// are then the bytes export re-encodes from the row.
    record: AuditRecord,
    at_ns: i64,
    detail_text: String,
}

impl Pending {
    fn new(record: &AuditRecord) -> Result<Pending, StoreError> {
        let at_ns = crate::rows::nanos("at", record.at)?;
        let detail_text = crate::rows::json_text("detail", &record.detail)?;
        let detail: serde_json::Value =
            serde_json::from_str(&detail_text).map_err(|e| StoreError::InvalidValue {
                field: "detail".into(),
                reason: e.to_string(),
            })?;
        Ok(Pending {
            record: AuditRecord {
                detail,
                ..record.clone()
            },
            at_ns,
            detail_text,
        })
    }
}

/// Answers the caller of a queued record: its seq once its batch has committed, or the error
/// that rolled the batch back.
type Receipt = oneshot::Sender<Result<i64, StoreError>>;

/// The same error for every caller of a failed batch (`StoreError` is not `Clone`).
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable { target, reason } => StoreError::Unavailable {
            target: target.clone(),
            reason: reason.clone(),
        },
        StoreError::SchemaTooNew { database, binary } => StoreError::SchemaTooNew {
            database: *database,
            binary: *binary,
        },
        StoreError::Conflict { what } => StoreError::Conflict { what: what.clone() },
        StoreError::NotFound { what } => StoreError::NotFound { what: what.clone() },
        StoreError::Corrupt { record, reason } => StoreError::Corrupt {
            record: record.clone(),
            reason: reason.clone(),
        },
        StoreError::InvalidValue { field, reason } => StoreError::InvalidValue {
            field: field.clone(),
            reason: reason.clone(),
        },
        StoreError::Backend(message) => StoreError::Backend(message.clone()),
    }
}

/// How a batch is named in errors (the single-entry form is what appends always said).
fn batch_name(batch: &[Pending]) -> String {
    match batch {
        [one] => format!("audit entry {} {}", one.record.action, one.record.target),
        [first, ..] => format!(
            "{} audit entries from {} {}",
            batch.len(),
            first.record.action,
            first.record.target
        ),
        [] => "no audit entries".to_owned(),
    }
}

/// Appends `$batch` (`&[Pending]`, in order) as the next ledger entries, written once for both
/// engines: `$tx` already holds the append lock. Evaluates to the seq of the first entry; the
/// others follow it without a gap.
///
/// Each entry chains onto the one before it in memory, so a batch costs the statements of one
/// entry: read the last row, read the compact range before the batch, one INSERT of the rows,
/// one INSERT of the subtrees they complete. A lone entry reads only the subtrees its leaf
/// merges with: exactly the statements an append ran before group commit.
macro_rules! append_batch_in_tx {
    ($tx:expr, $batch:expr, $target:expr) => {{
        let batch: &[Pending] = $batch;
        let err = |e: sqlx::Error| query_error($target, || batch_name(batch), e);
        let last = sqlx::query("SELECT seq, leaf_hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *$tx)
            .await
            .map_err(err)?;
        let mut last: Option<(i64, Option<String>)> = match last {
            Some(row) => Some((
                row.try_get("seq").map_err(err)?,
                row.try_get("leaf_hash").map_err(err)?,
            )),
            None => None,
        };
        if let Some((_, None)) = last {
            // Rows from before migration 0400: hash them once, in order, under this lock.
            // They are the whole log (every later append is hashed), so an unhashed row
            // anywhere else was put there behind the store's back: refuse to adopt it.
            let rows = sqlx::query(
                "SELECT seq, at_ns, actor, action, target, outcome, detail, prev_hash, leaf_hash \
                 FROM audit_log ORDER BY seq",
            )
            .fetch_all(&mut *$tx)
            .await
            .map_err(err)?;
            let rows = rows
                .iter()
                .map(EntryRow::read)
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let first = 1;
            let mut prev = Hash::ZERO;
            let mut expected = first;
            for row in &rows {
                if row.seq != expected || row.leaf_hash.is_some() || row.prev_hash.is_some() {
                    return Err(corrupt(
                        row.record_name(),
                        "unhashed audit entry: only a log written entirely before the \
                         tamper-evident ledger (migration 0400) may be hashed after the fact, \
                         as a gap-free run from seq 1",
                    ));
                }
                let leaf = leaf_hash(
                    &row.entry(prev)
                        .map_err(|reason| corrupt(row.record_name(), reason))?
                        .encode(),
                );
                sqlx::query("UPDATE audit_log SET prev_hash = $1, leaf_hash = $2 WHERE seq = $3")
                    .bind(prev.to_hex())
                    .bind(leaf.to_hex())
                    .bind(row.seq)
                    .execute(&mut *$tx)
                    .await
                    .map_err(err)?;
                prev = leaf;
                expected += 1;
            }
            last = Some((expected - 1, Some(prev.to_hex())));
        }
        let (last_seq, mut prev) = match last {
            None => (0, Hash::ZERO),
            Some((seq, Some(text))) => (
                seq,
                parse_hash(&format!("audit_log {seq}"), "leaf_hash", &text)?,
            ),
            Some((seq, None)) => {
                return Err(corrupt(format!("audit_log {seq}"), "leaf_hash is missing"));
            }
        };
        let size = to_u64("seq", last_seq)?;
        // The perfect subtrees the new leaves complete. A batch of several reads the compact
        // range of the log before it and appends to it. A lone entry (the only kind a single
        // writer makes) reads no more than it must: nothing at an even leaf index, which
        // completes nothing; otherwise its left siblings above level 0 (level 0 is `prev`), or
        // the smallest subtree of the tree before it when there are none. Either read also
        // tells whether the table is behind: rows are written in leaf order, so finding those
        // subtrees means every earlier row is there; when one is missing, catch up first.
        let mut range = None;
        let mut siblings = None;
        if batch.len() > 1 {
            range = Some(match range_from_subtrees!(&mut *$tx, size, err) {
                Some(range) => range,
                None => catch_up_subtrees!($tx, size, err)?,
            });
        } else if size % 2 == 1 {
            let mut wanted: Vec<SubtreeKey> = left_siblings(size)
                .into_iter()
                .filter(|k| k.level > 0)
                .collect();
            if wanted.is_empty() {
                wanted.extend(tree_subtrees(size).into_iter().rfind(|k| k.level > 0));
            }
            let mut found = read_subtrees!(&mut *$tx, &wanted, err)?;
            if wanted.iter().all(|k| found.contains_key(k)) {
                found.insert(SubtreeKey::leaf(size - 1), prev);
                siblings = Some(found);
            } else {
                range = Some(catch_up_subtrees!($tx, size, err)?);
            }
        }
        let mut completed = Vec::new();
        let mut leaves = Vec::with_capacity(batch.len());
        for (offset, pending) in batch.iter().enumerate() {
            let entry = LedgerEntry {
                seq: size + 1 + offset as u64,
                prev,
                record: pending.record.clone(),
            };
            let leaf = leaf_hash(&entry.encode());
            if let Some(range) = range.as_mut() {
                range.append_completing(leaf, |key, hash| completed.push((key, hash)));
            } else if let Some(found) = &siblings {
                completed.extend(
                    completed_subtrees(found, size, leaf)
                        .map_err(|e| corrupt("audit_subtrees", e))?,
                );
            }
            leaves.push((prev, leaf));
            prev = leaf;
        }
        let first_seq = last_seq + 1;
        for (chunk_index, chunk) in batch.chunks(ENTRY_BATCH).enumerate() {
            let values = (0..chunk.len())
                .map(|i| {
                    let p = 9 * i;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 8,
                        p + 9
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO audit_log (seq, at_ns, actor, action, target, outcome, detail, \
                 prev_hash, leaf_hash) VALUES {values}"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (i, pending) in chunk.iter().enumerate() {
                let offset = chunk_index * ENTRY_BATCH + i;
                let (prev, leaf) = leaves[offset];
                query = query
                    .bind(first_seq + offset as i64)
                    .bind(pending.at_ns)
                    .bind(&pending.record.actor)
                    .bind(&pending.record.action)
                    .bind(&pending.record.target)
                    .bind(pending.record.outcome.as_str())
                    .bind(&pending.detail_text)
                    .bind(prev.to_hex())
                    .bind(leaf.to_hex());
            }
            query.execute(&mut *$tx).await.map_err(err)?;
        }
        insert_subtrees!(&mut *$tx, &completed, err)?;
        Ok::<i64, StoreError>(first_seq)
    }};
}

/// Brings `audit_subtrees` up to the log inside `$tx`, which holds the append lock. A log
/// whose last row was never hashed (written before migration 0400) is left alone: its next
/// append hashes it and fills the table.
macro_rules! fill_subtrees_in_tx {
    ($tx:expr, $err:expr) => {{
        let last: Option<(i64, Option<String>)> =
            sqlx::query_as("SELECT seq, leaf_hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *$tx)
                .await
                .map_err($err)?;
        if let Some((seq, Some(_))) = last {
            let size = to_u64("seq", seq)?;
            if range_from_subtrees!(&mut *$tx, size, $err).is_none() {
                catch_up_subtrees!($tx, size, $err)?;
            }
        }
        Ok::<(), StoreError>(())
    }};
}

/// Appends records to the audit log with group commit: concurrent callers share one
/// transaction, one append lock and one durable commit.
///
/// Why: each append must hold the append lock from reading the last entry to its commit, so
/// appends take turns anyway, and one commit per entry (an fsync on SQLite; on PostgreSQL five
/// round trips plus the lock hand-over) caps the rate at one entry per commit.
///
/// A caller that finds nobody appending appends its record at once, alone, in its own task:
/// a lone writer pays nothing for the queue and never waits for a timer. Records that arrive
/// while an append is running queue up; when it ends, a committer task takes every record
/// waiting at that moment (at most [`MAX_BATCH`]), appends them in queue order in one
/// transaction, commits, and only then answers each caller with its seq; it goes on until the
/// queue is empty. When a batch fails, nothing of it is stored (one transaction) and every
/// caller in it gets the error; the next batch starts from whatever the database holds, as
/// every transaction re-reads the end of the log under the lock. That also keeps other
/// processes (the offline CLI, a second server) correct: the queue only groups this store's
/// appends, the database lock still orders everyone's.
///
/// Queued records are appended by a spawned task, so a caller that stops waiting cannot
/// cancel a batch other callers are in (its own record is still stored); a caller appending
/// alone that is cancelled loses only its own record, which was never acknowledged.
pub(crate) struct AuditAppender {
    shared: Arc<Appender>,
}

struct Appender {
    pool: Pool,
    target: String,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(Pending, Receipt)>,
    /// A caller or the committer is appending: new records queue up.
    appending: bool,
}

impl AuditAppender {
    /// `target` names the database in errors, as the store describes it.
    pub(crate) fn new(pool: Pool, target: String) -> AuditAppender {
        AuditAppender {
            shared: Arc::new(Appender {
                pool,
                target,
                queue: Mutex::new(Queue::default()),
            }),
        }
    }

    /// Appends `record` as the next ledger entry; returns its seq once it is committed.
    pub(crate) async fn append(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        let pending = Pending::new(record)?;
        let queued = {
            let mut queue = self.shared.queue();
            if queue.appending {
                let (receipt, answer) = oneshot::channel();
                queue.waiting.push_back((pending, receipt));
                Err(answer)
            } else {
                queue.appending = true;
                Ok(pending)
            }
        };
        match queued {
            Ok(pending) => {
                let turn = HandOver(Some(Arc::clone(&self.shared)));
                let result = self
                    .shared
                    .commit_batch(std::slice::from_ref(&pending))
                    .await;
                drop(turn);
                result
            }
            Err(answer) => answer.await.unwrap_or_else(|_| {
                Err(StoreError::Backend(format!(
                    "audit entry {} {} was not appended: the append task stopped before its \
                     transaction finished (runtime shutting down)",
                    record.action, record.target
                )))
            }),
        }
    }
}

/// The turn of a caller appending alone. When it ends, however it ends (done, failed, or the
/// caller cancelled), the records queued meanwhile go to a committer task.
struct HandOver(Option<Arc<Appender>>);

impl Drop for HandOver {
    fn drop(&mut self) {
        let Some(appender) = self.0.take() else {
            return;
        };
        let mut queue = appender.queue();
        if queue.waiting.is_empty() {
            queue.appending = false;
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(queue);
                // The guard is made before the task: a task dropped without ever running (its
                // runtime shutting down) still answers the queued records.
                let running = CommitterRunning(Some(Arc::clone(&appender)));
                runtime.spawn(appender.commit_queued(running));
            }
            Err(_) => {
                // No runtime to append on: answer with an error (senders dropped) rather
                // than leave them waiting.
                queue.waiting.clear();
                queue.appending = false;
            }
        }
    }
}

/// The committer's turn. If the committer stops before emptying the queue (its runtime
/// shutting down), the records it leaves are answered with an error (their senders dropped),
/// never left waiting for a committer that is gone. `None` once the committer has finished
/// normally, when a new append may already own the turn.
struct CommitterRunning(Option<Arc<Appender>>);

impl Drop for CommitterRunning {
    fn drop(&mut self) {
        if let Some(appender) = self.0.take() {
            let mut queue = appender.queue();
            queue.appending = false;
            queue.waiting.clear();
        }
    }
}

impl Appender {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The lock is only held to move records in and out of the queue, which cannot panic;
        // a poisoned queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The committer: batches until the queue is empty.
    async fn commit_queued(self: Arc<Self>, mut running: CommitterRunning) {
        loop {
            let (batch, receipts): (Vec<Pending>, Vec<Receipt>) = {
                let mut queue = self.queue();
                if queue.waiting.is_empty() {
                    // Under the same lock as the check, so a record queued after it is
                    // appended by its caller, whose turn the guard must then leave alone.
                    queue.appending = false;
                    running.0 = None;
                    return;
                }
                let take = queue.waiting.len().min(MAX_BATCH);
                queue.waiting.drain(..take).unzip()
            };
            match self.commit_batch(&batch).await {
                Ok(first_seq) => {
                    for (seq, receipt) in (first_seq..).zip(receipts) {
                        // A caller that stopped waiting still has its entry stored.
                        let _ = receipt.send(Ok(seq));
                    }
                }
                Err(e) => {
                    for receipt in receipts {
                        let _ = receipt.send(Err(copy_error(&e)));
                    }
                }
            }
        }
    }

    /// One transaction for the whole batch; the seq of its first entry once committed.
    async fn commit_batch(&self, batch: &[Pending]) -> Result<i64, StoreError> {
        let target = self.target.as_str();
        let err = |e| query_error(target, || batch_name(batch), e);
        match &self.pool {
            Pool::Sqlite(pool) => {
                // IMMEDIATE: take the write lock before reading the last entry, so no other
                // writer can chain onto it meanwhile (a deferred transaction would fail to
                // upgrade instead).
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
                let first_seq = append_batch_in_tx!(tx, batch, target)?;
                tx.commit().await.map_err(err)?;
                Ok(first_seq)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(err)?;
                // Serialises appenders until commit; readers (ACCESS SHARE) are not blocked.
                sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                let first_seq = append_batch_in_tx!(tx, batch, target)?;
                tx.commit().await.map_err(err)?;
                Ok(first_seq)
            }
        }
    }
}

/// The audit log's Merkle tree, signed heads and log keys in the gatehouse database.
pub struct SqlAuditLedger {
    pool: Pool,
    target: String,
}

impl SqlAuditLedger {
    /// Connects to a database that [`crate::open`] has already migrated.
    ///
    /// Fills the subtree table first if it is behind the log (after migration 0430 on an
    /// existing log): one pass over the leaf hashes it lacks, under the append lock. A log
    /// too damaged to fill it (a gap, an unhashed row) is left as it is, for the proofs to
    /// report and export/verify to name, rather than keeping the server from starting.
    pub async fn connect(config: &StoreConfig) -> Result<SqlAuditLedger, StoreError> {
        let (pool, target) = crate::pool::connect(config, 2, SQLITE_BUSY_TIMEOUT).await?;
        let ledger = SqlAuditLedger { pool, target };
        match ledger.fill_subtrees().await {
            Ok(()) | Err(StoreError::Corrupt { .. }) => Ok(ledger),
            Err(other) => Err(other),
        }
    }

    /// Brings the subtree table up to the log; cheap (one keyed read) when it is there.
    async fn fill_subtrees(&self) -> Result<(), StoreError> {
        let size = self.tree_size().await?;
        let caught_up = with_pool!(self, p => {
            range_from_subtrees!(p, size, |e| self.error(|| "audit subtree hashes".into(), e))
                .is_some()
        });
        if caught_up {
            return Ok(());
        }
        let what = || "filling audit subtree hashes".to_owned();
        match &self.pool {
            Pool::Sqlite(pool) => {
                let err = |e| query_error(&self.target, what, e);
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
                fill_subtrees_in_tx!(tx, err)?;
                tx.commit().await.map_err(err)?;
            }
            Pool::Postgres(pool) => {
                let err = |e| query_error(&self.target, what, e);
                let mut tx = pool.begin().await.map_err(err)?;
                sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                fill_subtrees_in_tx!(tx, err)?;
                tx.commit().await.map_err(err)?;
            }
        }
        Ok(())
    }

    /// Why a subtree asked for has no stored hash: beyond the log, or missing inside it.
    async fn missing_subtree(&self, key: SubtreeKey) -> StoreError {
        let size = match self.tree_size().await {
            Ok(size) => size,
            Err(e) => return e,
        };
        if key.leaves().end > size {
            StoreError::NotFound {
                what: format!(
                    "subtree at level {} index {} (the audit log has {size} entries)",
                    key.level, key.index
                ),
            }
        } else {
            corrupt(
                subtree_record(key),
                format!(
                    "no stored hash although the audit log has {size} entries (a row never \
                     hashed, or removed behind the store's back)"
                ),
            )
        }
    }

    fn error(&self, what: impl FnOnce() -> String, e: sqlx::Error) -> StoreError {
        query_error(&self.target, what, e)
    }

    fn head_from_parts(
        &self,
        id: i64,
        tree_size: i64,
        root_hash: &str,
        timestamp_ns: i64,
        key_id: &str,
        signature: &str,
    ) -> Result<SignedTreeHead, StoreError> {
        let record = format!("audit_tree_heads {id}");
        // Through the ledger's own JSON form, so the stored head reads back exactly as signed.
        let timestamp = Timestamp::from_nanosecond(i128::from(timestamp_ns))
            .map_err(|e| corrupt(&record, format!("timestamp_ns: {e}")))?;
        let json = serde_json::json!({
            "tree_size": to_u64(&record, tree_size)?,
            "root_hash": root_hash,
            "timestamp": timestamp,
            "key_id": key_id,
            "signature": signature,
        });
        serde_json::from_value(json).map_err(|e| corrupt(&record, e))
    }
}

macro_rules! head_columns {
    () => {
        "id, tree_size, root_hash, timestamp_ns, key_id, signature"
    };
}

macro_rules! read_heads {
    ($self:expr, $rows:expr) => {{
        let mut heads = Vec::with_capacity($rows.len());
        for row in &$rows {
            let get = |e: sqlx::Error| $self.error(|| "audit tree heads".into(), e);
            let id: i64 = row.try_get("id").map_err(get)?;
            let root: String = row.try_get("root_hash").map_err(get)?;
            let key_id: String = row.try_get("key_id").map_err(get)?;
            let signature: String = row.try_get("signature").map_err(get)?;
            heads.push($self.head_from_parts(
                id,
                row.try_get("tree_size").map_err(get)?,
                &root,
                row.try_get("timestamp_ns").map_err(get)?,
                &key_id,
                &signature,
            )?);
        }
        heads
    }};
}

#[async_trait]
impl AuditLedger for SqlAuditLedger {
    async fn tree_size(&self) -> Result<u64, StoreError> {
        let max: Option<i64> = with_pool!(self, p => {
            sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
                .fetch_one(p)
                .await
                .map_err(|e| self.error(|| "audit log size".into(), e))?
        });
        to_u64("audit_log", max.unwrap_or(0))
    }

    async fn encoded_entries(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<EncodedEntry>, StoreError> {
        let after = to_i64("after_seq", after_seq)?;
        let sql =
            format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let limit = i64::from(limit.min(MAX_PAGE_SIZE));
        let rows = with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await
                .map_err(|e| self.error(|| "audit log".into(), e))?;
            rows.iter()
                .map(EntryRow::read)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error(|| "audit log".into(), e))?
        });
        rows.iter().map(EntryRow::encoded).collect()
    }

    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        if end <= start {
            return Ok(Vec::new());
        }
        with_pool!(self, p => {
            read_leaf_hashes!(p, start, end, |e| self.error(|| "audit leaf hashes".into(), e))
        })
    }

    async fn subtree_hashes(&self, keys: &[SubtreeKey]) -> Result<Vec<Hash>, StoreError> {
        let found = with_pool!(self, p => {
            read_subtrees!(p, keys, |e| self.error(|| "audit subtree hashes".into(), e))?
        });
        let mut hashes = Vec::with_capacity(keys.len());
        for key in keys {
            match found.get(key) {
                Some(hash) => hashes.push(*hash),
                None => return Err(self.missing_subtree(*key).await),
            }
        }
        Ok(hashes)
    }

    async fn compact_range(&self, size: u64) -> Result<CompactRange, StoreError> {
        let resume: Option<(i64, i64, String)> = with_pool!(self, p => {
            sqlx::query_as(
                "SELECT id, tree_size, compact_range FROM audit_tree_heads \
                 WHERE tree_size <= $1 ORDER BY tree_size DESC, id DESC LIMIT 1",
            )
            .bind(to_i64("size", size)?)
            .fetch_optional(p)
            .await
            .map_err(|e| self.error(|| "audit tree heads".into(), e))?
        });
        let mut range = CompactRange::new();
        if let Some((id, tree_size, text)) = resume {
            let record = format!("audit_tree_heads {id}");
            let hashes: Vec<Hash> = serde_json::from_str(&text).map_err(|e| corrupt(&record, e))?;
            range = CompactRange::from_parts(to_u64(&record, tree_size)?, hashes)
                .map_err(|e| corrupt(&record, e))?;
        }
        while range.size() < size {
            let end = size.min(range.size() + LEAF_CHUNK);
            for leaf in self.leaf_hashes(range.size(), end).await? {
                range.append(leaf);
            }
        }
        Ok(range)
    }

    async fn record_tree_head(
        &self,
        head: &SignedTreeHead,
        range: &CompactRange,
    ) -> Result<(), StoreError> {
        if range.size() != head.tree_size || range.root() != head.root_hash {
            return Err(StoreError::InvalidValue {
                field: "tree head".into(),
                reason: format!(
                    "head at size {} does not match the compact range of size {}",
                    head.tree_size,
                    range.size()
                ),
            });
        }
        let signature = serde_json::to_value(head)
            .ok()
            .and_then(|v| {
                v.get("signature")
                    .and_then(|s| s.as_str())
                    .map(str::to_owned)
            })
            .ok_or_else(|| StoreError::InvalidValue {
                field: "signature".into(),
                reason: "cannot encode".into(),
            })?;
        let range_json =
            serde_json::to_string(range.hashes()).map_err(|e| StoreError::InvalidValue {
                field: "compact_range".into(),
                reason: e.to_string(),
            })?;
        let timestamp = i64::try_from(head.timestamp.as_nanosecond()).map_err(|_| {
            StoreError::InvalidValue {
                field: "timestamp".into(),
                reason: "outside the storable range".into(),
            }
        })?;
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO audit_tree_heads (tree_size, root_hash, timestamp_ns, key_id, \
                 signature, compact_range) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(to_i64("tree_size", head.tree_size)?)
            .bind(head.root_hash.to_hex())
            .bind(timestamp)
            .bind(head.key_id.as_str())
            .bind(&signature)
            .bind(&range_json)
            .execute(p)
            .await
            .map_err(|e| self.error(|| format!("tree head at size {}", head.tree_size), e))?
            .rows_affected()
        });
        Ok(())
    }

    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError> {
        let heads = with_pool!(self, p => {
            let rows = sqlx::query(concat!(
                "SELECT ",
                head_columns!(),
                " FROM audit_tree_heads ORDER BY tree_size DESC, id DESC LIMIT 1"
            ))
            .fetch_all(p)
            .await
            .map_err(|e| self.error(|| "audit tree heads".into(), e))?;
            read_heads!(self, rows)
        });
        Ok(heads.into_iter().next())
    }

    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError> {
        Ok(with_pool!(self, p => {
            let rows = sqlx::query(concat!(
                "SELECT ",
                head_columns!(),
                " FROM audit_tree_heads ORDER BY tree_size, id"
            ))
            .fetch_all(p)
            .await
            .map_err(|e| self.error(|| "audit tree heads".into(), e))?;
            read_heads!(self, rows)
        }))
    }

    async fn record_log_key(&self, key: &LogVerifyingKey, at: Timestamp) -> Result<(), StoreError> {
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO audit_log_keys (key_id, public_key, added_at_ns) VALUES ($1, $2, $3) \
                 ON CONFLICT (key_id) DO NOTHING",
            )
            .bind(key.key_id().as_str())
            .bind(key.to_base64())
            .bind(crate::rows::nanos("added_at", at)?)
            .execute(p)
            .await
            .map_err(|e| self.error(|| format!("log key {}", key.key_id()), e))?
            .rows_affected()
        });
        Ok(())
    }

    async fn log_keys(&self) -> Result<Vec<LogVerifyingKey>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, p => {
            sqlx::query_as(
                "SELECT key_id, public_key FROM audit_log_keys ORDER BY added_at_ns, key_id",
            )
            .fetch_all(p)
            .await
            .map_err(|e| self.error(|| "audit log keys".into(), e))?
        });
        rows.into_iter()
            .map(|(id, public)| {
                let record = format!("audit_log_keys {id}");
                let key = LogVerifyingKey::from_base64(&public).map_err(|e| corrupt(&record, e))?;
                if key.key_id() != &KeyId::of_public_key(&key.to_bytes())
                    || key.key_id().as_str() != id
                {
                    return Err(corrupt(&record, "key id does not match the public key"));
                }
                Ok(key)
            })
            .collect()
    }
}
