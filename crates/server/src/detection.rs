//! Online detection: the Sigma rules compiled once, a background worker that runs them over
//! stored events, and the retention job that purges old events.
//!
//! Ingestion (`routes::events`) only stores events and wakes the worker, so a request is
//! acknowledged as soon as its events are committed, whatever the rules cost. The worker reads
//! events after its persisted cursor, matches them with the detect crate's
//! [`Detector`](gatehouse_detect::stream::Detector) (the same compiled plan `gatehouse hunt`
//! uses, plus correlation state), and stores the signals and the new cursor in one
//! transaction: after a crash it resumes where the last commit left off, and a replayed batch
//! cannot duplicate signals (one per rule and event). A batch is matched on all cores
//! ([`Detectors`]: contiguous id ranges, one per thread, signals merged in event order) and
//! committed as one, so parallelism never moves the cursor past an unmatched event.
//!
//! Rules come from the pack's `DetectionRules` folders plus the server's `--rules` paths; field
//! mappings, log sources and retention from the pack's `EventSource` documents (Windows event
//! logs work out of the box through the built-in `windows` source). Rules are compiled at start
//! and again whenever the served pack changes (a reload; rule files are part of the pack
//! digest, so editing one is a change); a rule that does not load is logged with its file and
//! line, never dropped silently. A recompilation that would lose a rule the plan in force has
//! (a folder that cannot be read, a rule file that no longer loads) is refused and the old plan
//! kept, as a pack reload keeps the old pack.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::events::{EventStore, MatchedField, NewSignal, Severity, StoredEvent};
use gatehouse_core::store::StoreError;
use gatehouse_detect::engine::Engine;
use gatehouse_detect::rule::{Level, LoadOptions, RuleSet};
use gatehouse_detect::stream::Detector;
use gatehouse_pack::Pack;
use jiff::SignedDuration;
use serde_json::json;

use crate::audit;
use crate::state::AppState;

/// Name of the detector's cursor in the store.
pub const DETECTOR: &str = "sigma";

/// Actor recorded in the audit log for what the detection worker and retention job do.
pub const SYSTEM_ACTOR: &str = "system:detection";

/// Settings of ingestion, detection and retention.
#[derive(Debug, Clone)]
pub struct DetectionConfig {
    /// Sigma rule files or folders (searched recursively for `.yml`/`.yaml`).
    pub rule_paths: Vec<PathBuf>,
    /// How long events are kept when their source has no entry in `source_retention`.
    pub default_retention: SignedDuration,
    /// Retention per source name.
    pub source_retention: BTreeMap<String, SignedDuration>,
    /// How often the retention job runs.
    pub retention_interval: Duration,
    /// Largest ingest request body, as sent (413 above it).
    pub max_body_bytes: usize,
    /// Largest ingest body after gzip decoding (413 above it): bounds a compression bomb.
    pub max_decoded_bytes: usize,
    /// Events the worker reads and matches per transaction.
    pub batch_size: u32,
    /// Threads that match one batch (its events split into contiguous id ranges); default all
    /// cores.
    pub match_threads: usize,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            rule_paths: Vec::new(),
            default_retention: SignedDuration::from_hours(30 * 24),
            source_retention: BTreeMap::new(),
            retention_interval: Duration::from_secs(3600),
            max_body_bytes: 8 * 1024 * 1024,
            max_decoded_bytes: 64 * 1024 * 1024,
            batch_size: 500,
            match_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl DetectionConfig {
    /// How long events of `source` are kept.
    pub fn retention_of(&self, source: &str) -> SignedDuration {
        self.source_retention
            .get(source)
            .copied()
            .unwrap_or(self.default_retention)
    }
}

/// Why detection could not start.
#[derive(Debug, thiserror::Error)]
pub enum DetectionError {
    #[error("cannot read the Sigma rules at {path}: {source}")]
    Rules {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the pack's Sigma rules: {0}")]
    PackRules(#[from] gatehouse_pack::detection::RulesError),
    #[error("the pack's event sources are invalid: {0}")]
    Sources(#[from] gatehouse_detect::mapping::MappingError),
    #[error("the rule compiler task failed: {0}")]
    Task(String),
}

/// The rules in force: compiled plan, what was loaded, and which pack alerts name each rule.
pub struct CompiledRules {
    pub engine: Arc<Engine>,
    /// Digest of the pack the rules were compiled with (recompiled when it changes).
    pub pack_digest: String,
    /// Rule documents loaded, and documents that could not be loaded.
    pub loaded: usize,
    pub problems: usize,
    /// Sigma rule id → ids of the pack's `Alert` documents whose trigger names it.
    pub alerts_by_rule: HashMap<String, Vec<String>>,
    /// Files (and lines) of the documents that did not load: a recompilation may not add any.
    pub problem_files: BTreeSet<String>,
    /// Retention of the pack's event sources that set one.
    pub retention: BTreeMap<String, SignedDuration>,
}

/// Loads and compiles the rules (blocking: call from a blocking context). Every document
/// that does not load is logged with its file, line and reason.
pub fn compile_rules(
    paths: &[PathBuf],
    pack_dir: &Path,
    pack: &Pack,
    pack_digest: &str,
) -> Result<CompiledRules, DetectionError> {
    let mut set = RuleSet::default();
    let options = LoadOptions::default();
    gatehouse_pack::detection::load_rules(pack_dir, pack, &options, &mut set)?;
    for path in paths {
        set.add_path(path, &options)
            .map_err(|source| DetectionError::Rules {
                path: path.clone(),
                source,
            })?;
    }
    set.resolve();
    for problem in &set.problems {
        tracing::warn!(%problem, "Sigma rule not loaded");
    }
    let mut alerts_by_rule: HashMap<String, Vec<String>> = HashMap::new();
    for alert in pack.alerts() {
        if let Some(rule) = &alert.trigger.sigma_rule {
            alerts_by_rule
                .entry(rule.value.clone())
                .or_default()
                .push(alert.id.value.clone());
        }
    }
    let sources = gatehouse_pack::detection::source_map(pack)?;
    let engine = Engine::compile(&set).with_source_map(sources);
    tracing::info!(
        loaded = set.loaded(),
        problems = set.problems.len(),
        rules = engine.rule_count(),
        "Sigma rules compiled"
    );
    Ok(CompiledRules {
        engine: Arc::new(engine),
        pack_digest: pack_digest.to_owned(),
        loaded: set.loaded(),
        problems: set.problems.len(),
        alerts_by_rule,
        problem_files: set
            .problems
            .iter()
            .map(|p| format!("{}:{}", p.file, p.line))
            .collect(),
        retention: gatehouse_pack::detection::retention_by_source(pack),
    })
}

/// Ingestion and detection of one server.
pub struct Detection {
    events: Arc<dyn EventStore>,
    config: DetectionConfig,
    wake: tokio::sync::Notify,
    rules: ArcSwap<CompiledRules>,
}

impl Detection {
    pub fn events(&self) -> &dyn EventStore {
        self.events.as_ref()
    }

    pub fn config(&self) -> &DetectionConfig {
        &self.config
    }

    /// The rules in force right now.
    pub fn rules(&self) -> Arc<CompiledRules> {
        self.rules.load_full()
    }

    /// How long events of `source` are kept: `--source-retention`, else the pack's
    /// `EventSource` retention, else the default (30 days).
    pub fn retention_of(&self, source: &str) -> SignedDuration {
        if let Some(keep) = self.config.source_retention.get(source) {
            return *keep;
        }
        self.rules()
            .retention
            .get(source)
            .copied()
            .unwrap_or(self.config.default_retention)
    }

    /// Tells the worker that new events were committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Compiles the rules, attaches ingestion and detection to `state` and starts the detection
/// worker and the retention job (they stop with the runtime).
pub async fn start(
    state: &AppState,
    events: Arc<dyn EventStore>,
    config: DetectionConfig,
) -> Result<Arc<Detection>, DetectionError> {
    let snapshot = state.pack();
    let paths = config.rule_paths.clone();
    let pack_dir = state.pack_source().dir().to_path_buf();
    let compiled = tokio::task::spawn_blocking(move || {
        compile_rules(&paths, &pack_dir, &snapshot.pack, &snapshot.digest)
    })
    .await
    .map_err(|e| DetectionError::Task(e.to_string()))??;
    let detection = Arc::new(Detection {
        events,
        config,
        wake: tokio::sync::Notify::new(),
        rules: ArcSwap::from_pointee(compiled),
    });
    state.attach_detection(Arc::clone(&detection));
    tokio::spawn(run_worker(state.clone(), Arc::clone(&detection)));
    tokio::spawn(run_retention(state.clone(), Arc::clone(&detection)));
    Ok(detection)
}

/// How long the worker waits after a store failure before trying the same batch again.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Without a wake-up, the worker still looks for events this often (events stored by another
/// server process sharing the database, or a wake-up lost to a restart).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

async fn run_worker(state: AppState, detection: Arc<Detection>) {
    let mut detector = Detectors::new(
        Arc::clone(&detection.rules().engine),
        detection.config.match_threads,
    );
    let mut cursor = loop {
        match detection.events.detection_cursor(DETECTOR).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the detection cursor; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    };
    loop {
        if let Some(recompiled) = recompile_if_pack_changed(&state, &detection).await {
            // Correlation windows restart with the new plan: rule indices changed.
            detector = Detectors::new(recompiled, detection.config.match_threads);
        }
        match detect_batch(&state, &detection, detector, cursor).await {
            Ok((d, next, more)) => {
                detector = d;
                cursor = next;
                if more {
                    continue;
                }
            }
            Err((d, e)) => {
                detector = d;
                tracing::error!(error = %e, "detection batch failed; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        }
        tokio::select! {
            () = detection.wake.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// Recompiles when the served pack is not the one the rules were compiled with; returns the
/// new engine when it did.
async fn recompile_if_pack_changed(state: &AppState, detection: &Detection) -> Option<Arc<Engine>> {
    let snapshot = state.pack();
    if snapshot.digest == detection.rules().pack_digest {
        return None;
    }
    let paths = detection.config.rule_paths.clone();
    let pack = Arc::clone(&snapshot);
    let pack_dir = state.pack_source().dir().to_path_buf();
    let compiled = tokio::task::spawn_blocking(move || {
        compile_rules(&paths, &pack_dir, &pack.pack, &pack.digest)
    })
    .await;
    let current = detection.rules();
    let outcome = match compiled {
        Ok(Ok(rules)) => {
            let broken: Vec<&String> = rules
                .problem_files
                .difference(&current.problem_files)
                .collect();
            if broken.is_empty() {
                Ok(rules)
            } else {
                Err(format!(
                    "rules that no longer load: {}",
                    broken
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(rules) => {
            let detail = json!({ "pack_digest": rules.pack_digest, "loaded": rules.loaded, "problems": rules.problems });
            let engine = Arc::clone(&rules.engine);
            detection.rules.store(Arc::new(rules));
            audit::append_or_log(
                state,
                SYSTEM_ACTOR,
                "rules.compile",
                "rules",
                AuditOutcome::Succeeded,
                detail,
            )
            .await;
            Some(engine)
        }
        Err(reason) => {
            // Keep matching with the rules in force; remember the digest so a broken rule
            // folder is not recompiled (and logged) on every batch.
            tracing::error!(%reason, "cannot recompile the Sigma rules; keeping the current ones");
            detection.rules.store(Arc::new(CompiledRules {
                engine: Arc::clone(&current.engine),
                pack_digest: snapshot.digest.clone(),
                loaded: current.loaded,
                problems: current.problems,
                alerts_by_rule: current.alerts_by_rule.clone(),
                problem_files: current.problem_files.clone(),
                retention: current.retention.clone(),
            }));
            audit::append_or_log(
                state,
                SYSTEM_ACTOR,
                "rules.compile",
                "rules",
                AuditOutcome::Failed,
                json!({ "reason": reason }),
            )
            .await;
            None
        }
    }
}

/// The matchers of the worker: one per thread. Single-event rules are matched on all of them,
/// each over a contiguous id range of the batch; when the plan has correlation rules, whose
/// windows need the events of one stream in order, only the first is used.
pub struct Detectors {
    detectors: Vec<Detector>,
    parallel: bool,
}

/// Below this many events per thread a batch is matched on one thread (spawning costs more).
const MIN_EVENTS_PER_THREAD: usize = 64;

impl Detectors {
    pub fn new(engine: Arc<Engine>, threads: usize) -> Detectors {
        let parallel = engine.correlations().is_empty();
        let n = if parallel { threads.max(1) } else { 1 };
        Detectors {
            detectors: (0..n).map(|_| Detector::new(Arc::clone(&engine))).collect(),
            parallel,
        }
    }

    /// Matches `events` (ascending ids) and returns their signals in event order. The caller
    /// commits them with the cursor at the batch's last id in one transaction, so the split
    /// never changes which events are covered: a crash replays the whole batch, and the store
    /// skips signals already stored for a (rule, event) pair.
    fn match_batch(
        &mut self,
        events: &[StoredEvent],
        alerts_by_rule: &HashMap<String, Vec<String>>,
    ) -> Option<Vec<NewSignal>> {
        let threads = if self.parallel {
            self.detectors
                .len()
                .min(events.len() / MIN_EVENTS_PER_THREAD)
                .max(1)
        } else {
            1
        };
        if threads == 1 {
            return self
                .detectors
                .first_mut()
                .map(|d| match_events(d, events, alerts_by_rule));
        }
        let per = events.len().div_ceil(threads);
        let parts: Vec<Vec<NewSignal>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .detectors
                .iter_mut()
                .zip(events.chunks(per))
                .map(|(d, chunk)| scope.spawn(move || match_events(d, chunk, alerts_by_rule)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| ()))
                .collect::<Result<Vec<_>, ()>>()
                .unwrap_or_default()
        });
        // A matcher thread that panicked (a bug) fails the whole batch: it is read again, and
        // nothing is committed for it.
        (parts.len() == threads).then(|| parts.into_iter().flatten().collect())
    }
}

type BatchResult = Result<(Detectors, i64, bool), (Detectors, StoreError)>;

/// Matches the events after `cursor` (one batch) and stores their signals with the new cursor.
/// Returns the detector (it holds correlation state), the new cursor and whether a full batch
/// was read (more may be waiting).
async fn detect_batch(
    state: &AppState,
    detection: &Detection,
    detector: Detectors,
    cursor: i64,
) -> BatchResult {
    let limit = detection.config.batch_size;
    let events = match detection.events.events_after(cursor, limit).await {
        Ok(events) => events,
        Err(e) => return Err((detector, e)),
    };
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok((detector, cursor, false));
    };
    let more = events.len() as u64 >= u64::from(limit);
    let rules = detection.rules();
    let (detector, signals) = match tokio::task::spawn_blocking(move || {
        let mut detector = detector;
        let signals = detector.match_batch(&events, &rules.alerts_by_rule);
        (detector, signals)
    })
    .await
    {
        Ok((detector, Some(signals))) => (detector, signals),
        Ok((_, None)) => {
            let fresh = Detectors::new(
                Arc::clone(&detection.rules().engine),
                detection.config.match_threads,
            );
            return Err((fresh, StoreError::Backend("a matcher thread failed".into())));
        }
        Err(e) => {
            // The matcher panicked (a bug): the detector is lost with it, so start a fresh
            // one and skip nothing — the same batch is read again.
            let fresh = Detectors::new(
                Arc::clone(&detection.rules().engine),
                detection.config.match_threads,
            );
            return Err((
                fresh,
                StoreError::Backend(format!("the matcher task failed: {e}")),
            ));
        }
    };
    let now = state.clock().now();
    let signals: Vec<NewSignal> = signals
        .into_iter()
        .map(|mut s| {
            s.created_at = now;
            s
        })
        .collect();
    match detection
        .events
        .record_detections(DETECTOR, &signals, last)
        .await
    {
        Ok(inserted) => {
            if inserted > 0 {
                let mut by_rule: BTreeMap<&str, u64> = BTreeMap::new();
                for s in &signals {
                    *by_rule.entry(s.rule_id.as_str()).or_default() += 1;
                }
                audit::append_or_log(
                    state,
                    SYSTEM_ACTOR,
                    "signal.create",
                    "signals",
                    AuditOutcome::Succeeded,
                    json!({ "inserted": inserted, "rules": by_rule, "through_event_id": last }),
                )
                .await;
            }
            Ok((detector, last, more))
        }
        Err(e) => Err((detector, e)),
    }
}

/// Runs the detector over `events`; `created_at` is filled in by the caller.
fn match_events(
    detector: &mut Detector,
    events: &[StoredEvent],
    alerts_by_rule: &HashMap<String, Vec<String>>,
) -> Vec<NewSignal> {
    let mut out = Vec::new();
    for event in events {
        // Stored events were validated as JSON objects at ingestion; a row that no longer
        // parses is skipped with a log line rather than blocking the stream.
        let doc: serde_json::Value = match serde_json::from_str(&event.raw) {
            Ok(doc) => doc,
            Err(e) => {
                tracing::error!(event_id = event.id, error = %e, "stored event is not JSON; skipped");
                continue;
            }
        };
        let reference = event.id.to_string();
        for s in detector.process_from(&doc, &reference, Some(&event.source)) {
            out.push(NewSignal {
                alerts: alerts_by_rule.get(&s.rule_id).cloned().unwrap_or_default(),
                rule_id: s.rule_id,
                rule_title: s.title,
                severity: severity(s.level),
                dedup_key: s.dedup_key,
                matched_fields: s
                    .fields
                    .into_iter()
                    .map(|f| MatchedField {
                        field: f.field,
                        value: f.value,
                    })
                    .collect(),
                event_id: event.id,
                event_source: event.source.clone(),
                event_time: event.event_time.or(s.time),
                event_received_at: event.received_at,
                created_at: event.received_at,
            });
        }
    }
    out
}

/// A rule's level as a signal severity. A rule without a level (the specification makes it
/// optional) gives an `informational` signal: nothing claims an urgency the author did not.
pub fn severity(level: Option<Level>) -> Severity {
    match level {
        Some(Level::Informational) | None => Severity::Informational,
        Some(Level::Low) => Severity::Low,
        Some(Level::Medium) => Severity::Medium,
        Some(Level::High) => Severity::High,
        Some(Level::Critical) => Severity::Critical,
    }
}

async fn run_retention(state: AppState, detection: Arc<Detection>) {
    loop {
        if let Err(e) = enforce_retention(&state, &detection).await {
            tracing::error!(error = %e, "event retention failed; retrying at the next interval");
        }
        tokio::time::sleep(detection.config.retention_interval).await;
    }
}

/// Deletes every source's events older than its retention, measured on the server's clock.
/// Returns how many events were deleted per source.
pub async fn enforce_retention(
    state: &AppState,
    detection: &Detection,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let now = state.clock().now();
    let mut purged = BTreeMap::new();
    // Events the detector has not read yet are kept whatever their age: retention must not
    // decide what detection sees.
    let processed_up_to = detection.events.detection_cursor(DETECTOR).await?;
    for source in detection.events.event_sources().await? {
        let keep = detection.retention_of(&source);
        let Ok(cutoff) = now.checked_sub(keep) else {
            continue;
        };
        let deleted = detection
            .events
            .purge_events(&source, cutoff, processed_up_to)
            .await?;
        if deleted > 0 {
            tracing::info!(source, deleted, %cutoff, "events past retention deleted");
            audit::append_or_log(
                &state.clone(),
                SYSTEM_ACTOR,
                "events.purge",
                &format!("events:{source}"),
                AuditOutcome::Succeeded,
                json!({ "deleted": deleted, "received_before": cutoff.to_string(), "retention": keep.to_string() }),
            )
            .await;
            purged.insert(source, deleted);
        }
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_maps_to_its_severity() {
        assert_eq!(severity(None), Severity::Informational);
        assert_eq!(severity(Some(Level::Low)), Severity::Low);
        assert_eq!(severity(Some(Level::Medium)), Severity::Medium);
        assert_eq!(severity(Some(Level::High)), Severity::High);
        assert_eq!(severity(Some(Level::Critical)), Severity::Critical);
    }

    #[test]
    fn retention_defaults_to_thirty_days_with_per_source_overrides() {
        let mut config = DetectionConfig::default();
        config
            .source_retention
            .insert("proxy".into(), SignedDuration::from_hours(24));
        assert_eq!(
            config.retention_of("winlog"),
            SignedDuration::from_hours(720)
        );
        assert_eq!(config.retention_of("proxy"), SignedDuration::from_hours(24));
    }
}
