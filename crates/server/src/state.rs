//! Shared state of one running server: the store port, the clock, metrics and the current pack.
//!
//! Cloned into every handler (it is one `Arc`), so handlers never hold locks across `.await`
//! except the reload lock, which only serialises reloads with each other.

use std::sync::Arc;

use gatehouse_core::clock::Clock;
use gatehouse_core::store::Store;

use crate::metrics::Metrics;
use crate::pack_state::{PackSnapshot, PackSource};

/// Handle to the state shared by every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    pack: arc_swap::ArcSwap<PackSnapshot>,
    pack_source: PackSource,
    /// Held for the duration of one reload so two reloads cannot interleave their swap and
    /// revision record (the later load must win, and be the one recorded).
    reload_lock: tokio::sync::Mutex<()>,
    /// The release gate's store and facts cache, attached once by the binary.
    gate: std::sync::OnceLock<Arc<crate::routes::gate::Gate>>,
    /// Event ingestion and online detection, attached once by the binary when it runs them.
    detection: std::sync::OnceLock<Arc<crate::detection::Detection>>,
    /// OIDC issuers' cached keys and pending sign-ins (crate::oidc).
    oidc: crate::oidc::Oidc,
    /// Local people, sessions and sign-in rate limits, attached once by the binary.
    identity: std::sync::OnceLock<Arc<crate::session::Identity>>,
    /// The audit log's signing key and tree-head schedule, attached once by the binary.
    audit_log: std::sync::OnceLock<Arc<crate::audit_log::AuditLog>>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        pack_source: PackSource,
        initial_pack: PackSnapshot,
    ) -> Self {
        let metrics = Metrics::new();
        metrics.set_pack(
            initial_pack.document_count,
            initial_pack.loaded_at.as_second(),
        );
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                metrics,
                pack: arc_swap::ArcSwap::from_pointee(initial_pack),
                pack_source,
                reload_lock: tokio::sync::Mutex::new(()),
                gate: std::sync::OnceLock::new(),
                detection: std::sync::OnceLock::new(),
                oidc: crate::oidc::Oidc::new(),
                identity: std::sync::OnceLock::new(),
                audit_log: std::sync::OnceLock::new(),
            }),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The pack being served right now. The returned `Arc` stays valid (and unchanged) for as
    /// long as the caller holds it, even if a reload swaps in a new pack meanwhile.
    pub fn pack(&self) -> Arc<PackSnapshot> {
        self.inner.pack.load_full()
    }

    pub fn pack_source(&self) -> &PackSource {
        &self.inner.pack_source
    }

    pub(crate) fn swap_pack(&self, snapshot: Arc<PackSnapshot>) {
        self.inner
            .metrics
            .set_pack(snapshot.document_count, snapshot.loaded_at.as_second());
        self.inner.pack.store(snapshot);
    }

    pub(crate) fn reload_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.reload_lock
    }

    /// Event ingestion and detection, when the binary attached them.
    pub fn detection(&self) -> Option<&Arc<crate::detection::Detection>> {
        self.inner.detection.get()
    }

    /// Attaches ingestion and detection; only the first call has an effect.
    pub(crate) fn attach_detection(&self, detection: Arc<crate::detection::Detection>) {
        let _ = self.inner.detection.set(detection);
    }

    /// The audit log's signing side, when the binary attached it.
    pub fn audit_log(&self) -> Option<&Arc<crate::audit_log::AuditLog>> {
        self.inner.audit_log.get()
    }

    /// Attaches the audit log's signing side; only the first call has an effect.
    pub fn attach_audit_log(&self, audit_log: Arc<crate::audit_log::AuditLog>) {
        let _ = self.inner.audit_log.set(audit_log);
    }

    /// Local people, sessions and sign-in limits, when the binary attached them.
    pub fn identity(&self) -> Option<&Arc<crate::session::Identity>> {
        self.inner.identity.get()
    }

    /// Attaches local people and sessions; only the first call has an effect.
    pub fn attach_identity(&self, identity: Arc<crate::session::Identity>) {
        let _ = self.inner.identity.set(identity);
    }

    /// OIDC key caches and pending sign-ins.
    pub fn oidc(&self) -> &crate::oidc::Oidc {
        &self.inner.oidc
    }

    /// The release gate, when the binary attached it.
    pub fn gate(&self) -> Option<&Arc<crate::routes::gate::Gate>> {
        self.inner.gate.get()
    }

    /// Attaches the release gate; only the first call has an effect.
    pub fn attach_gate(&self, gate: Arc<crate::routes::gate::Gate>) {
        let _ = self.inner.gate.set(gate);
    }
}
