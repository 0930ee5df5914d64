//! `gatehouse keys generate|rotate|list`, and the keyring `serve` and `demo` seal evidence with.
//!
//! Evidence is sealed at rest under per-blob data keys wrapped by key-encryption keys (KEKs,
//! see docs/encryption.md). KEKs never live in the repository or the database: they come from
//! a key file (`--key-file`, `GATEHOUSE_KEY_FILE`; JSON lines written by `keys generate`, mode
//! 0600) or from the `GATEHOUSE_KEYS` environment variable (`id:base64key,…`). Only key ids
//! are ever printed or logged.
//!
//! When neither is given, `serve` on embedded SQLite (and `demo`) uses `keys.jsonl` in the data
//! directory, generating it (0600) on first start, so the zero-configuration path keeps
//! working; that protects database files and backups taken without the data directory, not a
//! stolen disk. `serve` on PostgreSQL refuses to start without a configured key: a key file
//! next to a remote database's client would be a silent, easily lost single copy.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::clock::Clock as _;
use gatehouse_core::events::NewEvent;
use gatehouse_ledger::{Kek, KekId, Keyring};
use gatehouse_server::SystemClock;
use gatehouse_server::security_events::{self, Category, Outcome, SecurityEvent};
use gatehouse_server::vault::{RotationReport, Vault};
use gatehouse_store::StoreConfig;
use serde_json::json;

use super::serve::StorageArgs;
use crate::output::{OutputFormat, outln, print_json};

/// Environment variable holding keys inline: `id:base64key,id:base64key` (last = active).
pub const KEYS_ENV: &str = "GATEHOUSE_KEYS";
/// Key file used in the data directory when no key is configured (embedded SQLite only).
pub const DATA_DIR_KEY_FILE: &str = "keys.jsonl";
/// Folder of upload spool files inside the data directory.
pub const SPOOL_DIR: &str = "spool";

/// Where the key-encryption keys come from (shared by `serve`, `keys rotate`, `keys list`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyArgs {
    /// Key file of key-encryption keys (one JSON object per line, as `gatehouse keys generate`
    /// writes; must not be readable by group or others). Without it, the GATEHOUSE_KEYS
    /// environment variable (`id:base64key,…`) is used.
    #[arg(long, env = "GATEHOUSE_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Generate a new key-encryption key and append it to a key file (created with mode 0600);
    /// the newest key seals new data.
    Generate(GenerateArgs),
    /// Rewrap every data key under the active (newest) key, without re-encrypting evidence;
    /// resumes where an interrupted run stopped.
    Rotate(RotateArgs),
    /// Show the key ids of the keyring and how many evidence blobs each one wraps.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// The key file to append to (created if missing).
    #[arg(long, env = "GATEHOUSE_KEY_FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Stop after rewrapping this many data keys (to rotate in slices; run again to go on).
    #[arg(long)]
    pub max_rows: Option<u64>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        KeysCommand::Generate(args) => generate(args),
        KeysCommand::Rotate(args) => crate::runtime::block_on(rotate(args))?,
        KeysCommand::List(args) => crate::runtime::block_on(list(args))?,
    }
}

/// Reads a key file, refusing one that group or others can read (like ssh does).
fn read_key_file(path: &Path) -> anyhow::Result<Keyring> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "the key file {} is readable by group or others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?,
    );
    Ok(Keyring::parse(&text, &path.display().to_string())?)
}

/// The configured keyring and a description of its source (never key material), or `None`
/// when neither `--key-file`/`GATEHOUSE_KEY_FILE` nor `GATEHOUSE_KEYS` is set.
pub fn configured_keyring(args: &KeyArgs) -> anyhow::Result<Option<(Keyring, String)>> {
    if let Some(path) = &args.key_file {
        let ring = read_key_file(path)?;
        if ring.is_empty() {
            bail!(
                "the key file {} holds no key; add one with `gatehouse keys generate --out {}`",
                path.display(),
                path.display()
            );
        }
        return Ok(Some((ring, format!("key file {}", path.display()))));
    }
    match std::env::var(KEYS_ENV) {
        Ok(value) => {
            let value = zeroize::Zeroizing::new(value);
            let ring = Keyring::parse_list(&value, &format!("env:{KEYS_ENV}"))?;
            if ring.is_empty() {
                bail!("{KEYS_ENV} is set but holds no key");
            }
            Ok(Some((ring, format!("environment variable {KEYS_ENV}"))))
        }
        Err(_) => Ok(None),
    }
}

/// Appends a new key to `path` (created 0600), after checking the file parses; returns its id
/// and creation time.
fn append_new_key(path: &Path) -> anyhow::Result<(KekId, jiff::Timestamp)> {
    let mut existing = if path.exists() {
        read_key_file(path)?
    } else {
        Keyring::new()
    };
    let kek = Kek::generate(SystemClock.now())?;
    let line = kek.to_key_file_line();
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot open the key file {}", path.display()))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the key file {}", path.display()))?;
    let (id, created) = (kek.id().clone(), kek.created());
    existing.insert(kek)?;
    // Re-read what is now on disk: the new key must be the one the keyring will use.
    let reread = read_key_file(path)?;
    if reread.active().map(|k| k.id()) != Some(&id) {
        bail!(
            "the key file {} has a key newer than the one just generated ({id}); check the \
             system clock",
            path.display()
        );
    }
    Ok((id, created))
}

fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let Some(path) = args.out else {
        bail!("say where to write the key: --out FILE (or GATEHOUSE_KEY_FILE)");
    };
    let (id, created) = append_new_key(&path)?;
    match args.format {
        OutputFormat::Json => print_json(&json!({
            "kek_id": id.to_string(),
            "created": created,
            "key_file": path.display().to_string(),
        }))?,
        OutputFormat::Text => outln!(
            "added key-encryption key {} to {} (mode 0600); it seals new evidence from now on. \
             Run `gatehouse keys rotate --key-file {}` to rewrap existing data keys under it.",
            id,
            path.display(),
            path.display()
        ),
    }
    Ok(super::EXIT_OK)
}

/// The keyring `serve`/`demo` use: the configured one, else (embedded SQLite only) the data
/// directory's key file, generated on first start.
pub fn keyring_for_server(
    args: &KeyArgs,
    config: &StoreConfig,
) -> anyhow::Result<(Keyring, String)> {
    if let Some(found) = configured_keyring(args)? {
        return Ok(found);
    }
    match config {
        StoreConfig::Sqlite { data_dir } => {
            let path = data_dir.join(DATA_DIR_KEY_FILE);
            if !path.exists() {
                std::fs::create_dir_all(data_dir).with_context(|| {
                    format!("cannot create the data directory {}", data_dir.display())
                })?;
                let (id, _) = append_new_key(&path)?;
                tracing::warn!(
                    kek_id = %id,
                    key_file = %path.display(),
                    "no key-encryption key configured: generated one in the data directory \
                     (keep a copy elsewhere; see docs/encryption.md)"
                );
            }
            let ring = read_key_file(&path)?;
            Ok((ring, format!("key file {}", path.display())))
        }
        StoreConfig::Postgres { .. } => bail!(
            "refusing to start: no key-encryption key configured for evidence encryption at \
             rest. Create one with `gatehouse keys generate --out /etc/gatehouse/keys.jsonl` \
             and pass --key-file (or GATEHOUSE_KEY_FILE), or set {KEYS_ENV}"
        ),
    }
}

/// Opens the evidence vault over `keyring` (from [`keyring_for_server`], read before the
/// server starts so a missing key refuses the start early), seals any rows written before
/// encryption at rest, and attaches the vault to the server's release gate.
pub async fn attach_vault(
    state: &gatehouse_server::AppState,
    config: &StoreConfig,
    data_dir: &Path,
    (keyring, source): (Keyring, String),
) -> anyhow::Result<()> {
    let spool = data_dir.join(SPOOL_DIR);
    clear_stale_spool(&spool);
    let vault = open_vault(config, keyring, &spool).await?;
    let sealed = vault
        .seal_plain_rows(None)
        .await
        .context("cannot seal evidence stored before encryption at rest")?;
    if sealed > 0 {
        tracing::info!(
            blobs = sealed,
            "sealed evidence stored before encryption at rest"
        );
    }
    tracing::info!(
        kek_id = %vault.keyring().active().map(|k| k.id().to_string()).unwrap_or_default(),
        keys = vault.keyring().len(),
        source = %source,
        "evidence is sealed at rest"
    );
    if let Some(gate) = state.gate() {
        gate.attach_vault(Arc::new(vault));
    }
    Ok(())
}

/// Spool files left by a crash hold sealed bytes whose data key was never stored: useless,
/// so removed.
fn clear_stale_spool(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("upload-") && name.ends_with(".sealed") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

async fn open_vault(config: &StoreConfig, keyring: Keyring, spool: &Path) -> anyhow::Result<Vault> {
    // Opening the control-plane store runs the migrations (0410 adds the sealed columns).
    let _store = super::serve::open_store(config).await?;
    let blobs = gatehouse_store::open_blobs(config)
        .await
        .with_context(|| format!("cannot open the evidence store ({})", config.describe()))?;
    Ok(Vault::new(blobs, Arc::new(keyring), spool)?)
}

async fn rotate(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let config = args.storage.config()?;
    let Some((keyring, source)) = configured_keyring(&args.keys)? else {
        bail!(
            "say which keys to rotate with: --key-file FILE (or GATEHOUSE_KEY_FILE, or {KEYS_ENV}); \
             the newest key in it becomes the one every data key is wrapped by"
        );
    };
    let (store, events) = gatehouse_store::open_with_events(&config)
        .await
        .with_context(|| format!("cannot open the store ({})", config.describe()))?;
    let blobs = gatehouse_store::open_blobs(&config)
        .await
        .with_context(|| format!("cannot open the evidence store ({})", config.describe()))?;
    let spool = args.storage.data_dir.join(SPOOL_DIR);
    let vault = Vault::new(blobs, Arc::new(keyring), &spool)?;
    let active = vault
        .keyring()
        .active()
        .map(|k| k.id().to_string())
        .unwrap_or_default();
    let result = vault.rotate(args.max_rows).await;
    let now = SystemClock.now();
    let (outcome, detail, event) = match &result {
        Ok(report) => (
            AuditOutcome::Succeeded,
            json!({
                "active_kek": report.active_kek,
                "rewrapped": report.rewrapped,
                "rewrapped_from": report.rewrapped_from,
                "sealed_plain": report.sealed_plain,
                "skipped": report.skipped,
                "complete": report.complete,
                "key_source": source,
            }),
            SecurityEvent::new(
                Category::Configuration,
                security_events::action::KEY_ROTATED,
                Outcome::Success,
            )
            .field("gatehouse.kek_id", report.active_kek.clone())
            .field(
                "gatehouse.previous_kek_ids",
                report.rewrapped_from.keys().cloned().collect::<Vec<_>>(),
            )
            .field("gatehouse.rewrapped", report.rewrapped)
            .field("gatehouse.complete", report.complete),
        ),
        Err(e) => (
            AuditOutcome::Failed,
            json!({ "active_kek": active, "reason": e.to_string(), "key_source": source }),
            SecurityEvent::new(
                Category::Configuration,
                security_events::action::KEY_ROTATED,
                Outcome::Failure,
            )
            .field("gatehouse.kek_id", active.clone())
            .reason(e.to_string()),
        ),
    };
    store
        .append_audit(&AuditRecord {
            at: now,
            actor: "local".into(),
            action: "keys.rotate".into(),
            target: format!("kek:{active}"),
            outcome,
            detail,
        })
        .await
        .context("cannot audit the key rotation")?;
    let ecs = event.user("local").to_ecs(now, None);
    if let Err(e) = events
        .append_events(&[NewEvent {
            source: security_events::SOURCE.to_owned(),
            received_at: now,
            event_time: Some(now),
            raw: ecs.to_string(),
            ecs,
        }])
        .await
    {
        tracing::error!(error = %e, "cannot store the key-rotated security event");
    }
    let report = result.context(
        "key rotation stopped (rows done so far stay rewrapped; run it again to resume)",
    )?;
    print_rotation(&report, args.format)?;
    Ok(super::EXIT_OK)
}

fn print_rotation(report: &RotationReport, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => print_json(report)?,
        OutputFormat::Text => {
            let from = report
                .rewrapped_from
                .iter()
                .map(|(id, n)| format!("{n} from {id}"))
                .collect::<Vec<_>>()
                .join(", ");
            outln!(
                "rewrapped {} data key(s) under {}{}; sealed {} plaintext blob(s){}",
                report.rewrapped,
                report.active_kek,
                if from.is_empty() {
                    String::new()
                } else {
                    format!(" ({from})")
                },
                report.sealed_plain,
                if report.complete {
                    ". Every data key is now wrapped by the active key; older keys can be \
                     removed from the key file once backups no longer need them."
                        .to_owned()
                } else {
                    format!(
                        "; stopped at --max-rows {}: run again to finish",
                        report.rewrapped
                    )
                }
            );
        }
    }
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let config = args.storage.config()?;
    let keyring = match configured_keyring(&args.keys)? {
        Some((ring, _)) => ring,
        None => match &config {
            StoreConfig::Sqlite { data_dir } if data_dir.join(DATA_DIR_KEY_FILE).exists() => {
                read_key_file(&data_dir.join(DATA_DIR_KEY_FILE))?
            }
            _ => Keyring::new(),
        },
    };
    let has_store = match &config {
        StoreConfig::Sqlite { data_dir } => {
            data_dir.join(gatehouse_store::SQLITE_FILE_NAME).exists()
        }
        StoreConfig::Postgres { .. } => true,
    };
    let usage = if has_store {
        let _store = super::serve::open_store(&config).await?;
        let blobs = gatehouse_store::open_blobs(&config)
            .await
            .with_context(|| format!("cannot open the evidence store ({})", config.describe()))?;
        blobs.key_usage().await.context("cannot count data keys")?
    } else {
        Vec::new()
    };
    let active = keyring.active().map(|k| k.id().clone());
    let count_for = |id: &str| {
        usage
            .iter()
            .filter(|u| u.kek_id.as_deref() == Some(id))
            .map(|u| u.blobs)
            .sum::<u64>()
    };
    let mut keys = Vec::new();
    for id in keyring.ids() {
        let created = keyring
            .get(id)
            .map(|k| k.created().to_string())
            .unwrap_or_default();
        keys.push(json!({
            "kek_id": id.to_string(),
            "created": created,
            "active": Some(id) == active.as_ref(),
            "data_keys": count_for(id.as_str()),
        }));
    }
    // Data keys wrapped by keys this keyring does not hold cannot be opened: show them.
    let missing: Vec<_> = usage
        .iter()
        .filter_map(|u| {
            let id = u.kek_id.as_deref()?;
            keyring
                .ids()
                .all(|k| k.as_str() != id)
                .then(|| json!({ "kek_id": id, "data_keys": u.blobs }))
        })
        .collect();
    let plain: u64 = usage
        .iter()
        .filter(|u| u.kek_id.is_none())
        .map(|u| u.blobs)
        .sum();
    match args.format {
        OutputFormat::Json => print_json(&json!({
            "keys": keys,
            "missing_keys": missing,
            "plaintext_blobs": plain,
        }))?,
        OutputFormat::Text => {
            if keys.is_empty() {
                outln!(
                    "no key-encryption key configured (--key-file, GATEHOUSE_KEY_FILE or {KEYS_ENV})"
                );
            }
            for k in &keys {
                outln!(
                    "{}  created {}  data keys {}{}",
                    k["kek_id"].as_str().unwrap_or_default(),
                    k["created"].as_str().unwrap_or_default(),
                    k["data_keys"],
                    if k["active"].as_bool() == Some(true) {
                        "  (active)"
                    } else {
                        ""
                    }
                );
            }
            for m in &missing {
                outln!(
                    "{}  NOT IN THIS KEYRING  data keys {}",
                    m["kek_id"].as_str().unwrap_or_default(),
                    m["data_keys"]
                );
            }
            if plain > 0 {
                outln!(
                    "{plain} blob(s) stored before encryption at rest (sealed on the next serve or rotate)"
                );
            }
        }
    }
    Ok(super::EXIT_OK)
}
