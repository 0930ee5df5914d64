//! gatehouse-server: the HTTP API of gatehouse (axum).
//!
//! The binary loads the pack, opens the store and calls [`run`]. This crate authenticates each
//! request ([`auth`]), authorizes it ([`authz`]), serves the current pack snapshot (swapped
//! atomically on reload, [`pack_state`]), appends every state change and denial to the audit
//! log, and exposes `/healthz`, `/readyz`, `/metrics` and `/api/openapi.json` for operators.
//! It depends on core's ports (`Store`, `Clock`), never on a concrete store.

pub mod api;
pub mod audit;
pub mod audit_log;
pub mod auth;
pub mod authz;
pub mod catalog;
pub mod clock;
pub mod detection;
pub mod ecs;
pub mod error;
pub mod hardening;
pub mod json_body;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod pack_state;
pub mod ratelimit;
pub mod routes;
pub mod security_events;
pub mod session;
pub mod state;
pub mod tls;
pub mod vault;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::clock::Clock;
use gatehouse_core::store::{Store, StoreError};
use gatehouse_pack::Pack;
use tokio::net::TcpListener;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};

pub use clock::SystemClock;
pub use pack_state::{PackSnapshot, PackSource};
pub use state::AppState;

/// Limits and timeouts of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted (413 above it).
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered with 408.
    pub request_timeout: Duration,
    /// Longest a streamed upload (evidence, event batches: the catalog's routes with their own
    /// body limit) may take; a 2 GB evidence file does not fit in `request_timeout`.
    pub upload_timeout: Duration,
    /// Reload the pack when the process receives SIGHUP.
    pub reload_on_sighup: bool,
    /// Serve HTTPS with this certificate and key (rustls) instead of plain HTTP.
    pub tls: Option<tls::TlsFiles>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(3600),
            reload_on_sighup: true,
            tls: None,
        }
    }
}

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot listen on {addr}: the address is already in use (another process holds this port; choose another with --listen)"
    )]
    AddressInUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot record the loaded pack in the store: {0}")]
    Store(#[from] StoreError),
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Binds the listening socket; separate from [`run`] so the caller can report the actual
/// address (port 0 picks a free port) before serving.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ServerError::AddressInUse { addr }
        } else {
            ServerError::Bind { addr, source }
        }
    })
}

/// Builds the shared state for a freshly loaded pack and records that pack in the store as the
/// revision in force, with an audit entry.
pub async fn prepare(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    pack_source: PackSource,
    pack: Pack,
) -> Result<AppState, ServerError> {
    let snapshot = PackSnapshot::new(pack, clock.now());
    let label = format!("{} (startup)", pack_source.dir().display());
    store
        .record_pack_revision(&snapshot.revision(&label))
        .await?;
    let digest = snapshot.digest.clone();
    let documents = snapshot.document_count;
    let state = AppState::new(store, clock, pack_source, snapshot);
    audit::append(
        &state,
        "system",
        "pack.load",
        &format!("pack:{digest}"),
        AuditOutcome::Succeeded,
        serde_json::json!({ "trigger": "startup", "document_count": documents }),
    )
    .await?;
    Ok(state)
}

/// The full router: open operational endpoints plus the authenticated `/api/v1` API.
pub fn router(state: AppState, config: &ServerConfig) -> Router {
    // Every route, its access check, body limit and timeout come from the route catalog.
    catalog::router(&state, config.request_timeout, config.upload_timeout)
        // Session cookie policy and CSRF check, before the catalog authenticates.
        .layer(axum::middleware::from_fn_with_state(
            session::GuardState::new(&state, config.tls.is_some()),
            session::csrf_guard,
        ))
        .layer(axum::middleware::from_fn(security_events::capture_request))
        .layer(axum::middleware::from_fn_with_state(
            hardening::Tls(config.tls.is_some()),
            hardening::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        // One INFO line per request (method, path, status, latency): the access log.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO))
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

/// A bound, configured server that has not started serving yet.
///
/// Creating it installs the SIGHUP handler, so once the caller announces the address a reload
/// signal can never hit the process's default action (termination).
pub struct Server {
    listener: TcpListener,
    app: Router,
    sighup: Option<tokio::task::JoinHandle<()>>,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Server {
    pub fn new(
        listener: TcpListener,
        config: &ServerConfig,
        state: AppState,
    ) -> Result<Self, ServerError> {
        // Read the certificate and key first: a bad file is reported before anything starts.
        let tls = config.tls.as_ref().map(tls::load).transpose()?;
        let app = router(state.clone(), config);
        let sighup = if config.reload_on_sighup {
            Some(spawn_sighup_reloader(state)?)
        } else {
            None
        };
        Ok(Self {
            listener,
            app,
            sighup,
            tls,
        })
    }

    /// The address actually bound (resolves port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let app = self
            .app
            .into_make_service_with_connect_info::<hardening::ClientAddr>();
        let served = match self.tls {
            Some(config) => {
                let listener =
                    tls::TlsListener::new(self.listener, config).map_err(ServerError::Serve)?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(self.listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
        .map_err(ServerError::Serve);
        if let Some(task) = self.sighup {
            task.abort();
        }
        served
    }
}

/// [`Server::new`] then [`Server::run`].
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::new(listener, &config, state)?.run(shutdown).await
}

#[cfg(unix)]
fn spawn_sighup_reloader(state: AppState) -> Result<tokio::task::JoinHandle<()>, ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).map_err(ServerError::Serve)?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading the pack");
            pack_state::reload(&state, "system:sighup", pack_state::ReloadTrigger::Signal).await;
        }
    }))
}

#[cfg(not(unix))]
fn spawn_sighup_reloader(_state: AppState) -> Result<tokio::task::JoinHandle<()>, ServerError> {
    Ok(tokio::spawn(async {}))
}
