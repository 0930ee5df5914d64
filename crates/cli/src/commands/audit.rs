//! `gatehouse audit export|verify|tree-head`: the tamper-evident audit log, offline.
//!
//! An auditor must be able to check gatehouse's records without trusting gatehouse's database
//! or a running server. `export` works directly on the data directory (or PostgreSQL URL), like
//! `admin bootstrap`: it signs a tree head over every entry with the log key (so the file is
//! vouched for up to its last entry) and writes the self-contained export file. `verify` needs
//! nothing but that file and, ideally, the log's public key obtained out of band; it exits 0
//! when the file is intact, 1 when it names modified, deleted, inserted or reordered entries
//! (or an unverifiable head), and 2 when it cannot answer.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::audit_log::{AuditLedger, sign_tree_head};
use gatehouse_core::clock::Clock;
use gatehouse_core::store::{MAX_PAGE_SIZE, StoreError};
use gatehouse_ledger as ledger;
use gatehouse_server::SystemClock;
use gatehouse_server::audit_log::{DEFAULT_HEAD_EVERY, KeySource, load_signing_key};
use serde_json::json;

use super::serve::{StorageArgs, open_store};
use crate::output::{OutputFormat, outln, print_json};

/// The log signing key and head schedule; shared by `serve`, `demo` and `audit export`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditLogArgs {
    /// File holding the audit log's Ed25519 signing key (base64 secret). Default:
    /// `audit-signing.key` in --data-dir, generated with mode 0600 on first start.
    #[arg(long, env = "GATEHOUSE_AUDIT_SIGNING_KEY_FILE")]
    pub audit_signing_key: Option<PathBuf>,
    /// Sign a tree head every this many audit entries (heads are also signed at start-up and
    /// on demand).
    #[arg(long, default_value_t = DEFAULT_HEAD_EVERY, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_head_every: u64,
}

/// Loads the key, connects the ledger, and attaches the signing side to a server's state.
pub async fn attach_to_server(
    state: &gatehouse_server::AppState,
    storage: &StorageArgs,
    args: &AuditLogArgs,
) -> anyhow::Result<()> {
    let config = storage.config()?;
    let (key, source) = load_signing_key(args.audit_signing_key.as_deref(), &storage.data_dir)?;
    log_key_source(&source, key.key_id());
    let ledger: Arc<dyn AuditLedger> = Arc::new(
        gatehouse_store::SqlAuditLedger::connect(&config)
            .await
            .with_context(|| format!("cannot open the audit log ({})", config.describe()))?,
    );
    let log = gatehouse_server::audit_log::AuditLog::start(
        ledger,
        key,
        args.audit_head_every,
        SystemClock.now(),
    )
    .await
    .context("cannot start the audit log")?;
    state.attach_audit_log(Arc::new(log));
    Ok(())
}

fn log_key_source(source: &KeySource, key_id: &ledger::KeyId) {
    match source {
        KeySource::Given(path) | KeySource::DataDir(path) => {
            tracing::info!(path = %path.display(), %key_id, "audit log signing key loaded");
        }
        KeySource::Generated(path) => {
            tracing::info!(path = %path.display(), %key_id, "audit log signing key generated");
        }
    }
}

/// Arguments of `gatehouse audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Write the audit log, its signed tree heads and public keys to FILE (offline, on the
    /// data directory; signs a head over every entry first).
    Export(ExportArgs),
    /// Check an export file offline: exit 0 intact, 1 tampered (names the entries), 2 error.
    Verify(VerifyArgs),
    /// Sign a tree head over every entry now and print it (offline, on the data directory).
    TreeHead(TreeHeadArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Where to write the export (JSON lines); replaced atomically.
    pub file: PathBuf,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// File holding the audit log's signing key (default: `audit-signing.key` in --data-dir).
    #[arg(long, env = "GATEHOUSE_AUDIT_SIGNING_KEY_FILE")]
    pub audit_signing_key: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The export file (`-` reads standard input).
    pub file: PathBuf,
    /// Trusted log public key: a file with the JSON of `GET /api/v1/audit/public-key` (or one
    /// key object of it), or the key's base64. Repeatable. Without it, heads are checked
    /// against the keys embedded in the file, which proves consistency, not who signed.
    #[arg(long = "public-key")]
    pub public_keys: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct TreeHeadArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// File holding the audit log's signing key (default: `audit-signing.key` in --data-dir).
    #[arg(long, env = "GATEHOUSE_AUDIT_SIGNING_KEY_FILE")]
    pub audit_signing_key: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Export(a) => crate::runtime::block_on(export(a))?,
        AuditCommand::Verify(a) => Ok(verify(a)),
        AuditCommand::TreeHead(a) => crate::runtime::block_on(tree_head(a))?,
    }
}

/// The store, the ledger and the signing key of a data directory, opened offline.
struct Offline {
    store: Arc<dyn gatehouse_core::store::Store>,
    ledger: Arc<dyn AuditLedger>,
    key: ledger::LogSigningKey,
}

async fn open_offline(storage: &StorageArgs, key_file: Option<&Path>) -> anyhow::Result<Offline> {
    let config = storage.config()?;
    let store = open_store(&config).await?;
    let ledger: Arc<dyn AuditLedger> = Arc::new(
        gatehouse_store::SqlAuditLedger::connect(&config)
            .await
            .with_context(|| format!("cannot open the audit log ({})", config.describe()))?,
    );
    let (key, _) = load_signing_key(key_file, &storage.data_dir)?;
    ledger
        .record_log_key(&key.verifying_key(), SystemClock.now())
        .await
        .context("cannot record the log's public key")?;
    Ok(Offline { store, ledger, key })
}

async fn tree_head(args: TreeHeadArgs) -> anyhow::Result<ExitCode> {
    let off = open_offline(&args.storage, args.audit_signing_key.as_deref()).await?;
    let now = SystemClock.now();
    off.store
        .append_audit(&AuditRecord {
            at: now,
            actor: "local".into(),
            action: "audit.tree_head.sign".into(),
            target: "audit:tree-head".into(),
            outcome: AuditOutcome::Succeeded,
            detail: json!({ "key_id": off.key.key_id() }),
        })
        .await
        .context("cannot audit the tree head request")?;
    let size = off.ledger.tree_size().await?;
    let head = sign_tree_head(off.ledger.as_ref(), &off.key, size, now)
        .await
        .context("cannot sign a tree head")?;
    match args.format {
        OutputFormat::Json => print_json(&head)?,
        OutputFormat::Text => outln!(
            "tree head: {} entries, root {}, signed {} by key {}",
            head.tree_size,
            head.root_hash,
            head.timestamp,
            head.key_id
        ),
    }
    Ok(super::EXIT_OK)
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let off = open_offline(&args.storage, args.audit_signing_key.as_deref()).await?;
    let now = SystemClock.now();
    let target = format!("file:{}", args.file.display());
    // Audited before the head is signed, so the export covers its own entry.
    off.store
        .append_audit(&AuditRecord {
            at: now,
            actor: "local".into(),
            action: "audit.export".into(),
            target: target.clone(),
            outcome: AuditOutcome::Succeeded,
            detail: json!({ "key_id": off.key.key_id() }),
        })
        .await
        .context("cannot audit the export")?;
    let written = write_export(&off, &args.file, now).await;
    let summary = match written {
        Ok(summary) => summary,
        Err(err) => {
            let _ = off
                .store
                .append_audit(&AuditRecord {
                    at: SystemClock.now(),
                    actor: "local".into(),
                    action: "audit.export".into(),
                    target,
                    outcome: AuditOutcome::Failed,
                    detail: json!({ "reason": format!("{err:#}") }),
                })
                .await;
            return Err(err);
        }
    };
    match args.format {
        OutputFormat::Json => print_json(&json!({
            "file": args.file,
            "entries": summary.entries,
            "heads": summary.heads,
            "bytes": summary.bytes,
            "tree_head": summary.head,
        }))?,
        OutputFormat::Text => outln!(
            "exported {} audit entries and {} signed tree heads to {} ({} bytes); \
             last head: size {}, root {}, key {}",
            summary.entries,
            summary.heads,
            args.file.display(),
            summary.bytes,
            summary.head.tree_size,
            summary.head.root_hash,
            summary.head.key_id
        ),
    }
    Ok(super::EXIT_OK)
}

struct Written {
    entries: u64,
    heads: u64,
    bytes: u64,
    head: ledger::SignedTreeHead,
}

async fn write_export(off: &Offline, file: &Path, now: jiff::Timestamp) -> anyhow::Result<Written> {
    let size = off.ledger.tree_size().await?;
    let head = sign_tree_head(off.ledger.as_ref(), &off.key, size, now)
        .await
        .context("cannot sign a tree head over the log")?;
    let heads = off.ledger.tree_heads().await?;
    let keys = off.ledger.log_keys().await?;

    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let ledger_port = Arc::clone(&off.ledger);
    let handle = tokio::runtime::Handle::current();
    // The export writer is synchronous; entries are paged from the store as it asks for them,
    // so memory stays bounded whatever the log's length.
    let (tmp, summary) = tokio::task::spawn_blocking(move || {
        let mut source = Entries {
            ledger: ledger_port,
            handle,
            after: 0,
            last: size,
            page: Vec::new().into_iter(),
            error: None,
        };
        let summary = ledger::export_as_stored(&mut source, &heads, &keys, tmp.as_file());
        if let Some(err) = source.error {
            return Err(anyhow::Error::new(err).context("cannot read the audit log"));
        }
        let summary = summary.context("cannot write the export")?;
        tmp.as_file()
            .sync_all()
            .context("cannot write the export")?;
        Ok((tmp, summary))
    })
    .await
    .context("the export task failed")??;
    tmp.persist(file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(Written {
        entries: summary.entries,
        heads: summary.heads,
        bytes: summary.bytes,
        head,
    })
}

/// Entries `1..=last`, fetched a page at a time on the async runtime from a blocking thread.
struct Entries {
    ledger: Arc<dyn AuditLedger>,
    handle: tokio::runtime::Handle,
    after: u64,
    last: u64,
    page: std::vec::IntoIter<gatehouse_core::audit_log::EncodedEntry>,
    error: Option<StoreError>,
}

impl Iterator for Entries {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if let Some(entry) = self.page.next() {
            return Some(entry.bytes);
        }
        if self.error.is_some() || self.after >= self.last {
            return None;
        }
        let ledger = Arc::clone(&self.ledger);
        let after = self.after;
        match self
            .handle
            .block_on(async move { ledger.encoded_entries(after, MAX_PAGE_SIZE).await })
        {
            Ok(page) => {
                // Only up to the signed size: entries appended meanwhile belong to a later head.
                let page: Vec<_> = page.into_iter().filter(|e| e.seq <= self.last).collect();
                match page.last() {
                    Some(last) => self.after = last.seq,
                    None => return None,
                }
                self.page = page.into_iter();
                self.page.next().map(|e| e.bytes)
            }
            Err(err) => {
                self.error = Some(err);
                None
            }
        }
    }
}

fn verify(args: VerifyArgs) -> ExitCode {
    match verify_inner(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            super::exit_error()
        }
    }
}

fn verify_inner(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut trusted = Vec::new();
    for path in &args.public_keys {
        trusted.extend(read_public_keys(path)?);
    }
    let trusted = (!trusted.is_empty()).then_some(trusted);
    let reader: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .with_context(|| format!("cannot open {}", args.file.display()))?,
        )
    };
    let report = ledger::verify(BufReader::new(reader), trusted.as_deref())
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    match args.format {
        OutputFormat::Json => {
            let mut value = serde_json::to_value(&report)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("intact".into(), json!(report.is_intact()));
            }
            print_json(&value)?;
        }
        OutputFormat::Text => crate::output::out!("{report}"),
    }
    Ok(if report.is_intact() {
        super::EXIT_OK
    } else {
        super::EXIT_FINDINGS
    })
}

/// Reads trusted keys from the JSON of `GET /api/v1/audit/public-key`, one key object, or the
/// bare base64 of a public key.
fn read_public_keys(path: &Path) -> anyhow::Result<Vec<ledger::LogVerifyingKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the public key file {}", path.display()))?;
    let bad = || format!("{} holds no usable log public key", path.display());
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(object)) => {
            if let Some(keys) = object.get("keys") {
                let mut keys: Vec<ledger::LogVerifyingKey> =
                    serde_json::from_value(keys.clone()).with_context(bad)?;
                if let Some(current) = object.get("current") {
                    keys.push(serde_json::from_value(current.clone()).with_context(bad)?);
                }
                Ok(keys)
            } else {
                Ok(vec![
                    serde_json::from_value(serde_json::Value::Object(object)).with_context(bad)?,
                ])
            }
        }
        Ok(serde_json::Value::String(b64)) => Ok(vec![
            ledger::LogVerifyingKey::from_base64(&b64).with_context(bad)?,
        ]),
        Ok(_) => bail!(bad()),
        Err(_) => Ok(vec![
            ledger::LogVerifyingKey::from_base64(text.trim()).with_context(bad)?,
        ]),
    }
}
