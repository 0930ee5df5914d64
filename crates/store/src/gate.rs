//! The `GateStore` adapter: the release gate's records on SQLite and PostgreSQL.
//!
//! The tables come from migration 0200 and live in the control plane's database, reached
//! through a pool of their own (like the event store) so that large evidence uploads cannot
//! take every connection authentication and audit need. [`open_with_gate`] opens the control
//! plane store first (it runs the migrations and refuses a newer schema), then this pool.
//!
//! Every write runs in one transaction that first compare-and-sets the release's row in
//! `gate_heads` (see `gatehouse_core::gate::store`): on PostgreSQL the `UPDATE` takes the row
//! lock, so a concurrent writer waits and then finds the revision moved; SQLite serialises
//! writers by itself. Evidence bytes are not written here but through the `BlobStore` port
//! (`blobs.rs`, sealed and chunked) before the evidence row, which references them.
//!
//! The gate metrics read every release, so the releases are also listed here, in pages
//! (`releases_before`), keyset-paginated on the `releases_by_created` index.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::gate::store::{
    EvidenceKind, GateRecord, GateStore, GateWrite, GateWriteError, ReleaseCursor, StoredEvidence,
    StoredGateRecords,
};
use gatehouse_core::gate::{
    Approval, Bypass, EmergencyRetrospective, Exception, RequirementRecord, Risk,
};
use gatehouse_core::release::{Release, ReleaseId};
use gatehouse_core::store::{Store, StoreError};
use jiff::Timestamp;
use sqlx::Row;

use crate::StoreConfig;
use crate::pool::Pool;
use crate::queries::query_error;

/// How long a SQLite writer waits for the write lock (the API's own writes share the file).
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The release gate's records in the gatehouse database.
pub struct SqlGateStore {
    pool: Pool,
    target: String,
}

/// Opens the control-plane store and the gate store over the same database.
pub async fn open_with_gate(
    config: &StoreConfig,
) -> Result<(Arc<dyn Store>, Arc<dyn GateStore>), StoreError> {
    let store = crate::open(config).await?;
    let gate: Arc<dyn GateStore> = Arc::new(SqlGateStore::connect(config).await?);
    Ok((store, gate))
}

impl SqlGateStore {
    /// Connects to a database that [`crate::open`] has already migrated.
    pub async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let (pool, target) = crate::pool::connect(config, 4, SQLITE_BUSY_TIMEOUT).await?;
        Ok(Self { pool, target })
    }

    fn error(&self, what: impl FnOnce() -> String, e: sqlx::Error) -> StoreError {
        query_error(&self.target, what, e)
    }
}

fn corrupt(record: impl Into<String>, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        record: record.into(),
        reason: reason.to_string(),
    }
}

fn timestamp(record: &str, ns: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_nanosecond(i128::from(ns)).map_err(|e| corrupt(record, e))
}

fn nanos(field: &str, at: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(at.as_nanosecond()).map_err(|_| StoreError::InvalidValue {
        field: field.to_owned(),
        reason: format!("{at} is outside the storable range"),
    })
}

fn sql_int(field: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidValue {
        field: field.to_owned(),
        reason: format!("{value} is too large"),
    })
}

fn unsigned(record: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(record, format!("negative value {value}")))
}

fn to_json<T: serde::Serialize>(field: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::InvalidValue {
        field: field.to_owned(),
        reason: e.to_string(),
    })
}

/// The row of `gate_records` a record becomes: type, id, revision, time and JSON body.
fn record_row(record: &GateRecord) -> Result<(&'static str, String, i64, i64, String), StoreError> {
    Ok(match record {
        GateRecord::Requirement(r) => (
            "requirement",
            r.requirement.clone(),
            sql_int("revision", r.revision)?,
            nanos("at", r.at)?,
            to_json("requirement", r)?,
        ),
        GateRecord::Exception(x) => (
            "exception",
            x.id.clone(),
            sql_int("revision", x.revision)?,
            nanos("approved_at", x.approved_at)?,
            to_json("exception", x)?,
        ),
        GateRecord::Risk(r) => (
            "risk",
            r.id.clone(),
            sql_int("revision", r.revision)?,
            0,
            to_json("risk", r)?,
        ),
        GateRecord::Approval(a) => (
            "approval",
            a.id.clone(),
            sql_int("revision", a.revision)?,
            nanos("at", a.at)?,
            to_json("approval", a)?,
        ),
        GateRecord::Bypass(b) => (
            "bypass",
            b.id.clone(),
            sql_int("revision", b.revision)?,
            nanos("at", b.at)?,
            to_json("bypass", b)?,
        ),
        GateRecord::Retrospective(r) => (
            "retrospective",
            "retrospective".to_owned(),
            0,
            nanos("completed_at", r.completed_at)?,
            to_json("retrospective", r)?,
        ),
        GateRecord::Evidence { .. } => {
            return Err(StoreError::InvalidValue {
                field: "record".into(),
                reason: "evidence is stored in gate_evidence, not gate_records".into(),
            });
        }
    })
}

/// Adds the JSON `body` of a `gate_records` row to `records`, keeping only the latest version
/// of each exception and risk (rows arrive in `seq` order).
fn add_record(
    records: &mut StoredGateRecords,
    seq: i64,
    record_type: &str,
    body: &str,
) -> Result<(), StoreError> {
    let name = || format!("gate_records {seq}");
    fn parse<T: serde::de::DeserializeOwned>(name: String, body: &str) -> Result<T, StoreError> {
        serde_json::from_str(body).map_err(|e| corrupt(name, e))
    }
    match record_type {
        "requirement" => records
            .requirements
            .push(parse::<RequirementRecord>(name(), body)?),
        "exception" => {
            let x: Exception = parse(name(), body)?;
            records.exceptions.retain(|old| old.id != x.id);
            records.exceptions.push(x);
        }
        "risk" => {
            let r: Risk = parse(name(), body)?;
            records.risks.retain(|old| old.id != r.id);
            records.risks.push(r);
        }
        "approval" => records.approvals.push(parse::<Approval>(name(), body)?),
        "bypass" => records.bypasses.push(parse::<Bypass>(name(), body)?),
        "retrospective" => {
            records.retrospective = Some(parse::<EmergencyRetrospective>(name(), body)?);
        }
        other => return Err(corrupt(name(), format!("unknown record type {other:?}"))),
    }
    Ok(())
}

#[async_trait]
impl GateStore for SqlGateStore {
    async fn releases_before(
        &self,
        before: Timestamp,
        after: Option<&ReleaseCursor>,
        limit: u32,
    ) -> Result<Vec<Release>, StoreError> {
        // Keyset pagination on the `releases_by_created` index: each page starts strictly
        // after the last row of the previous one, so a walk neither repeats nor skips a
        // release however many share a creation time (and costs no OFFSET scan).
        let cursor = after
            .map(|c| Ok::<_, StoreError>((nanos("after", c.created_at)?, c.id.to_string())))
            .transpose()?;
        let (after_ns, after_id) = cursor.unzip();
        with_pool!(self, p => {
            let rows = sqlx::query(concat!(
                "SELECT ",
                crate::queries::release_columns!(),
                " FROM releases WHERE created_at_ns < $1 \
                 AND ($2 IS NULL OR created_at_ns < $2 OR (created_at_ns = $2 AND id < $3)) \
                 ORDER BY created_at_ns DESC, id DESC LIMIT $4"
            ))
            .bind(nanos("before", before)?)
            .bind(after_ns)
            .bind(after_id)
            .bind(crate::queries::page(limit))
            .fetch_all(p)
            .await
            .map_err(|e| self.error(|| "releases".into(), e))?;
            rows.iter().map(crate::rows::release).collect()
        })
    }

    async fn load_gate_records(&self, release: ReleaseId) -> Result<StoredGateRecords, StoreError> {
        let id = release.to_string();
        let mut records = StoredGateRecords {
            revision: 0,
            evidence: Vec::new(),
            requirements: Vec::new(),
            exceptions: Vec::new(),
            risks: Vec::new(),
            approvals: Vec::new(),
            bypasses: Vec::new(),
            retrospective: None,
        };
        with_pool!(self, p => {
            // One read transaction, so the head, evidence and records are one consistent
            // snapshot (a write committing between the queries cannot half-appear).
            let mut tx = p.begin().await.map_err(|e| self.error(|| "gate state".into(), e))?;
            let head: Option<i64> =
                sqlx::query_scalar("SELECT revision FROM gate_heads WHERE release_id = $1")
                    .bind(&id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.error(|| "gate head".into(), e))?;
            records.revision = unsigned(&format!("gate_heads {id}"), head.unwrap_or(0))?;
            let rows = sqlx::query(
                "SELECT id, kind, sha256, size, attached_at_ns, attached_by, supersedes, revision \
                 FROM gate_evidence WHERE release_id = $1 ORDER BY revision, id",
            )
            .bind(&id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.error(|| "gate evidence".into(), e))?;
            for row in &rows {
                let item_id: String =
                    row.try_get("id").map_err(|e| corrupt("gate_evidence row", e))?;
                let name = format!("gate_evidence {id}/{item_id}");
                let get_s = |c: &str| -> Result<String, StoreError> {
                    row.try_get::<String, _>(c).map_err(|e| corrupt(name.clone(), e))
                };
                let get_i = |c: &str| -> Result<i64, StoreError> {
                    row.try_get::<i64, _>(c).map_err(|e| corrupt(name.clone(), e))
                };
                let kind_text = get_s("kind")?;
                records.evidence.push(StoredEvidence {
                    kind: EvidenceKind::from_str(&kind_text)
                        .map_err(|e| corrupt(name.clone(), e))?,
                    sha256: get_s("sha256")?,
                    size: unsigned(&name, get_i("size")?)?,
                    attached_at: timestamp(&name, get_i("attached_at_ns")?)?,
                    attached_by: get_s("attached_by")?,
                    supersedes: row
                        .try_get::<Option<String>, _>("supersedes")
                        .map_err(|e| corrupt(name.clone(), e))?,
                    revision: unsigned(&name, get_i("revision")?)?,
                    id: item_id,
                });
            }
            let rows = sqlx::query(
                "SELECT seq, record_type, body FROM gate_records WHERE release_id = $1 \
                 ORDER BY seq",
            )
            .bind(&id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.error(|| "gate records".into(), e))?;
            for row in &rows {
                let seq: i64 = row.try_get("seq").map_err(|e| corrupt("gate_records row", e))?;
                let record_type: String =
                    row.try_get("record_type").map_err(|e| corrupt("gate_records row", e))?;
                let body: String =
                    row.try_get("body").map_err(|e| corrupt("gate_records row", e))?;
                add_record(&mut records, seq, &record_type, &body)?;
            }
            tx.commit().await.map_err(|e| self.error(|| "gate state".into(), e))?;
        });
        Ok(records)
    }

    async fn write_gate_record(&self, write: &GateWrite) -> Result<(), GateWriteError> {
        if let Some(problem) = write.revision_problem() {
            return Err(StoreError::InvalidValue {
                field: "revision".into(),
                reason: problem,
            }
            .into());
        }
        let id = write.release.to_string();
        let based_on = sql_int("revision", write.based_on)?;
        let next = match write.record.material_revision() {
            Some(rev) => sql_int("revision", rev)?,
            None => based_on,
        };
        let what = || write.record.describe();
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(|e| self.error(what, e))?;
            // The first statement writes, so SQLite takes its write lock here and a concurrent
            // writer waits instead of failing later on a lock upgrade.
            sqlx::query(
                "INSERT INTO gate_heads (release_id, revision) VALUES ($1, 0) \
                 ON CONFLICT (release_id) DO NOTHING",
            )
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(|| format!("release {id}"), e))?;
            let moved = sqlx::query(
                "UPDATE gate_heads SET revision = $2 WHERE release_id = $1 AND revision = $3",
            )
            .bind(&id)
            .bind(next)
            .bind(based_on)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(what, e))?
            .rows_affected()
                == 0;
            if moved {
                let current: i64 =
                    sqlx::query_scalar("SELECT revision FROM gate_heads WHERE release_id = $1")
                        .bind(&id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| self.error(what, e))?;
                return Err(GateWriteError::Moved {
                    release: write.release,
                    based_on: write.based_on,
                    current: unsigned(&format!("gate_heads {id}"), current)?,
                });
            }
            match &write.record {
                GateRecord::Evidence { item } => {
                    // The sealed bytes were stored through the BlobStore port; the foreign key
                    // refuses an item whose blob is missing.
                    let size = sql_int("size", item.size)?;
                    sqlx::query(
                        "INSERT INTO gate_evidence (release_id, id, kind, sha256, size, \
                         attached_at_ns, attached_by, supersedes, revision) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&id)
                    .bind(&item.id)
                    .bind(item.kind.to_string())
                    .bind(&item.sha256)
                    .bind(size)
                    .bind(nanos("attached_at", item.attached_at)?)
                    .bind(&item.attached_by)
                    .bind(item.supersedes.as_deref())
                    .bind(next)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.error(what, e))?;
                }
                other => {
                    let (record_type, record_id, revision, at_ns, body) = record_row(other)?;
                    sqlx::query(
                        "INSERT INTO gate_records (release_id, record_type, record_id, \
                         revision, at_ns, body) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&id)
                    .bind(record_type)
                    .bind(record_id)
                    .bind(revision)
                    .bind(at_ns)
                    .bind(body)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.error(what, e))?;
                }
            }
            tx.commit().await.map_err(|e| self.error(what, e))?;
        });
        Ok(())
    }
}
