//! The `BlobStore` port: evidence bytes, sealed, stored content-addressed and streamed.
//!
//! Evidence files can be gigabytes, so they never pass through this port whole: a blob is
//! written as an ordered sequence of sealed chunks pulled from a [`ChunkSource`] (a spool
//! file), and read back a page of chunks at a time. The port deals in opaque bytes — the
//! sealing itself (`gatehouse_ledger::stream`) and the keyring live with the caller — so the
//! store never sees a key and this crate stays free of cryptography and I/O.
//!
//! A blob is addressed by the lower-case hex SHA-256 of its plaintext; storing a digest that
//! is already stored is a no-op ([`PutOutcome::AlreadyStored`]). A put is one transaction: a
//! source that fails half-way leaves no row behind.
//!
//! The wrapped data key of each blob sits in its [`BlobKey`] header, which rotation rewrites
//! with a compare-and-set ([`BlobStore::replace_key`]), one row at a time, so an interrupted
//! rotation resumes where it stopped and a second run changes nothing.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::store::StoreError;

/// Where a put pulls its sealed chunks from, in order.
pub trait ChunkSource: Send {
    /// The next sealed chunk, `Ok(None)` at the end. An error aborts the put (nothing stored).
    fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>>;
}

/// A blob to store: its plaintext digest and size, and the header a reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlob {
    /// Lower-case hex SHA-256 of the plaintext.
    pub sha256: String,
    /// Plaintext size in bytes.
    pub size: u64,
    pub key: BlobKey,
    pub stored_at: Timestamp,
}

/// The key material stored with a blob: the id of the key-encryption key that wraps its data
/// key, and the encoded stream header holding that wrapped key (opaque here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKey {
    pub kek_id: String,
    pub header: Vec<u8>,
}

/// What [`BlobStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// New rows were written.
    Stored,
    /// A blob with this digest was already stored; nothing was written (the source was not
    /// read).
    AlreadyStored,
}

/// A stored blob as the store describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredBlob {
    /// Sealed: read its chunks with [`BlobStore::chunks`].
    Sealed {
        size: u64,
        key: BlobKey,
        chunk_count: u64,
    },
    /// Written before encryption at rest (migration 0410) and not sealed yet: the plaintext.
    Plain { content: Vec<u8> },
}

/// How many blobs each key-encryption key wraps (`kek_id` `None`: plaintext rows still to be
/// sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub kek_id: Option<String>,
    pub blobs: u64,
}

/// One blob's key, as rotation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKeyRow {
    pub sha256: String,
    pub key: BlobKey,
}

/// Persistence of sealed evidence blobs, implemented by `gatehouse-store` for SQLite and
/// PostgreSQL.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `blob` with the chunks `source` yields, in one transaction; a digest already
    /// stored is not stored again. An error from `source` rolls everything back.
    async fn put(
        &self,
        blob: &NewBlob,
        source: &mut dyn ChunkSource,
    ) -> Result<PutOutcome, StoreError>;

    /// The blob with this digest, if stored.
    async fn blob(&self, sha256: &str) -> Result<Option<StoredBlob>, StoreError>;

    /// Up to `limit` sealed chunks of the blob, starting at index `from`, in order.
    async fn chunks(&self, sha256: &str, from: u64, limit: u32)
    -> Result<Vec<Vec<u8>>, StoreError>;

    /// Deletes the blob if no evidence row refers to it (an upload whose gate write failed);
    /// `true` when it was deleted.
    async fn delete_unreferenced(&self, sha256: &str) -> Result<bool, StoreError>;

    /// Up to `limit` sealed blobs whose data key is NOT wrapped by `kek_id`, in digest order
    /// after `after`: what rotation to `kek_id` still has to rewrap.
    async fn keys_not_wrapped_by(
        &self,
        kek_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BlobKeyRow>, StoreError>;

    /// Replaces the key of blob `sha256` if it is still `old` (compare-and-set); `false` when
    /// another writer changed it first.
    async fn replace_key(
        &self,
        sha256: &str,
        old: &BlobKey,
        new: &BlobKey,
    ) -> Result<bool, StoreError>;

    /// Blob counts per key-encryption key.
    async fn key_usage(&self) -> Result<Vec<KeyUsage>, StoreError>;

    /// Up to `limit` digests of plaintext rows (written before migration 0410).
    async fn plain_blobs(&self, limit: u32) -> Result<Vec<String>, StoreError>;

    /// Seals a plaintext row in place: writes its chunks and key and empties its content, in
    /// one transaction; `false` when the row is no longer plaintext.
    async fn seal_plain(
        &self,
        sha256: &str,
        key: &BlobKey,
        source: &mut dyn ChunkSource,
    ) -> Result<bool, StoreError>;
}
