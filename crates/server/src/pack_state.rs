//! The pack being served, and how it is replaced.
//!
//! Requests read the current [`PackSnapshot`] through an atomically swapped pointer, so a reload
//! never exposes a half-loaded pack: a request sees either the old snapshot or the new one for
//! its whole duration. A reload (SIGHUP or `POST /api/v1/pack/reload`) loads and lints the
//! folder again; only a pack without errors replaces the current one, and it is recorded in the
//! store as a pack revision before it is swapped in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::store::PackRevision;
use gatehouse_pack::{LoadedPack, Pack, PackError};
use jiff::Timestamp;
use serde_json::json;

use crate::audit;
use crate::security_events::{self, Category, Outcome, SecurityEvent, action};
use crate::state::AppState;

/// Where the pack is read from.
#[derive(Debug, Clone)]
pub struct PackSource {
    dir: PathBuf,
}

impl PackSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads and lints the folder (blocking file I/O: call from a blocking context).
    pub fn load(&self) -> Result<LoadedPack, PackError> {
        gatehouse_pack::load(&self.dir)
    }
}

/// An accepted pack and when it was loaded.
#[derive(Debug)]
pub struct PackSnapshot {
    pub pack: Pack,
    pub digest: String,
    pub document_count: usize,
    pub loaded_at: Timestamp,
    /// Roles and permissions of this pack, so a reload replaces both at once.
    pub policy: gatehouse_core::authz::Policy,
}

impl PackSnapshot {
    pub fn new(pack: Pack, loaded_at: Timestamp) -> Self {
        Self {
            digest: pack.digest(),
            document_count: pack.document_count(),
            policy: gatehouse_core::authz::Policy::from_pack(&pack),
            pack,
            loaded_at,
        }
    }

    /// The store record for this snapshot.
    pub fn revision(&self, source: &str) -> PackRevision {
        PackRevision {
            digest: self.digest.clone(),
            document_count: self.document_count as u64,
            loaded_at: self.loaded_at,
            source: source.to_owned(),
        }
    }
}

/// What asked for the reload; recorded in the audit log and the pack revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadTrigger {
    Signal,
    Api,
}

impl ReloadTrigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "sighup",
            Self::Api => "api",
        }
    }
}

/// How a reload ended.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The new pack is now served.
    Swapped {
        previous_digest: String,
        snapshot: Arc<PackSnapshot>,
    },
    /// The new pack has errors; the previous pack is still served.
    Rejected {
        /// `gatehouse_pack::render::json` of every finding.
        diagnostics: serde_json::Value,
        /// The same findings as text (file:line:column, snippet, hint), for logs.
        text: String,
        errors: usize,
    },
    /// The pack folder could not be read at all; the previous pack is still served.
    Unreadable { reason: String },
    /// The pack is fine but could not be recorded in the store; the previous pack is still
    /// served so that every pack in force has a recorded revision.
    NotRecorded { reason: String },
}

/// Loads the pack folder again and swaps it in when it has no errors.
pub async fn reload(state: &AppState, actor: &str, trigger: ReloadTrigger) -> ReloadOutcome {
    let _serialised = state.reload_lock().lock().await;
    let previous_digest = state.pack().digest.clone();
    let source = state.pack_source().clone();
    let source_label = format!("{} ({})", source.dir().display(), trigger.as_str());

    let dir = source.dir().to_path_buf();
    let loaded = match tokio::task::spawn_blocking(move || source.load()).await {
        Ok(result) => result,
        Err(join) => Err(PackError::Io {
            path: dir,
            source: std::io::Error::other(format!("the pack loader task failed: {join}")),
        }),
    };

    let outcome = match loaded {
        Err(err) => ReloadOutcome::Unreadable {
            reason: err.to_string(),
        },
        Ok(loaded) if loaded.has_errors() => ReloadOutcome::Rejected {
            diagnostics: gatehouse_pack::render::json(&loaded.diagnostics, &loaded.sources),
            text: gatehouse_pack::render::text(&loaded.diagnostics, &loaded.sources),
            errors: loaded.error_count(),
        },
        Ok(loaded) => {
            let snapshot = PackSnapshot::new(loaded.pack, state.clock().now());
            match state
                .store()
                .record_pack_revision(&snapshot.revision(&source_label))
                .await
            {
                Ok(()) => {
                    let snapshot = Arc::new(snapshot);
                    state.swap_pack(Arc::clone(&snapshot));
                    ReloadOutcome::Swapped {
                        previous_digest: previous_digest.clone(),
                        snapshot,
                    }
                }
                Err(err) => ReloadOutcome::NotRecorded {
                    reason: err.to_string(),
                },
            }
        }
    };

    let ok = matches!(outcome, ReloadOutcome::Swapped { .. });
    state.metrics().record_pack_reload(ok);
    let (target, audit_outcome, detail) = match &outcome {
        ReloadOutcome::Swapped { snapshot, .. } => {
            tracing::info!(
                digest = %snapshot.digest,
                previous_digest = %previous_digest,
                documents = snapshot.document_count,
                trigger = trigger.as_str(),
                "pack reloaded"
            );
            (
                format!("pack:{}", snapshot.digest),
                AuditOutcome::Succeeded,
                json!({
                    "trigger": trigger.as_str(),
                    "previous_digest": previous_digest,
                    "document_count": snapshot.document_count,
                }),
            )
        }
        ReloadOutcome::Rejected { text, errors, .. } => {
            tracing::warn!(
                errors,
                trigger = trigger.as_str(),
                "pack reload rejected; keeping the current pack\n{text}"
            );
            (
                format!("pack:{previous_digest}"),
                AuditOutcome::Failed,
                json!({"trigger": trigger.as_str(), "reason": "pack has errors", "errors": errors}),
            )
        }
        ReloadOutcome::Unreadable { reason } | ReloadOutcome::NotRecorded { reason } => {
            tracing::warn!(
                reason = %reason,
                trigger = trigger.as_str(),
                "pack reload failed; keeping the current pack"
            );
            (
                format!("pack:{previous_digest}"),
                AuditOutcome::Failed,
                json!({"trigger": trigger.as_str(), "reason": reason}),
            )
        }
    };
    let event = SecurityEvent::new(
        Category::Configuration,
        action::PACK_RELOADED,
        if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        },
    )
    .user(actor)
    .field("gatehouse.trigger", trigger.as_str())
    .field("gatehouse.target", target.as_str());
    if let Err(err) =
        audit::append(state, actor, "pack.reload", &target, audit_outcome, detail).await
    {
        tracing::error!(error = %err, "cannot append the pack reload to the audit log");
    }
    security_events::emit(state, event).await;
    outcome
}
