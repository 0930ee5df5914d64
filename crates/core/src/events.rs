//! Security events and detection signals, and the `EventStore` port that persists them.
//!
//! Ingested events (`POST /api/v1/events`, `gatehouse ingest`) are kept next to the control
//! plane's records but behind their own port: they are high-volume, append-mostly data with a
//! retention horizon, while [`crate::store::Store`] holds the small, audited records of the
//! release gate. Keeping the two traits apart lets the event tables grow (and be purged)
//! without touching the control plane's interface; both are implemented by `gatehouse-store`
//! over the same database.
//!
//! A *signal* is one Sigma rule matching one stored event. Signals reference the event by id,
//! carry the rule's level as a [`Severity`] and a deduplication key (computed by the detect
//! crate's `stream::Detector`) so that the alerting that follows can fold repeats of the same
//! finding into one alert.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// Source name used when the sender names none.
pub const DEFAULT_SOURCE: &str = "default";

/// Longest accepted source name; names become SQL values and metric labels.
pub const MAX_SOURCE_LEN: usize = 64;

/// One event as accepted by ingestion, before it has a store id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Which event source sent it (`?source=` of the ingest request); retention is per source.
    pub source: String,
    /// When the server accepted it (server clock); retention counts from here.
    pub received_at: Timestamp,
    /// The event's own time, when it carries one that parses.
    pub event_time: Option<Timestamp>,
    /// The event normalized to ECS field names (see `docs/events.md`).
    pub ecs: serde_json::Value,
    /// The event exactly as received (one JSON object, as text): detection rules run on it.
    pub raw: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Store-assigned, increasing in commit order of each batch.
    pub id: i64,
    pub source: String,
    pub received_at: Timestamp,
    pub event_time: Option<Timestamp>,
    pub ecs: serde_json::Value,
    pub raw: String,
}

/// How urgent a signal is: the Sigma rule's `level`, one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "informational",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Reads the stored or wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "informational" => Self::Informational,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }
}

/// A field whose value made the rule match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedField {
    pub field: String,
    pub value: String,
}

/// A signal about to be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSignal {
    /// The Sigma rule's `id` (or its title when the rule has no id).
    pub rule_id: String,
    pub rule_title: String,
    pub severity: Severity,
    /// Equal for signals reporting the same finding (rule and matched values); computed by
    /// the detect crate's `stream::Detector`, stable across runs.
    pub dedup_key: String,
    pub matched_fields: Vec<MatchedField>,
    /// The stored event that matched.
    pub event_id: i64,
    pub event_source: String,
    pub event_time: Option<Timestamp>,
    /// When the event was accepted (copied so latency is visible without a join).
    pub event_received_at: Timestamp,
    /// Ids of the pack's `Alert` documents whose trigger names this rule.
    pub alerts: Vec<String>,
    pub created_at: Timestamp,
}

/// A stored signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub id: i64,
    #[serde(flatten)]
    pub signal: NewSignal,
}

/// Which signals [`EventStore::list_signals`] returns: ascending id after `after_id`, so a
/// consumer can page through all of them without gaps or repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SignalQuery {
    pub rule_id: Option<String>,
    pub after_id: i64,
    /// At most this many (capped at [`crate::store::MAX_PAGE_SIZE`]).
    pub limit: u32,
}

/// Whether `name` is an acceptable source name: 1–64 characters of `[A-Za-z0-9._-]`.
pub fn valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SOURCE_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Persistence port for events, signals and the detection cursor.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores `events` in one transaction and returns their ids in order. Returns only after
    /// the commit, so an acknowledged event survives a crash.
    async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>, StoreError>;

    /// Events with id greater than `after_id`, ascending, at most `limit` (capped).
    async fn events_after(&self, after_id: i64, limit: u32)
    -> Result<Vec<StoredEvent>, StoreError>;

    /// The last event id the detector named `detector` has processed (0 when none).
    async fn detection_cursor(&self, detector: &str) -> Result<i64, StoreError>;

    /// Stores `signals` and moves `detector`'s cursor to `cursor` in one transaction, so a
    /// restart neither loses nor repeats a batch. A signal for a (rule, event) pair already
    /// stored is skipped; returns how many were inserted.
    async fn record_detections(
        &self,
        detector: &str,
        signals: &[NewSignal],
        cursor: i64,
    ) -> Result<u64, StoreError>;

    /// Signals matching `query`.
    async fn list_signals(&self, query: &SignalQuery) -> Result<Vec<Signal>, StoreError>;

    /// The distinct sources of stored events.
    async fn event_sources(&self) -> Result<Vec<String>, StoreError>;

    /// Deletes `source`'s events received before `before` whose id is at most `processed_up_to`
    /// (the detection cursor), so retention never removes an event detection has not read yet;
    /// returns how many were deleted. Signals keep their event reference (and copies of what
    /// matched) after the event is gone.
    async fn purge_events(
        &self,
        source: &str,
        before: Timestamp,
        processed_up_to: i64,
    ) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_restricted() {
        assert!(valid_source_name("winlog.security-1"));
        assert!(!valid_source_name(""));
        assert!(!valid_source_name("a b"));
        assert!(!valid_source_name(&"x".repeat(65)));
    }

    #[test]
    fn severity_round_trips() {
        for s in [
            Severity::Informational,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert_eq!(Severity::parse("urgent"), None);
    }
}
