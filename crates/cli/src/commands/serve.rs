//! `gatehouse serve`: the HTTP API over a policy pack and a store.
//!
//! Start-up order is chosen so that every refusal is fast and clear: the pack is loaded and
//! linted first (errors are printed and the server does not start), then the port is bound (a
//! port in use is reported by address), then the store is opened (an unreachable database is
//! reported without its password). Only then is the server run, until SIGTERM or Ctrl-C, after
//! which in-flight requests are allowed to finish.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_pack::LoadedPack;
use gatehouse_server::{AppState, PackSource, ServerConfig, SystemClock};
use gatehouse_store::StoreConfig;

use crate::logging::{self, LogFormat};

/// Where gatehouse keeps its data; shared by `serve` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Folder of the embedded SQLite database (unused with --database-url).
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "gatehouse-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user:password@host:5432/db) instead of embedded SQLite.
    #[arg(long, env = "GATEHOUSE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StorageArgs {
    pub fn config(&self) -> anyhow::Result<StoreConfig> {
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            bail!(
                "--database-url must be a postgres:// or postgresql:// URL \
                 (leave it out to use embedded SQLite under --data-dir)"
            );
        }
        Ok(StoreConfig::from_options(
            &self.data_dir,
            self.database_url.as_deref(),
        ))
    }
}

/// HTTP listener settings; shared by `serve` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Address and port to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a request may take before it is answered with 408.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds a streamed upload (evidence, event batches) may take before it is answered
    /// with 408.
    #[arg(long, default_value_t = 3600)]
    pub upload_timeout_secs: u64,
    /// Serve HTTPS: PEM certificate chain (needs --tls-key).
    #[arg(long, env = "GATEHOUSE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Serve HTTPS: PEM private key of the certificate (needs --tls-cert).
    #[arg(long, env = "GATEHOUSE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl HttpArgs {
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            body_limit_bytes: self.max_body_bytes,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            upload_timeout: Duration::from_secs(self.upload_timeout_secs.max(1)),
            reload_on_sighup: true,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(gatehouse_server::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
        }
    }
}

/// Arguments of `gatehouse serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy pack folder.
    #[arg(long, env = "GATEHOUSE_PACK", default_value = "gatehouse")]
    pub pack: PathBuf,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub detection: crate::detection::DetectionArgs,
    #[command(flatten)]
    pub gate: super::gate::ServeGateArgs,
    #[command(flatten)]
    pub keys: super::keys::KeyArgs,
    #[command(flatten)]
    pub identity: Box<crate::identity::IdentityArgs>,
    #[command(flatten)]
    pub audit_log: super::audit::AuditLogArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    logging::init(args.http.log_format);
    let loaded = load_pack_for_serving(&args.pack)?;
    let store_config = args.storage.config()?;
    let detection_config = args.detection.config()?;
    crate::runtime::block_on(async move {
        let shutdown = ShutdownSignal::install()?;
        let listener = gatehouse_server::bind(args.http.listen).await?;
        let (store, events) = crate::detection::open_stores(&store_config).await?;
        // Before serving: no key-encryption key for evidence is a refusal, not a 503 later.
        let keyring = super::keys::keyring_for_server(&args.keys, &store_config)?;
        let state = gatehouse_server::prepare(
            store,
            Arc::new(SystemClock),
            PackSource::new(&args.pack),
            loaded.pack,
        )
        .await
        .context("cannot start the server")?;
        crate::detection::start(&state, events, detection_config).await?;
        super::gate::attach_to_server(&state, &store_config, &args.gate).await?;
        super::keys::attach_vault(&state, &store_config, &args.storage.data_dir, keyring).await?;
        crate::identity::attach_to_server(&state, &store_config, &args.identity).await?;
        super::audit::attach_to_server(&state, &args.storage, &args.audit_log).await?;
        serve(
            listener,
            args.http.server_config(),
            state,
            shutdown,
            |url| {
                crate::output::outln!("gatehouse listening on {url}");
            },
        )
        .await
    })??;
    Ok(super::EXIT_OK)
}

/// Loads and lints the pack; prints every finding to stderr and refuses to continue when any is
/// an error (warnings are printed and tolerated).
pub fn load_pack_for_serving(dir: &Path) -> anyhow::Result<LoadedPack> {
    let loaded = gatehouse_pack::load(dir)
        .with_context(|| format!("cannot load the policy pack {}", dir.display()))?;
    if !loaded.diagnostics.is_empty() {
        eprint!(
            "{}",
            gatehouse_pack::render::text(&loaded.diagnostics, &loaded.sources)
        );
    }
    if loaded.has_errors() {
        bail!(
            "refusing to start: the policy pack {} has {} error{} (fix them; `gatehouse lint {}` shows the same list)",
            dir.display(),
            loaded.error_count(),
            if loaded.error_count() == 1 { "" } else { "s" },
            dir.display()
        );
    }
    Ok(loaded)
}

/// Opens the store with a message that says which database could not be opened.
pub async fn open_store(
    config: &StoreConfig,
) -> anyhow::Result<Arc<dyn gatehouse_core::store::Store>> {
    tracing::info!(store = %config.describe(), "opening the store");
    gatehouse_store::open(config)
        .await
        .with_context(|| format!("cannot open the store ({})", config.describe()))
}

/// Runs the server until the shutdown signal, announcing the URL once the socket is bound and
/// the reload handler installed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    state: AppState,
    shutdown: ShutdownSignal,
    announce: impl FnOnce(&str),
) -> anyhow::Result<()> {
    let server = gatehouse_server::Server::new(listener, &config, state)?;
    let addr = server
        .local_addr()
        .context("cannot read the listening address")?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{addr}");
    tracing::info!(%url, "listening");
    announce(&url);
    server
        .run(shutdown.wait())
        .await
        .context("the server stopped with an error")?;
    tracing::info!("stopped: all in-flight requests finished");
    Ok(())
}

/// SIGTERM or Ctrl-C. Installed before the server announces itself, so a signal sent as soon as
/// the URL is printed is handled gracefully rather than killing the process.
pub struct ShutdownSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    pub fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let terminate =
                signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
            Ok(Self { terminate })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    pub async fn wait(mut self) {
        #[cfg(unix)]
        let terminate = self.terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = terminate => tracing::info!("SIGTERM received: finishing in-flight requests"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received: finishing in-flight requests"),
        }
    }
}
