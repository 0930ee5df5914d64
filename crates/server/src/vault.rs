//! The evidence vault: evidence bytes sealed at rest, streamed in and out, keys rotated.
//!
//! This is where the keyring meets the `BlobStore` port. An upload is written to a spool file
//! in the data directory, already sealed (chunked XChaCha20-Poly1305 under a fresh data key,
//! `gatehouse_ledger::stream`) while its SHA-256 and size are computed, so no plaintext ever
//! touches the disk and no upload is held in memory; the spool is deleted when it is dropped,
//! whatever happened. The parser reads the spool back through the opening reader, and a
//! successful upload copies the sealed chunks into the database in one transaction.
//!
//! Reads fetch a page of sealed chunks at a time and check, at the end, that the plaintext
//! hashes to the digest the blob is stored under (so a row swapped for another's is caught).
//!
//! Rotation rewraps each blob's data key under the active key-encryption key, one
//! compare-and-set per row, never re-encrypting chunks: an interrupted run leaves every row
//! either old or new, both readable while both keys are in the keyring, and the next run
//! rewraps what is left. Rows written before encryption at rest are sealed by
//! [`Vault::seal_plain_rows`] (run at start-up and by rotation).

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_core::blobs::{
    BlobKey, BlobStore, ChunkSource, KeyUsage, NewBlob, PutOutcome, StoredBlob,
};
use gatehouse_core::store::StoreError;
use gatehouse_ledger::stream::{DEFAULT_CHUNK_SIZE, FramedChunks, OpeningReader, SealedChunks};
use gatehouse_ledger::{KekId, Keyring, SealingWriter, StreamError, StreamHeader};
use jiff::Timestamp;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

/// Sealed chunks fetched per database query when reading a blob.
const READ_PAGE: u32 = 8;
/// Rows read per query during rotation.
const ROTATE_PAGE: u32 = 256;

/// Why a vault operation failed. Key errors name the key id, never key bytes.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the keyring is empty: no key-encryption key to seal evidence with")]
    NoActiveKey,
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("evidence spool: {0}")]
    Io(#[from] io::Error),
    #[error("the upload is larger than the evidence size limit ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("the evidence blob sha256:{sha256} is not stored")]
    Missing { sha256: String },
}

/// Sealed evidence storage: the blob store port, the keyring and a spool directory.
pub struct Vault {
    blobs: Arc<dyn BlobStore>,
    keyring: Arc<Keyring>,
    spool_dir: PathBuf,
    chunk_size: usize,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("keys", &self.keyring.ids().collect::<Vec<_>>())
            .field("spool_dir", &self.spool_dir)
            .finish_non_exhaustive()
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RotationReport {
    /// The key every data key is now wrapped by.
    pub active_kek: String,
    /// Data keys rewrapped in this run, by the key that wrapped them before.
    pub rewrapped_from: BTreeMap<String, u64>,
    pub rewrapped: u64,
    /// Rows written before encryption at rest, sealed in this run.
    pub sealed_plain: u64,
    /// Rows another writer changed first (they are rewrapped by the next run, if needed).
    pub skipped: u64,
    /// `false` when the run stopped at `max_rows` before the end.
    pub complete: bool,
}

impl Vault {
    /// A vault sealing new blobs under the keyring's active (newest) key, spooling uploads in
    /// `spool_dir` (created if missing).
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        keyring: Arc<Keyring>,
        spool_dir: impl Into<PathBuf>,
    ) -> Result<Vault, VaultError> {
        if keyring.active().is_none() {
            return Err(VaultError::NoActiveKey);
        }
        let spool_dir = spool_dir.into();
        std::fs::create_dir_all(&spool_dir)?;
        Ok(Vault {
            blobs,
            keyring,
            spool_dir,
            chunk_size: DEFAULT_CHUNK_SIZE,
        })
    }

    /// Smaller chunks, for tests that want many chunks from little data.
    #[must_use]
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Vault {
        self.chunk_size = chunk_size;
        self
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// A new spool for one upload, refusing more than `limit` plaintext bytes.
    pub fn spool(&self, limit: u64) -> Result<SpoolWriter, VaultError> {
        let kek = self.keyring.active().ok_or(VaultError::NoActiveKey)?;
        let file = tempfile::Builder::new()
            .prefix("upload-")
            .suffix(".sealed")
            .tempfile_in(&self.spool_dir)?;
        let writer = file.reopen()?;
        Ok(SpoolWriter {
            sealer: SealingWriter::new(BufWriter::new(writer), kek, self.chunk_size)?,
            file,
            hasher: Sha256::new(),
            size: 0,
            limit,
            chunk_size: self.chunk_size,
        })
    }

    /// The plaintext of a finished spool, for the parser (blocking I/O).
    pub fn spool_reader(&self, spool: &SealedSpool) -> Result<impl Read + use<>, VaultError> {
        let file = BufReader::new(spool.file.reopen()?);
        Ok(VerifyingReader::new(
            OpeningReader::new(
                &spool.header,
                &self.keyring,
                FramedChunks::new(file, spool.chunk_size),
            )?,
            spool.sha256.clone(),
        ))
    }

    /// Stores a finished spool under its digest (once: a digest already stored is left as
    /// is). One transaction; on error nothing is stored. The sealed chunks are copied from
    /// the spool file as they are, so nothing is decrypted or re-encrypted here.
    pub async fn put(&self, spool: &SealedSpool, now: Timestamp) -> Result<PutOutcome, VaultError> {
        let blob = NewBlob {
            sha256: spool.sha256.clone(),
            size: spool.size,
            key: BlobKey {
                kek_id: spool.header.kek_id().to_string(),
                header: spool.header.encode(),
            },
            stored_at: now,
        };
        let mut source = FileChunks(FramedChunks::new(
            BufReader::new(spool.file.reopen()?),
            spool.chunk_size,
        ));
        Ok(self.blobs.put(&blob, &mut source).await?)
    }

    /// A blocking reader of the stored blob `sha256`'s plaintext, or `None` when no such blob
    /// is stored. Must be used outside the async runtime's worker threads (e.g. in
    /// `spawn_blocking`): it fetches chunks with `Handle::block_on`. A key missing from the
    /// keyring is reported here, naming the key id.
    pub async fn open(&self, sha256: &str) -> Result<Option<Box<dyn Read + Send>>, VaultError> {
        let Some(blob) = self.blobs.blob(sha256).await? else {
            return Ok(None);
        };
        let reader: Box<dyn Read + Send> = match blob {
            StoredBlob::Plain { content } => Box::new(VerifyingReader::new(
                io::Cursor::new(content),
                sha256.to_owned(),
            )),
            StoredBlob::Sealed { key, .. } => {
                let header = StreamHeader::decode(&key.header)?;
                let chunks = StoreChunks {
                    blobs: Arc::clone(&self.blobs),
                    sha256: sha256.to_owned(),
                    next: 0,
                    page: VecDeque::new(),
                    exhausted: false,
                    handle: tokio::runtime::Handle::current(),
                };
                Box::new(VerifyingReader::new(
                    OpeningReader::new(&header, &self.keyring, chunks)?,
                    sha256.to_owned(),
                ))
            }
        };
        Ok(Some(reader))
    }

    /// The whole plaintext of a blob (for small blobs and tests; evidence is parsed from
    /// [`Vault::open`] as a stream).
    pub async fn read_all(&self, sha256: &str) -> Result<Vec<u8>, VaultError> {
        let reader = self
            .open(sha256)
            .await?
            .ok_or_else(|| VaultError::Missing {
                sha256: sha256.to_owned(),
            })?;
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            let mut out = Vec::new();
            reader.read_to_end(&mut out).map(|_| out)
        })
        .await
        .map_err(|e| VaultError::Io(io::Error::other(e)))?;
        Ok(read?)
    }

    /// Deletes a blob no evidence row refers to (an upload whose gate write failed).
    pub async fn discard_unreferenced(&self, sha256: &str) -> Result<bool, VaultError> {
        Ok(self.blobs.delete_unreferenced(sha256).await?)
    }

    /// Blob counts per key-encryption key (`None`: plaintext rows not yet sealed).
    pub async fn usage(&self) -> Result<Vec<KeyUsage>, VaultError> {
        Ok(self.blobs.key_usage().await?)
    }

    /// Seals every row written before encryption at rest, one transaction per row; returns
    /// how many. Stops after `max_rows` rows when given.
    pub async fn seal_plain_rows(&self, max_rows: Option<u64>) -> Result<u64, VaultError> {
        let kek = self.keyring.active().ok_or(VaultError::NoActiveKey)?;
        let mut sealed = 0u64;
        loop {
            let page = self.blobs.plain_blobs(ROTATE_PAGE).await?;
            if page.is_empty() {
                return Ok(sealed);
            }
            let mut progressed = false;
            for sha256 in page {
                if max_rows.is_some_and(|max| sealed >= max) {
                    return Ok(sealed);
                }
                let Some(StoredBlob::Plain { content }) = self.blobs.blob(&sha256).await? else {
                    continue;
                };
                let mut sealer = SealingWriter::new(Vec::new(), kek, self.chunk_size)?;
                sealer.write_all(&content)?;
                let (header, _, framed) = sealer.finish()?;
                let key = BlobKey {
                    kek_id: header.kek_id().to_string(),
                    header: header.encode(),
                };
                let mut source =
                    FileChunks(FramedChunks::new(io::Cursor::new(framed), self.chunk_size));
                if self.blobs.seal_plain(&sha256, &key, &mut source).await? {
                    sealed += 1;
                    progressed = true;
                }
            }
            if !progressed {
                return Ok(sealed);
            }
        }
    }

    /// Rewraps every data key not wrapped by the active key, then seals plaintext rows;
    /// stops after `max_rows` rewraps when given (for tests of an interrupted run).
    pub async fn rotate(&self, max_rows: Option<u64>) -> Result<RotationReport, VaultError> {
        let active: KekId = self
            .keyring
            .active()
            .ok_or(VaultError::NoActiveKey)?
            .id()
            .clone();
        let mut report = RotationReport {
            active_kek: active.to_string(),
            ..RotationReport::default()
        };
        let mut after: Option<String> = None;
        loop {
            let page = self
                .blobs
                .keys_not_wrapped_by(active.as_str(), after.as_deref(), ROTATE_PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            for row in page {
                if max_rows.is_some_and(|max| report.rewrapped >= max) {
                    return Ok(report);
                }
                after = Some(row.sha256.clone());
                let header = StreamHeader::decode(&row.key.header)?;
                let Some(new_header) = header.rewrap_to(&self.keyring, &active)? else {
                    continue;
                };
                let new_key = BlobKey {
                    kek_id: active.to_string(),
                    header: new_header.encode(),
                };
                if self
                    .blobs
                    .replace_key(&row.sha256, &row.key, &new_key)
                    .await?
                {
                    report.rewrapped += 1;
                    *report.rewrapped_from.entry(row.key.kek_id).or_insert(0) += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
        report.sealed_plain = self.seal_plain_rows(None).await?;
        report.complete = true;
        Ok(report)
    }
}

/// An upload being written: plaintext in, sealed frames out to the spool file.
pub struct SpoolWriter {
    sealer: SealingWriter<BufWriter<File>>,
    file: NamedTempFile,
    hasher: Sha256,
    size: u64,
    limit: u64,
    chunk_size: usize,
}

impl SpoolWriter {
    /// Adds bytes; refuses (and the spool is deleted when dropped) past the limit.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), VaultError> {
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size > self.limit {
            return Err(VaultError::TooLarge { limit: self.limit });
        }
        self.hasher.update(bytes);
        self.sealer.write_all(bytes)?;
        Ok(())
    }

    /// Plaintext bytes written so far.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Seals the final chunk and syncs nothing (the spool is scratch); the digest is known.
    pub fn finish(self) -> Result<SealedSpool, VaultError> {
        let (header, chunks, mut writer) = self.sealer.finish()?;
        writer.flush()?;
        Ok(SealedSpool {
            file: self.file,
            header,
            chunks,
            sha256: hex::encode(self.hasher.finalize()),
            size: self.size,
            chunk_size: self.chunk_size,
        })
    }
}

/// A complete upload, sealed in its spool file (deleted when this is dropped).
pub struct SealedSpool {
    file: NamedTempFile,
    header: StreamHeader,
    chunks: u64,
    pub sha256: String,
    pub size: u64,
    chunk_size: usize,
}

impl SealedSpool {
    /// Sealed chunks in the spool.
    #[must_use]
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Where the spool file is (for tests that check it is gone).
    #[must_use]
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// Framed sealed chunks as the port's chunk source.
struct FileChunks<R>(FramedChunks<R>);

impl<R: Read + Send> ChunkSource for FileChunks<R> {
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.0.next_sealed()
    }
}

/// Sealed chunks of a stored blob, a page per query, fetched from a blocking thread.
struct StoreChunks {
    blobs: Arc<dyn BlobStore>,
    sha256: String,
    next: u64,
    page: VecDeque<Vec<u8>>,
    exhausted: bool,
    handle: tokio::runtime::Handle,
}

impl SealedChunks for StoreChunks {
    fn next_sealed(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.page.is_empty() && !self.exhausted {
            let page = self
                .handle
                .block_on(self.blobs.chunks(&self.sha256, self.next, READ_PAGE))
                .map_err(io::Error::other)?;
            if page.len() < READ_PAGE as usize {
                self.exhausted = true;
            }
            self.next += page.len() as u64;
            self.page.extend(page);
        }
        Ok(self.page.pop_front())
    }
}

/// Passes plaintext through and fails at the end unless it hashes to `expected`.
struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: String,
    checked: bool,
}

impl<R> VerifyingReader<R> {
    fn new(inner: R, expected: String) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            expected,
            checked: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
        } else if !buf.is_empty() && !self.checked {
            self.checked = true;
            let actual = hex::encode(self.hasher.clone().finalize());
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the stored blob sha256:{} decrypts to content with sha256:{actual}",
                        self.expected
                    ),
                ));
            }
        }
        Ok(n)
    }
}
