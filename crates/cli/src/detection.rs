//! Options of `gatehouse serve` for event ingestion, online Sigma detection and retention, and
//! the wiring that starts them (kept out of `serve.rs` so that command stays about serving).
//!
//! Rule folders, field mappings and retention come from the pack (`DetectionRules`,
//! `EventSource`); `--rules` adds folders and `--source-retention` overrides a source's
//! retention. [`pack_rules`] is how `hunt` and `rules check` read the same from `--pack`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_core::events::{EventStore, valid_source_name};
use gatehouse_core::store::Store;
use gatehouse_server::AppState;
use gatehouse_server::detection::DetectionConfig;
use gatehouse_store::StoreConfig;
use jiff::SignedDuration;

/// Ingestion and detection settings of `gatehouse serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectionArgs {
    /// Sigma rule file or folder run over ingested events (repeatable). Without one, events
    /// are stored but raise no signals.
    #[arg(long = "rules", env = "GATEHOUSE_RULES")]
    pub rules: Vec<PathBuf>,
    /// Days events are kept when their source has no --source-retention.
    #[arg(long, default_value_t = 30)]
    pub event_retention_days: u32,
    /// Retention of one source, as SOURCE=DAYS (repeatable).
    #[arg(long = "source-retention", value_name = "SOURCE=DAYS")]
    pub source_retention: Vec<String>,
    /// Seconds between runs of the retention job.
    #[arg(long, default_value_t = 3600)]
    pub retention_interval_secs: u64,
    /// Largest `POST /api/v1/events` body as sent, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_ingest_bytes: usize,
    /// Largest `POST /api/v1/events` body after gzip decoding, in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_ingest_decoded_bytes: usize,
    /// Threads matching each detection batch (default: all cores).
    #[arg(long)]
    pub detection_threads: Option<usize>,
}

impl DetectionArgs {
    pub fn config(&self) -> anyhow::Result<DetectionConfig> {
        let days = |d: u32| SignedDuration::from_hours(i64::from(d) * 24);
        if self.event_retention_days == 0 {
            bail!("--event-retention-days must be at least 1");
        }
        let mut source_retention = BTreeMap::new();
        for entry in &self.source_retention {
            let Some((source, d)) = entry.split_once('=') else {
                bail!("--source-retention {entry:?}: expected SOURCE=DAYS, e.g. winlog=90");
            };
            if !valid_source_name(source) {
                bail!("--source-retention {entry:?}: {source:?} is not a valid source name");
            }
            let d: u32 = d.parse().ok().filter(|d| *d > 0).with_context(|| {
                format!("--source-retention {entry:?}: DAYS must be a whole number of at least 1")
            })?;
            source_retention.insert(source.to_owned(), days(d));
        }
        for path in &self.rules {
            if !path.exists() {
                bail!("--rules {}: no such file or folder", path.display());
            }
        }
        Ok(DetectionConfig {
            rule_paths: self.rules.clone(),
            default_retention: days(self.event_retention_days),
            source_retention,
            retention_interval: Duration::from_secs(self.retention_interval_secs.max(1)),
            max_body_bytes: self.max_ingest_bytes,
            max_decoded_bytes: self.max_ingest_decoded_bytes.max(self.max_ingest_bytes),
            match_threads: self
                .detection_threads
                .unwrap_or_else(|| DetectionConfig::default().match_threads)
                .max(1),
            ..DetectionConfig::default()
        })
    }
}

/// Reads the rules of the pack at `dir` (its `DetectionRules` folders) into `set` and returns
/// its event sources. A pack with errors is refused with every finding printed, as `serve`
/// does.
pub fn pack_rules(
    dir: &std::path::Path,
    options: &gatehouse_detect::rule::LoadOptions,
    set: &mut gatehouse_detect::rule::RuleSet,
) -> anyhow::Result<gatehouse_detect::mapping::SourceMap> {
    let loaded = crate::commands::serve::load_pack_for_serving(dir)?;
    gatehouse_pack::detection::load_rules(dir, &loaded.pack, options, set)
        .with_context(|| format!("reading the rule folders of the pack {}", dir.display()))?;
    gatehouse_pack::detection::source_map(&loaded.pack)
        .with_context(|| format!("the event sources of the pack {}", dir.display()))
}

/// Opens the control-plane store and the event store over the same database.
pub async fn open_stores(
    config: &StoreConfig,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn EventStore>)> {
    tracing::info!(store = %config.describe(), "opening the store");
    gatehouse_store::open_with_events(config)
        .await
        .with_context(|| format!("cannot open the store ({})", config.describe()))
}

/// Compiles the rules and starts the detection worker and the retention job.
pub async fn start(
    state: &AppState,
    events: Arc<dyn EventStore>,
    config: DetectionConfig,
) -> anyhow::Result<()> {
    gatehouse_server::detection::start(state, events, config)
        .await
        .context("cannot start event detection")?;
    Ok(())
}
