//! `/api/v1/events` (ingestion) and `/api/v1/signals` (detection results).
//!
//! Ingestion takes NDJSON — one JSON object per line, optionally gzip-compressed — and answers
//! only after the events are committed, so an acknowledged event is never lost. A malformed
//! line does not fail the request: it is counted and reported with its line number while every
//! good line is stored. Both the body as sent and the body after decompression are bounded
//! (413 above either), so neither a huge upload nor a compression bomb can exhaust memory.
//! Detection happens after the answer, in the background worker (`crate::detection`).

use std::io::Read;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::events::{DEFAULT_SOURCE, NewEvent, Signal, SignalQuery, valid_source_name};
use gatehouse_core::store::MAX_PAGE_SIZE;
use gatehouse_detect::event::{event_timestamp, parse_timestamp};
use gatehouse_detect::mapping::SourceMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::audit;
use crate::auth::Authenticated;
use crate::authz::{self, Permission};
use crate::detection::Detection;
use crate::ecs;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// At most this many malformed lines are listed in one answer (all are counted).
pub const MAX_REPORTED_LINES: usize = 100;

/// Query of `POST /api/v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IngestParams {
    /// Event source name (`[A-Za-z0-9._-]`, at most 64); retention is per source. Default
    /// `default`.
    pub source: Option<String>,
}

/// One line that could not be stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RejectedLine {
    /// 1-based line number in the (decompressed) body.
    pub line: u64,
    pub reason: String,
}

/// Answer to `POST /api/v1/events`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IngestResult {
    pub source: String,
    /// Events stored (committed) by this request.
    pub accepted: u64,
    /// Lines that were not stored (malformed JSON, or not an object).
    pub rejected: u64,
    /// Ids of the first and last stored events (absent when none was stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<i64>,
    /// The first rejected lines (at most 100), with the reason.
    pub rejected_lines: Vec<RejectedLine>,
}

/// Stores a batch of NDJSON events.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", security(("bearer" = [])),
    params(IngestParams),
    request_body(content = String, content_type = "application/x-ndjson",
        description = "One JSON object per line; `Content-Encoding: gzip` accepted"),
    responses(
        (status = 200, description = "Committed; malformed lines are listed", body = IngestResult),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 413, description = "Body (or decompressed body) too large", body = ErrorBody),
        (status = 503, description = "Ingestion is not enabled on this server", body = ErrorBody),
    ))]
pub async fn ingest_events(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    query: Result<Query<IngestParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResult>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let source = query.source.unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    let target = format!("events:{source}");
    authz::require(&state, &principal, Permission::EventIngest, &target).await?;
    let detection = detection(&state)?;
    if !valid_source_name(&source) {
        return Err(ApiError::invalid_field(
            "source",
            "must be 1 to 64 characters of letters, digits, '.', '_' or '-'",
        ));
    }
    let received_at = state.clock().now();
    let body = read_body(detection, &headers, body).await?;
    let rules = detection.rules();
    let (events, rejected, rejected_count) =
        parse_ndjson_with(&body, &source, received_at, rules.engine.source_map());
    drop(body);

    let ids = if events.is_empty() {
        Vec::new()
    } else {
        detection
            .events()
            .append_events(&events)
            .await
            .map_err(|e| ApiError::internal("storing events", e))?
    };
    let accepted = ids.len() as u64;
    if accepted > 0 {
        detection.wake();
    }
    audit::append(
        &state,
        &principal.id,
        "events.ingest",
        &target,
        AuditOutcome::Succeeded,
        json!({
            "accepted": accepted,
            "rejected": rejected_count,
            "first_id": ids.first(),
            "last_id": ids.last(),
        }),
    )
    .await
    .map_err(|e| ApiError::internal("auditing an ingestion", e))?;
    Ok(Json(IngestResult {
        source,
        accepted,
        rejected: rejected_count,
        first_id: ids.first().copied(),
        last_id: ids.last().copied(),
        rejected_lines: rejected,
    }))
}

fn detection(state: &AppState) -> Result<&Detection, ApiError> {
    state.detection().map(|d| d.as_ref()).ok_or_else(|| {
        ApiError::Unavailable("event ingestion and detection are not enabled on this server".into())
    })
}

/// Reads the body within the configured bounds, decompressing gzip.
async fn read_body(
    detection: &Detection,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    let config = detection.config();
    let too_large = |what: &str, limit: usize| {
        ApiError::PayloadTooLarge(format!(
            "the {what} is larger than {limit} bytes; send the events in smaller batches (`gatehouse ingest` does)"
        ))
    };
    let sent = axum::body::to_bytes(body, config.max_body_bytes)
        .await
        .map_err(|e| {
            // `to_bytes` reports a length-limit error as its source; anything else is a
            // broken connection.
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                too_large("request body", config.max_body_bytes)
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })?;
    let encoding = headers.get(header::CONTENT_ENCODING).map(|v| {
        v.to_str()
            .unwrap_or("(not text)")
            .trim()
            .to_ascii_lowercase()
    });
    match encoding.as_deref() {
        None | Some("identity") => {
            if sent.len() > config.max_decoded_bytes {
                return Err(too_large("request body", config.max_decoded_bytes));
            }
            Ok(sent.to_vec())
        }
        Some("gzip") | Some("x-gzip") => {
            let limit = config.max_decoded_bytes;
            let mut decoded = Vec::new();
            let mut reader = flate2::read::MultiGzDecoder::new(&sent[..]).take(limit as u64 + 1);
            reader
                .read_to_end(&mut decoded)
                .map_err(|e| ApiError::BadRequest(format!("the body is not valid gzip: {e}")))?;
            if decoded.len() > limit {
                return Err(too_large("decompressed request body", limit));
            }
            Ok(decoded)
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "unsupported Content-Encoding {other:?}: send identity or gzip"
        ))),
    }
}

/// Splits an NDJSON body into events and rejected lines (listing at most
/// [`MAX_REPORTED_LINES`]). Blank lines are skipped; a last line without a newline is
/// accepted like any other (the body is complete when the request is).
pub fn parse_ndjson(
    body: &[u8],
    source: &str,
    received_at: jiff::Timestamp,
) -> (Vec<NewEvent>, Vec<RejectedLine>, u64) {
    parse_ndjson_with(body, source, received_at, None)
}

/// [`parse_ndjson`] with the pack's event sources: an event a declared source claims is
/// normalized with that source's field mappings applied (see `docs/events.md`).
pub fn parse_ndjson_with(
    body: &[u8],
    source: &str,
    received_at: jiff::Timestamp,
    sources: Option<&SourceMap>,
) -> (Vec<NewEvent>, Vec<RejectedLine>, u64) {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    let mut rejected_count = 0u64;
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = index as u64 + 1;
        let mut reject = |reason: String| {
            rejected_count += 1;
            if rejected.len() < MAX_REPORTED_LINES {
                rejected.push(RejectedLine {
                    line: number,
                    reason,
                });
            }
        };
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                reject(format!("not UTF-8: {e}"));
                continue;
            }
        };
        let doc = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(doc)) => doc,
            Ok(_) => {
                reject("not a JSON object".into());
                continue;
            }
            Err(e) => {
                reject(format!("malformed JSON: {e}"));
                continue;
            }
        };
        let as_value = Value::Object(doc);
        let event_time = event_timestamp(&as_value)
            .as_deref()
            .and_then(parse_timestamp)
            .filter(|t| i64::try_from(t.as_nanosecond()).is_ok());
        let ecs = match sources.and_then(|m| ecs::map_declared(m, &as_value, source)) {
            Some((mapped, dataset)) => {
                let mut ecs = ecs::normalize(&mapped, event_time, received_at);
                ecs::set_dataset(&mut ecs, &dataset);
                ecs
            }
            None => match &as_value {
                Value::Object(doc) => ecs::normalize(doc, event_time, received_at),
                _ => continue,
            },
        };
        events.push(NewEvent {
            source: source.to_owned(),
            received_at,
            event_time,
            ecs,
            raw: text.trim().to_owned(),
        });
    }
    (events, rejected, rejected_count)
}

/// Query of `GET /api/v1/signals`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListSignals {
    /// Only signals of this Sigma rule id.
    pub rule_id: Option<String>,
    /// Only signals with a larger id (for paging: pass the previous page's `next_after`).
    pub after: Option<i64>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// One page of signals, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignalList {
    #[schema(value_type = Vec<Object>)]
    pub signals: Vec<Signal>,
    /// Pass as `after` to get the next page (absent when this page is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// Signals raised by the Sigma rules over ingested events.
#[utoipa::path(get, path = "/api/v1/signals", tag = "events", security(("bearer" = [])),
    params(ListSignals),
    responses(
        (status = 200, body = SignalList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn list_signals(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    query: Result<Query<ListSignals>, QueryRejection>,
) -> Result<Json<SignalList>, ApiError> {
    authz::require(&state, &principal, Permission::SignalRead, "signals").await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let detection = detection(&state)?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let signals = detection
        .events()
        .list_signals(&SignalQuery {
            rule_id: query.rule_id,
            after_id: query.after.unwrap_or(0).max(0),
            limit,
        })
        .await
        .map_err(|e| ApiError::internal("listing signals", e))?;
    let next_after = signals.last().map(|s| s.id);
    Ok(Json(SignalList {
        signals,
        next_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> jiff::Timestamp {
        "2026-03-04T05:06:07Z".parse().unwrap()
    }

    #[test]
    fn malformed_lines_are_reported_by_number_and_the_rest_kept() {
        let body =
            b"{\"a\":1}\n{broken\n\n[1,2]\r\n{\"b\":2,\"@timestamp\":\"2026-01-01T00:00:00Z\"}";
        let (events, rejected, count) = parse_ndjson(body, "s", at());
        assert_eq!(events.len(), 2);
        assert_eq!(count, 2);
        assert_eq!(rejected[0].line, 2);
        assert!(
            rejected[0].reason.starts_with("malformed JSON"),
            "{rejected:?}"
        );
        assert_eq!(
            rejected[1],
            RejectedLine {
                line: 4,
                reason: "not a JSON object".into()
            }
        );
        assert_eq!(events[0].raw, "{\"a\":1}");
        assert_eq!(events[0].event_time, None);
        assert_eq!(
            events[1].event_time,
            Some("2026-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(events[1].received_at, at());
    }

    #[test]
    fn listed_rejections_are_capped_but_all_counted() {
        let body = "x\n".repeat(MAX_REPORTED_LINES + 7);
        let (events, rejected, count) = parse_ndjson(body.as_bytes(), "s", at());
        assert!(events.is_empty());
        assert_eq!(rejected.len(), MAX_REPORTED_LINES);
        assert_eq!(count, MAX_REPORTED_LINES as u64 + 7);
    }

    #[test]
    fn deep_nesting_is_a_rejected_line_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let body = format!("{{\"ok\":true}}\n{deep}\n");
        let (events, rejected, _) = parse_ndjson(body.as_bytes(), "s", at());
        assert_eq!(events.len(), 1);
        assert_eq!(rejected[0].line, 2);
    }
}
