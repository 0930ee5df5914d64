//! The log signing key and the signed tree head schedule of the tamper-evident audit log.
//!
//! The store chains and hashes every entry as it is appended; what it cannot do is vouch for
//! the log, because whoever can write the database could rewrite the whole chain. A signed tree
//! head can: an Ed25519 signature, by a key the database does not hold, over the Merkle root at
//! a size. [`AuditLog`] signs one every `head_every` entries, at start-up when entries were
//! appended since the last head (e.g. by `gatehouse admin bootstrap`), and on demand
//! (`POST /api/v1/audit/tree-head`, `gatehouse audit export`).
//!
//! The key comes from `--audit-signing-key FILE` (or `GATEHOUSE_AUDIT_SIGNING_KEY_FILE`), else
//! from `audit-signing.key` in the data directory, generated there (mode 0600) on first use.
//! Its secret is only ever held in zeroizing memory and is never logged; only its key id and
//! public key are shown.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_core::audit_log::{AuditLedger, sign_tree_head};
use gatehouse_core::store::StoreError;
use gatehouse_ledger::{LogSigningKey, LogVerifyingKey, SignedTreeHead};
use jiff::Timestamp;
use zeroize::Zeroizing;

/// File name of the generated log signing key inside the data directory.
pub const SIGNING_KEY_FILE_NAME: &str = "audit-signing.key";

/// Default number of entries between two scheduled signed tree heads.
pub const DEFAULT_HEAD_EVERY: u64 = 1000;

/// Why the log signing key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("cannot read the audit log signing key {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the audit log signing key {path} is not a gatehouse log key (expected the standard \
         base64 of a 32-byte Ed25519 secret on one line)"
    )]
    Malformed { path: PathBuf },
    #[error("cannot create the audit log signing key {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate the audit log signing key: {0}")]
    Generate(String),
}

/// Where the signing key came from, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The file the operator named.
    Given(PathBuf),
    /// The data directory's key file, which existed.
    DataDir(PathBuf),
    /// The data directory's key file, generated just now.
    Generated(PathBuf),
}

/// Loads the log signing key from `explicit`, else from the data directory, generating it
/// there on first use.
pub fn load_signing_key(
    explicit: Option<&Path>,
    data_dir: &Path,
) -> Result<(LogSigningKey, KeySource), SigningKeyError> {
    if let Some(path) = explicit {
        return Ok((read_key(path)?, KeySource::Given(path.to_owned())));
    }
    let path = data_dir.join(SIGNING_KEY_FILE_NAME);
    if path.exists() {
        return Ok((read_key(&path)?, KeySource::DataDir(path)));
    }
    let key = LogSigningKey::generate().map_err(|e| SigningKeyError::Generate(e.to_string()))?;
    match write_new_key(data_dir, &path, &key) {
        Ok(()) => Ok((key, KeySource::Generated(path))),
        // Another process (a concurrent `serve` or `audit export`) created it first: use it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((read_key(&path)?, KeySource::DataDir(path)))
        }
        Err(source) => Err(SigningKeyError::Create { path, source }),
    }
}

fn read_key(path: &Path) -> Result<LogSigningKey, SigningKeyError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| SigningKeyError::Read {
                path: path.to_owned(),
                source,
            })?,
        );
    warn_if_readable_by_others(path);
    LogSigningKey::from_base64_secret(&text).map_err(|_| SigningKeyError::Malformed {
        path: path.to_owned(),
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the audit log signing key is readable by other users; restrict it to mode 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

fn write_new_key(data_dir: &Path, path: &Path, key: &LogSigningKey) -> std::io::Result<()> {
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        dir.mode(0o700);
    }
    dir.create(data_dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut line = Zeroizing::new(key.to_base64_secret().to_string());
    line.push('\n');
    let written = file
        .write_all(line.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        // Never leave a half-written key behind for the next start to trip over.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// The signing side of the audit log, shared by the server's handlers.
pub struct AuditLog {
    ledger: Arc<dyn AuditLedger>,
    key: LogSigningKey,
    head_every: u64,
    /// Largest tree size signed so far; held while signing so heads are signed one at a time.
    signed: tokio::sync::Mutex<u64>,
}

impl AuditLog {
    /// Records the key's public half in the store and signs a head if entries were appended
    /// since the last one (by another process, or before a crash).
    pub async fn start(
        ledger: Arc<dyn AuditLedger>,
        key: LogSigningKey,
        head_every: u64,
        now: Timestamp,
    ) -> Result<AuditLog, StoreError> {
        ledger.record_log_key(&key.verifying_key(), now).await?;
        let latest = ledger.latest_tree_head().await?.map_or(0, |h| h.tree_size);
        let log = AuditLog {
            ledger,
            key,
            head_every: head_every.max(1),
            signed: tokio::sync::Mutex::new(latest),
        };
        let size = log.ledger.tree_size().await?;
        if size > latest {
            log.sign_at(size, now).await?;
        }
        Ok(log)
    }

    pub fn ledger(&self) -> &dyn AuditLedger {
        self.ledger.as_ref()
    }

    pub fn public_key(&self) -> LogVerifyingKey {
        self.key.verifying_key()
    }

    pub fn head_every(&self) -> u64 {
        self.head_every
    }

    /// Called after entry `seq` was appended: signs a head at `seq` when `head_every` entries
    /// have accumulated since the last one. A failure is logged, not returned: the entry is
    /// already durable, and the next head will cover it.
    pub async fn after_append(&self, seq: u64, now: Timestamp) {
        let mut signed = self.signed.lock().await;
        if seq < signed.saturating_add(self.head_every) {
            return;
        }
        if let Err(err) = self.sign_locked(&mut signed, seq, now).await {
            tracing::error!(error = %err, tree_size = seq, "cannot sign an audit tree head");
        }
    }

    /// Signs a head over every entry stored right now.
    pub async fn sign_now(&self, now: Timestamp) -> Result<SignedTreeHead, StoreError> {
        let mut signed = self.signed.lock().await;
        let size = self.ledger.tree_size().await?;
        self.sign_locked(&mut signed, size, now).await
    }

    async fn sign_at(&self, size: u64, now: Timestamp) -> Result<SignedTreeHead, StoreError> {
        let mut signed = self.signed.lock().await;
        self.sign_locked(&mut signed, size, now).await
    }

    async fn sign_locked(
        &self,
        signed: &mut u64,
        size: u64,
        now: Timestamp,
    ) -> Result<SignedTreeHead, StoreError> {
        let head = sign_tree_head(self.ledger.as_ref(), &self.key, size, now).await?;
        *signed = (*signed).max(size);
        tracing::info!(
            tree_size = head.tree_size,
            root = %head.root_hash,
            key_id = %head.key_id,
            "signed audit tree head"
        );
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn key_is_generated_once_private_and_reloaded() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let (first, source) = load_signing_key(None, &data).unwrap();
        let path = data.join(SIGNING_KEY_FILE_NAME);
        assert_eq!(source, KeySource::Generated(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (again, source) = load_signing_key(None, &data).unwrap();
        assert_eq!(source, KeySource::DataDir(path.clone()));
        assert_eq!(again.key_id(), first.key_id());

        // An explicit file wins over the data directory.
        let other = tmp.path().join("other.key");
        let key = LogSigningKey::from_secret_bytes(&[5; 32]);
        std::fs::write(&other, key.to_base64_secret().as_bytes()).unwrap();
        let (given, source) = load_signing_key(Some(&other), &data).unwrap();
        assert_eq!(source, KeySource::Given(other));
        assert_eq!(given.key_id(), key.key_id());
    }

    #[test]
    fn bad_key_files_give_errors_that_name_the_file_not_the_content() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("bad.key");
        std::fs::write(&bad, "c2VjcmV0LXNlY3JldA==\n").unwrap();
        let err = load_signing_key(Some(&bad), tmp.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.key"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        let missing = tmp.path().join("missing.key");
        let err = load_signing_key(Some(&missing), tmp.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.key"), "{err}");
    }
}
