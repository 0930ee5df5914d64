//! The `BlobStore` adapter: sealed evidence blobs on SQLite and PostgreSQL.
//!
//! Tables come from migrations 0200 (`evidence_blobs`) and 0410 (`stream_header`, `kek_id`,
//! `chunk_count`, `evidence_chunks`). The store only moves opaque sealed bytes: it never sees
//! a key or plaintext, except the plaintext of rows written before 0410, which it hands over
//! once so the caller can seal them ([`BlobStore::seal_plain`]).
//!
//! A put is one transaction that first claims the digest with `INSERT … ON CONFLICT DO
//! NOTHING`: a concurrent put of the same digest waits on that row (PostgreSQL) or on the write
//! lock (SQLite) and then finds it stored, so each blob is written once. The chunks follow in
//! the same transaction, pulled one at a time from the caller's source (a spool file), so a
//! 2 GB blob never sits in memory and a failure half-way leaves no chunk row. Reads fetch a
//! page of chunks per query.
//!
//! The pool is its own (like the gate's and the event store's), so a long upload cannot take
//! the connections authentication and audit need.

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::blobs::{
    BlobKey, BlobKeyRow, BlobStore, ChunkSource, KeyUsage, NewBlob, PutOutcome, StoredBlob,
};
use gatehouse_core::store::StoreError;
use sqlx::Row;

use crate::StoreConfig;
use crate::pool::Pool;
use crate::queries::query_error;

/// How long a SQLite writer waits for the write lock: a large upload holds it while its
/// chunks are written.
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sealed evidence blobs in the gatehouse database.
pub struct SqlBlobStore {
    pool: Pool,
    target: String,
}

/// Opens the blob store over a database that [`crate::open`] has migrated.
pub async fn open_blobs(config: &StoreConfig) -> Result<Arc<dyn BlobStore>, StoreError> {
    Ok(Arc::new(SqlBlobStore::connect(config).await?))
}

impl SqlBlobStore {
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

fn sql_int(field: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidValue {
        field: field.to_owned(),
        reason: format!("{value} is too large"),
    })
}

fn unsigned(record: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(record, format!("negative value {value}")))
}

fn source_failed(sha256: &str, e: &std::io::Error) -> StoreError {
    StoreError::InvalidValue {
        field: format!("evidence blob {sha256}"),
        reason: format!("reading its sealed chunks failed: {e}; nothing was stored"),
    }
}

fn nanos(at: jiff::Timestamp) -> Result<i64, StoreError> {
    i64::try_from(at.as_nanosecond()).map_err(|_| StoreError::InvalidValue {
        field: "stored_at".into(),
        reason: format!("{at} is outside the storable range"),
    })
}

/// Writes the chunks of `source` as `evidence_chunks` rows of `sha256`, in one transaction the
/// caller owns; returns how many.
macro_rules! write_chunks {
    ($self:expr, $tx:expr, $sha:expr, $source:expr) => {{
        let mut index: i64 = 0;
        loop {
            let chunk = match $source.next_chunk() {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(source_failed($sha, &e)),
            };
            sqlx::query("INSERT INTO evidence_chunks (sha256, idx, sealed) VALUES ($1, $2, $3)")
                .bind($sha)
                .bind(index)
                .bind(chunk.as_slice())
                .execute(&mut *$tx)
                .await
                .map_err(|e| $self.error(|| format!("evidence blob {} chunk {index}", $sha), e))?;
            index += 1;
        }
        index
    }};
}

#[async_trait]
impl BlobStore for SqlBlobStore {
    async fn put(
        &self,
        blob: &NewBlob,
        source: &mut dyn ChunkSource,
    ) -> Result<PutOutcome, StoreError> {
        let sha = blob.sha256.as_str();
        let what = || format!("evidence blob {sha}");
        let size = sql_int("size", blob.size)?;
        let stored_at = nanos(blob.stored_at)?;
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(|e| self.error(what, e))?;
            // Claims the digest first: this write takes SQLite's write lock, and on PostgreSQL
            // a concurrent put of the same digest waits here for this transaction to end.
            let claimed = sqlx::query(
                "INSERT INTO evidence_blobs (sha256, size, content, stored_at_ns, kek_id, \
                 stream_header, chunk_count) VALUES ($1, $2, $3, $4, $5, $6, 0) \
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha)
            .bind(size)
            .bind(&[] as &[u8])
            .bind(stored_at)
            .bind(&blob.key.kek_id)
            .bind(blob.key.header.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(what, e))?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await.map_err(|e| self.error(what, e))?;
                return Ok(PutOutcome::AlreadyStored);
            }
            let count = write_chunks!(self, tx, sha, source);
            sqlx::query("UPDATE evidence_blobs SET chunk_count = $2 WHERE sha256 = $1")
                .bind(sha)
                .bind(count)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(what, e))?;
            tx.commit().await.map_err(|e| self.error(what, e))?;
        });
        Ok(PutOutcome::Stored)
    }

    async fn blob(&self, sha256: &str) -> Result<Option<StoredBlob>, StoreError> {
        let name = format!("evidence_blobs {sha256}");
        let row = with_pool!(self, p => {
            sqlx::query(
                "SELECT size, content, kek_id, stream_header, chunk_count FROM evidence_blobs \
                 WHERE sha256 = $1",
            )
            .bind(sha256)
            .fetch_optional(p)
            .await
            .map_err(|e| self.error(|| format!("evidence blob {sha256}"), e))?
            .map(|row| -> Result<StoredBlob, StoreError> {
                let kek_id: Option<String> = row.try_get("kek_id").map_err(|e| corrupt(&name, e))?;
                match kek_id {
                    None => Ok(StoredBlob::Plain {
                        content: row.try_get("content").map_err(|e| corrupt(&name, e))?,
                    }),
                    Some(kek_id) => {
                        let header: Option<Vec<u8>> =
                            row.try_get("stream_header").map_err(|e| corrupt(&name, e))?;
                        let chunks: Option<i64> =
                            row.try_get("chunk_count").map_err(|e| corrupt(&name, e))?;
                        let size: i64 = row.try_get("size").map_err(|e| corrupt(&name, e))?;
                        Ok(StoredBlob::Sealed {
                            size: unsigned(&name, size)?,
                            key: BlobKey {
                                kek_id,
                                header: header
                                    .ok_or_else(|| corrupt(&name, "sealed without a header"))?,
                            },
                            chunk_count: unsigned(&name, chunks.unwrap_or(-1))?,
                        })
                    }
                }
            })
        });
        row.transpose()
    }

    async fn chunks(
        &self,
        sha256: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let from = sql_int("from", from)?;
        let rows: Vec<(i64, Vec<u8>)> = with_pool!(self, p => {
            sqlx::query_as(
                "SELECT idx, sealed FROM evidence_chunks WHERE sha256 = $1 AND idx >= $2 \
                 ORDER BY idx LIMIT $3",
            )
            .bind(sha256)
            .bind(from)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .map_err(|e| self.error(|| format!("evidence blob {sha256} chunks"), e))?
        });
        // A gap in the indexes is a deleted chunk row; say so rather than let the reader see
        // a shorter stream (which it would reject too, less clearly).
        let mut out = Vec::with_capacity(rows.len());
        for (offset, (idx, sealed)) in rows.into_iter().enumerate() {
            let expected = from + i64::try_from(offset).unwrap_or(i64::MAX);
            if idx != expected {
                return Err(corrupt(
                    format!("evidence_chunks {sha256}"),
                    format!("chunk {expected} is missing"),
                ));
            }
            out.push(sealed);
        }
        Ok(out)
    }

    async fn delete_unreferenced(&self, sha256: &str) -> Result<bool, StoreError> {
        let what = || format!("evidence blob {sha256}");
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(|e| self.error(what, e))?;
            // Chunks first (they reference the blob row), then the row; both only while no
            // evidence row refers to the blob. If a reference appears in between, the row
            // stays and the transaction is rolled back, restoring the chunks; a reference
            // committed under our feet makes the row delete fail on its foreign key, which
            // rolls back too. Either way nothing an evidence row needs is lost.
            sqlx::query(
                "DELETE FROM evidence_chunks WHERE sha256 = $1 AND NOT EXISTS \
                 (SELECT 1 FROM gate_evidence WHERE sha256 = $1)",
            )
            .bind(sha256)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(what, e))?;
            let gone = sqlx::query(
                "DELETE FROM evidence_blobs WHERE sha256 = $1 AND NOT EXISTS \
                 (SELECT 1 FROM gate_evidence WHERE sha256 = $1)",
            )
            .bind(sha256)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(what, e))?
            .rows_affected();
            if gone == 0 {
                tx.rollback().await.map_err(|e| self.error(what, e))?;
                return Ok(false);
            }
            tx.commit().await.map_err(|e| self.error(what, e))?;
            Ok(true)
        })
    }

    async fn keys_not_wrapped_by(
        &self,
        kek_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BlobKeyRow>, StoreError> {
        let rows: Vec<(String, String, Option<Vec<u8>>)> = with_pool!(self, p => {
            sqlx::query_as(
                "SELECT sha256, kek_id, stream_header FROM evidence_blobs \
                 WHERE kek_id IS NOT NULL AND kek_id <> $1 AND sha256 > $2 \
                 ORDER BY sha256 LIMIT $3",
            )
            .bind(kek_id)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .map_err(|e| self.error(|| "evidence blob keys".into(), e))?
        });
        rows.into_iter()
            .map(|(sha256, kek_id, header)| {
                let header = header.ok_or_else(|| {
                    corrupt(
                        format!("evidence_blobs {sha256}"),
                        "sealed without a header",
                    )
                })?;
                Ok(BlobKeyRow {
                    sha256,
                    key: BlobKey { kek_id, header },
                })
            })
            .collect()
    }

    async fn replace_key(
        &self,
        sha256: &str,
        old: &BlobKey,
        new: &BlobKey,
    ) -> Result<bool, StoreError> {
        let changed = with_pool!(self, p => {
            sqlx::query(
                "UPDATE evidence_blobs SET kek_id = $2, stream_header = $3 \
                 WHERE sha256 = $1 AND kek_id = $4 AND stream_header = $5",
            )
            .bind(sha256)
            .bind(&new.kek_id)
            .bind(new.header.as_slice())
            .bind(&old.kek_id)
            .bind(old.header.as_slice())
            .execute(p)
            .await
            .map_err(|e| self.error(|| format!("evidence blob {sha256} key"), e))?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    async fn key_usage(&self) -> Result<Vec<KeyUsage>, StoreError> {
        let rows: Vec<(Option<String>, i64)> = with_pool!(self, p => {
            sqlx::query_as(
                "SELECT kek_id, COUNT(*) FROM evidence_blobs GROUP BY kek_id ORDER BY kek_id",
            )
            .fetch_all(p)
            .await
            .map_err(|e| self.error(|| "evidence blob key usage".into(), e))?
        });
        rows.into_iter()
            .map(|(kek_id, n)| {
                Ok(KeyUsage {
                    kek_id,
                    blobs: unsigned("evidence_blobs count", n)?,
                })
            })
            .collect()
    }

    async fn plain_blobs(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        with_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT sha256 FROM evidence_blobs WHERE kek_id IS NULL ORDER BY sha256 LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .map_err(|e| self.error(|| "plaintext evidence blobs".into(), e))
        })
    }

    async fn seal_plain(
        &self,
        sha256: &str,
        key: &BlobKey,
        source: &mut dyn ChunkSource,
    ) -> Result<bool, StoreError> {
        let what = || format!("evidence blob {sha256}");
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(|e| self.error(what, e))?;
            let claimed = sqlx::query(
                "UPDATE evidence_blobs SET kek_id = $2, stream_header = $3, content = $4 \
                 WHERE sha256 = $1 AND kek_id IS NULL",
            )
            .bind(sha256)
            .bind(&key.kek_id)
            .bind(key.header.as_slice())
            .bind(&[] as &[u8])
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(what, e))?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await.map_err(|e| self.error(what, e))?;
                return Ok(false);
            }
            let count = write_chunks!(self, tx, sha256, source);
            sqlx::query("UPDATE evidence_blobs SET chunk_count = $2 WHERE sha256 = $1")
                .bind(sha256)
                .bind(count)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(what, e))?;
            tx.commit().await.map_err(|e| self.error(what, e))?;
        });
        Ok(true)
    }
}
