//! The `EventStore` adapter: events, signals and detection cursors on SQLite and PostgreSQL.
//!
//! It lives in the same database as the control plane (the tables come from migration 0300)
//! but has its own connection pool, so a burst of ingestion cannot take every connection the
//! API needs for authentication and audit. [`open_with_events`] opens both ports: the control
//! plane store first (which runs the migrations and refuses a newer schema), then this pool.
//!
//! Event ids must become visible in id order, because the detector reads "events after the
//! last id I processed": on PostgreSQL, identity values are handed out at insert time and
//! transactions may commit out of order, so appends take a table lock that serialises them
//! (readers are not blocked). SQLite serialises writers by itself.

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::events::{
    EventStore, MatchedField, NewEvent, NewSignal, Severity, Signal, SignalQuery, StoredEvent,
};
use gatehouse_core::store::{Store, StoreError};
use jiff::Timestamp;
use sqlx::Row;

use crate::StoreConfig;
use crate::pool::Pool;
use crate::queries::{page, query_error};
use crate::rows::{json_text, nanos, opt_nanos};

/// How long a SQLite writer waits for the write lock (the API's own writes share the file).
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Events, signals and cursors in the gatehouse database.
pub struct SqlEventStore {
    pool: Pool,
    target: String,
}

/// Opens the control-plane store and the event store over the same database.
pub async fn open_with_events(
    config: &StoreConfig,
) -> Result<(Arc<dyn Store>, Arc<dyn EventStore>), StoreError> {
    let store = crate::open(config).await?;
    let events: Arc<dyn EventStore> = Arc::new(SqlEventStore::connect(config).await?);
    Ok((store, events))
}

impl SqlEventStore {
    /// Connects to a database that [`crate::open`] has already migrated.
    async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let (pool, target) = crate::pool::connect(config, 4, SQLITE_BUSY_TIMEOUT).await?;
        Ok(Self { pool, target })
    }

    fn error(&self, what: impl FnOnce() -> String, e: sqlx::Error) -> StoreError {
        query_error(&self.target, what, e)
    }
}

fn corrupt(record: String, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        record,
        reason: reason.to_string(),
    }
}

fn timestamp(record: &str, ns: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_nanosecond(i128::from(ns)).map_err(|e| corrupt(record.to_owned(), e))
}

fn opt_timestamp(record: &str, ns: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ns.map(|ns| timestamp(record, ns)).transpose()
}

/// Reads one `events` row (columns as named in [`EVENT_COLUMNS`]).
fn stored_event<R>(row: &R) -> Result<StoredEvent, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = row
        .try_get("id")
        .map_err(|e| corrupt("events row".into(), e))?;
    let record = format!("events {id}");
    let get_i = |c: &str| -> Result<Option<i64>, StoreError> {
        row.try_get::<Option<i64>, _>(c)
            .map_err(|e| corrupt(record.clone(), e))
    };
    let get_s = |c: &str| -> Result<String, StoreError> {
        row.try_get::<String, _>(c)
            .map_err(|e| corrupt(record.clone(), e))
    };
    let received = get_i("received_at_ns")?
        .ok_or_else(|| corrupt(record.clone(), "received_at_ns is null"))?;
    let ecs_text = get_s("ecs")?;
    Ok(StoredEvent {
        id,
        source: get_s("source")?,
        received_at: timestamp(&record, received)?,
        event_time: opt_timestamp(&record, get_i("event_time_ns")?)?,
        ecs: serde_json::from_str(&ecs_text).map_err(|e| corrupt(record.clone(), e))?,
        raw: get_s("raw")?,
    })
}

fn stored_signal<R>(row: &R) -> Result<Signal, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = row
        .try_get("id")
        .map_err(|e| corrupt("signals row".into(), e))?;
    let record = format!("signals {id}");
    let get_i = |c: &str| -> Result<Option<i64>, StoreError> {
        row.try_get::<Option<i64>, _>(c)
            .map_err(|e| corrupt(record.clone(), e))
    };
    let get_s = |c: &str| -> Result<String, StoreError> {
        row.try_get::<String, _>(c)
            .map_err(|e| corrupt(record.clone(), e))
    };
    let required = |c: &str| -> Result<i64, StoreError> {
        get_i(c)?.ok_or_else(|| corrupt(record.clone(), format!("{c} is null")))
    };
    let severity_text = get_s("severity")?;
    let severity = Severity::parse(&severity_text).ok_or_else(|| {
        corrupt(
            record.clone(),
            format!("unknown severity {severity_text:?}"),
        )
    })?;
    let matched_fields: Vec<MatchedField> = serde_json::from_str(&get_s("matched_fields")?)
        .map_err(|e| corrupt(record.clone(), format!("matched_fields: {e}")))?;
    let alerts: Vec<String> = serde_json::from_str(&get_s("alerts")?)
        .map_err(|e| corrupt(record.clone(), format!("alerts: {e}")))?;
    Ok(Signal {
        id,
        signal: NewSignal {
            rule_id: get_s("rule_id")?,
            rule_title: get_s("rule_title")?,
            severity,
            dedup_key: get_s("dedup_key")?,
            matched_fields,
            event_id: required("event_id")?,
            event_source: get_s("event_source")?,
            event_time: opt_timestamp(&record, get_i("event_time_ns")?)?,
            event_received_at: timestamp(&record, required("event_received_at_ns")?)?,
            alerts,
            created_at: timestamp(&record, required("created_at_ns")?)?,
        },
    })
}

const EVENT_COLUMNS: &str = "id, source, received_at_ns, event_time_ns, ecs, raw";
const SIGNAL_COLUMNS: &str = "id, rule_id, rule_title, severity, dedup_key, matched_fields, \
     event_id, event_source, event_time_ns, event_received_at_ns, alerts, created_at_ns";

/// A signal's values in column order (after `id`), converted before any transaction starts
/// so a bad value fails the batch without touching the database.
struct SignalRow {
    matched_fields: String,
    alerts: String,
    event_time_ns: Option<i64>,
    event_received_at_ns: i64,
    created_at_ns: i64,
}

#[async_trait]
impl EventStore for SqlEventStore {
    async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>, StoreError> {
        let mut rows = Vec::with_capacity(events.len());
        for e in events {
            rows.push((
                nanos("received_at", e.received_at)?,
                opt_nanos("event_time", e.event_time)?,
                json_text("ecs", &e.ecs)?,
            ));
        }
        const INSERT: &str = "INSERT INTO events (source, received_at_ns, event_time_ns, ecs, raw) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let what = || format!("{} events", events.len());
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(|e| self.error(what, e))?;
            if matches!(self.pool, Pool::Postgres(_)) {
                // Ids must commit in id order (see the module documentation).
                sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.error(what, e))?;
            }
            let mut ids = Vec::with_capacity(events.len());
            for (e, (received, time, ecs)) in events.iter().zip(&rows) {
                let id: i64 = sqlx::query_scalar(INSERT)
                    .bind(&e.source)
                    .bind(*received)
                    .bind(*time)
                    .bind(ecs)
                    .bind(&e.raw)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|err| self.error(what, err))?;
                ids.push(id);
            }
            tx.commit().await.map_err(|e| self.error(what, e))?;
            Ok(ids)
        })
    }

    async fn events_after(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2");
        with_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(after_id)
                .bind(page(limit))
                .fetch_all(pool)
                .await
                .map_err(|e| self.error(|| "events".into(), e))?;
            rows.iter().map(stored_event).collect()
        })
    }

    async fn detection_cursor(&self, detector: &str) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            let cursor: Option<i64> = sqlx::query_scalar(
                "SELECT last_event_id FROM detection_cursors WHERE detector = $1",
            )
            .bind(detector)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.error(|| format!("detection cursor {detector}"), e))?;
            Ok(cursor.unwrap_or(0))
        })
    }

    async fn record_detections(
        &self,
        detector: &str,
        signals: &[NewSignal],
        cursor: i64,
    ) -> Result<u64, StoreError> {
        let mut rows = Vec::with_capacity(signals.len());
        for s in signals {
            rows.push(SignalRow {
                matched_fields: json_text("matched_fields", &s.matched_fields)?,
                alerts: json_text("alerts", &s.alerts)?,
                event_time_ns: opt_nanos("event_time", s.event_time)?,
                event_received_at_ns: nanos("event_received_at", s.event_received_at)?,
                created_at_ns: nanos("created_at", s.created_at)?,
            });
        }
        const INSERT: &str = "INSERT INTO signals (rule_id, rule_title, severity, dedup_key, \
             matched_fields, event_id, event_source, event_time_ns, event_received_at_ns, alerts, \
             created_at_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (rule_id, event_id) DO NOTHING";
        // The cursor only moves forward, so a late or repeated batch cannot rewind it.
        const CURSOR: &str = "INSERT INTO detection_cursors (detector, last_event_id) \
             VALUES ($1, $2) ON CONFLICT (detector) DO UPDATE SET last_event_id = \
             CASE WHEN excluded.last_event_id > detection_cursors.last_event_id \
             THEN excluded.last_event_id ELSE detection_cursors.last_event_id END";
        let what = || format!("detections of {detector}");
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(|e| self.error(what, e))?;
            let mut inserted = 0u64;
            for (s, r) in signals.iter().zip(&rows) {
                let done = sqlx::query(INSERT)
                    .bind(&s.rule_id)
                    .bind(&s.rule_title)
                    .bind(s.severity.as_str())
                    .bind(&s.dedup_key)
                    .bind(&r.matched_fields)
                    .bind(s.event_id)
                    .bind(&s.event_source)
                    .bind(r.event_time_ns)
                    .bind(r.event_received_at_ns)
                    .bind(&r.alerts)
                    .bind(r.created_at_ns)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.error(what, e))?;
                inserted += done.rows_affected();
            }
            sqlx::query(CURSOR)
                .bind(detector)
                .bind(cursor.max(0))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(what, e))?;
            tx.commit().await.map_err(|e| self.error(what, e))?;
            Ok(inserted)
        })
    }

    async fn list_signals(&self, query: &SignalQuery) -> Result<Vec<Signal>, StoreError> {
        let sql = format!(
            "SELECT {SIGNAL_COLUMNS} FROM signals WHERE id > $1 \
             AND ($2 IS NULL OR rule_id = $2) ORDER BY id LIMIT $3"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(query.after_id)
                .bind(query.rule_id.as_deref())
                .bind(page(query.limit))
                .fetch_all(pool)
                .await
                .map_err(|e| self.error(|| "signals".into(), e))?;
            rows.iter().map(stored_signal).collect()
        })
    }

    async fn event_sources(&self) -> Result<Vec<String>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT DISTINCT source FROM events ORDER BY source")
                .fetch_all(pool)
                .await
                .map_err(|e| self.error(|| "event sources".into(), e))
        })
    }

    async fn purge_events(
        &self,
        source: &str,
        before: Timestamp,
        processed_up_to: i64,
    ) -> Result<u64, StoreError> {
        let before = nanos("before", before)?;
        with_pool!(self, pool => {
            let done = sqlx::query(
                "DELETE FROM events WHERE source = $1 AND received_at_ns < $2 AND id <= $3",
            )
                .bind(source)
                .bind(before)
                .bind(processed_up_to)
                .execute(pool)
                .await
                .map_err(|e| self.error(|| format!("events of {source}"), e))?;
            Ok(done.rows_affected())
        })
    }
}
