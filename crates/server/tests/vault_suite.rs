#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The evidence vault (sealed blobs, streaming, key rotation) on a real store: SQLite always,
//! PostgreSQL when `GATEHOUSE_TEST_POSTGRES_URL` is set (each test in a fresh schema; run
//! `scripts/with-postgres cargo test -p gatehouse-server --test vault_suite`).
//!
//! What it proves: blobs round-trip through many chunks; the database holds no plaintext; a
//! blob whose key-encryption key was removed fails naming the key id; rotation rewraps data
//! keys so only the new key is needed, and an interrupted rotation resumes; the same bytes are
//! stored once; an upload refused above the limit, or failing half-way, leaves no rows; rows
//! stored before encryption at rest are sealed in place; a tampered chunk is refused.

use std::sync::Arc;

use gatehouse_core::blobs::{BlobKey, ChunkSource, NewBlob, PutOutcome};
use gatehouse_ledger::{Kek, KekId, Keyring};
use gatehouse_server::vault::{Vault, VaultError};
use gatehouse_store::{StoreConfig, open, open_blobs};
use jiff::Timestamp;

/// Chunk size of the test vaults.
const CHUNK: usize = 1024;

#[macro_use]
#[path = "../../store/tests/common/mod.rs"]
mod common;

use common::TestDb;

impl TestDb {
    /// A vault over this database (migrated first) with `keys`, spooling into the case's
    /// scratch directory, in 1 KiB chunks so small test data spans many chunks.
    async fn vault(&self, keys: Vec<Kek>) -> Vault {
        let config = self.config();
        let _store = open(&config).await.unwrap();
        let blobs = open_blobs(&config).await.unwrap();
        let mut ring = Keyring::new();
        for k in keys {
            ring.insert(k).unwrap();
        }
        Vault::new(blobs, Arc::new(ring), self.scratch.path())
            .unwrap()
            .with_chunk_size(CHUNK)
    }

    /// Runs a statement on a raw connection around the store.
    async fn execute(&self, sql: &str) {
        self.raw(sql).await.unwrap();
    }

    /// Every byte the blob tables hold, concatenated (chunks, headers, content).
    async fn raw_bytes(&self) -> Vec<u8> {
        let chunks = "SELECT sealed FROM evidence_chunks";
        let blobs = "SELECT content FROM evidence_blobs";
        let headers = "SELECT stream_header FROM evidence_blobs WHERE stream_header IS NOT NULL";
        let mut out = Vec::new();
        for sql in [chunks, blobs, headers] {
            for row in self.bytes_column(sql).await {
                out.extend_from_slice(&row);
            }
        }
        out
    }
}

suite!(
    blob_round_trips_through_many_chunks,
    database_holds_no_plaintext,
    removed_key_encryption_key_is_named,
    rotate_then_read_with_only_the_new_key,
    interrupted_rotation_resumes,
    duplicate_upload_is_stored_once,
    upload_above_the_limit_leaves_no_rows_and_no_spool,
    failing_upload_leaves_no_rows,
    plaintext_rows_from_before_encryption_are_sealed,
    tampered_chunk_is_refused,
);

fn kek(id: &str, byte: u8, second: i64) -> Kek {
    Kek::from_bytes(
        KekId::new(id).unwrap(),
        Timestamp::from_second(second).unwrap(),
        &[byte; 32],
    )
}

fn old_key() -> Kek {
    kek("kek-old", 1, 1_800_000_000)
}

fn new_key() -> Kek {
    kek("kek-new", 2, 1_900_000_000)
}

/// Recognisable plaintext of `len` bytes (the marker repeats, so a grep finds it).
fn content(len: usize, salt: u8) -> Vec<u8> {
    let pattern = format!("PLAINTEXT-MARKER-{salt:03}|");
    pattern.bytes().cycle().take(len).collect()
}

/// Spools and stores `data`; returns its digest.
async fn store(vault: &Vault, data: &[u8]) -> (String, PutOutcome) {
    let mut spool = vault.spool(u64::MAX).unwrap();
    // Written in uneven slices, as HTTP frames arrive.
    for piece in data.chunks(700) {
        spool.write(piece).unwrap();
    }
    let spool = spool.finish().unwrap();
    let outcome = vault
        .put(&spool, Timestamp::from_second(1_800_000_100).unwrap())
        .await
        .unwrap();
    (spool.sha256.clone(), outcome)
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_200).unwrap()
}

async fn blob_round_trips_through_many_chunks(db: &TestDb) {
    let vault = db.vault(vec![old_key()]).await;
    for len in [0, 1, CHUNK, CHUNK + 1, 10 * CHUNK + 123] {
        let data = content(len, 1);
        let (sha, outcome) = store(&vault, &data).await;
        assert_eq!(outcome, PutOutcome::Stored, "len {len}");
        assert_eq!(vault.read_all(&sha).await.unwrap(), data, "len {len}");
    }
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM evidence_chunks WHERE sha256 IN \
                  (SELECT sha256 FROM evidence_blobs WHERE size = 10363)"
        )
        .await,
        11
    );
    assert!(vault.open(&"0".repeat(64)).await.unwrap().is_none());
}

async fn database_holds_no_plaintext(db: &TestDb) {
    let vault = db.vault(vec![old_key()]).await;
    let data = content(5 * CHUNK, 7);
    store(&vault, &data).await;
    let raw = db.raw_bytes().await;
    assert!(
        raw.len() > data.len(),
        "the chunks were read: {} bytes",
        raw.len()
    );
    assert!(
        !raw.windows(16).any(|w| w == b"PLAINTEXT-MARKER"),
        "plaintext found in the database"
    );
    // And nothing of the key either.
    assert!(!raw.windows(32).any(|w| w == [1u8; 32]));
}

async fn removed_key_encryption_key_is_named(db: &TestDb) {
    let (sha, _) = store(&db.vault(vec![old_key()]).await, &content(3000, 2)).await;
    let without = db.vault(vec![new_key()]).await;
    let err = match without.open(&sha).await {
        Err(e) => e,
        Ok(_) => panic!("opened without its key"),
    };
    assert!(matches!(err, VaultError::Stream(_)), "{err:?}");
    assert!(err.to_string().contains("kek-old"), "{err}");
    assert!(err.to_string().contains("not found in keyring"), "{err}");
    // A key with the right id but other bytes is refused too, naming it.
    let impostor = db.vault(vec![kek("kek-old", 9, 1_800_000_000)]).await;
    let err = match impostor.open(&sha).await {
        Err(e) => e,
        Ok(_) => panic!("opened with the wrong key bytes"),
    };
    assert!(err.to_string().contains("kek-old"), "{err}");
}

async fn rotate_then_read_with_only_the_new_key(db: &TestDb) {
    let data = content(4 * CHUNK + 5, 3);
    let (sha, _) = store(&db.vault(vec![old_key()]).await, &data).await;
    let chunks_before = db.raw_bytes().await;
    let both = db.vault(vec![old_key(), new_key()]).await;
    let report = both.rotate(None).await.unwrap();
    assert!(report.complete);
    assert_eq!(report.active_kek, "kek-new");
    assert_eq!(report.rewrapped, 1);
    assert_eq!(report.rewrapped_from.get("kek-old"), Some(&1));
    let only_new = db.vault(vec![new_key()]).await;
    assert_eq!(only_new.read_all(&sha).await.unwrap(), data);
    // The chunks were not re-encrypted: the sealed bytes are unchanged.
    let sealed = |raw: &[u8]| raw[..4 * CHUNK].to_vec();
    assert_eq!(sealed(&db.raw_bytes().await), sealed(&chunks_before));
    // The old key alone no longer opens it.
    assert!(db.vault(vec![old_key()]).await.open(&sha).await.is_err());
    // A second run has nothing to do.
    assert_eq!(both.rotate(None).await.unwrap().rewrapped, 0);
}

async fn interrupted_rotation_resumes(db: &TestDb) {
    let old_vault = db.vault(vec![old_key()]).await;
    let mut blobs = Vec::new();
    for n in 0..5u8 {
        let data = content(2 * CHUNK + usize::from(n), n);
        let (sha, _) = store(&old_vault, &data).await;
        blobs.push((sha, data));
    }
    let both = db.vault(vec![old_key(), new_key()]).await;
    // Interrupted after two rows (as if the process had been killed there).
    let first = both.rotate(Some(2)).await.unwrap();
    assert!(!first.complete);
    assert_eq!(first.rewrapped, 2);
    let usage = both.usage().await.unwrap();
    let count = |id: &str| {
        usage
            .iter()
            .find(|u| u.kek_id.as_deref() == Some(id))
            .map_or(0, |u| u.blobs)
    };
    assert_eq!((count("kek-old"), count("kek-new")), (3, 2));
    // Half-rotated, every blob still opens with both keys in the keyring.
    for (sha, data) in &blobs {
        assert_eq!(&both.read_all(sha).await.unwrap(), data);
    }
    let second = both.rotate(None).await.unwrap();
    assert!(second.complete);
    assert_eq!(second.rewrapped, 3);
    assert_eq!(both.rotate(None).await.unwrap().rewrapped, 0);
    let only_new = db.vault(vec![new_key()]).await;
    for (sha, data) in &blobs {
        assert_eq!(&only_new.read_all(sha).await.unwrap(), data);
    }
    assert_eq!(
        db.count("SELECT COUNT(*) FROM evidence_blobs WHERE kek_id = 'kek-new'")
            .await,
        5
    );
}

async fn duplicate_upload_is_stored_once(db: &TestDb) {
    let vault = db.vault(vec![old_key()]).await;
    let data = content(3 * CHUNK, 4);
    let (sha, first) = store(&vault, &data).await;
    let (again, second) = store(&vault, &data).await;
    assert_eq!(
        (first, second),
        (PutOutcome::Stored, PutOutcome::AlreadyStored)
    );
    assert_eq!(sha, again);
    assert_eq!(db.count("SELECT COUNT(*) FROM evidence_blobs").await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM evidence_chunks").await, 3);
    assert_eq!(vault.read_all(&sha).await.unwrap(), data);
}

async fn upload_above_the_limit_leaves_no_rows_and_no_spool(db: &TestDb) {
    let vault = db.vault(vec![old_key()]).await;
    let mut spool = vault.spool(1000).unwrap();
    spool.write(&content(600, 5)).unwrap();
    let err = spool.write(&content(600, 5)).unwrap_err();
    assert!(
        matches!(err, VaultError::TooLarge { limit: 1000 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("1000 bytes"), "{err}");
    drop(spool);
    assert_eq!(
        std::fs::read_dir(db.scratch.path()).unwrap().count(),
        0,
        "spool left behind"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM evidence_blobs").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM evidence_chunks").await, 0);
    // A finished spool is deleted when dropped, too.
    let mut spool = vault.spool(u64::MAX).unwrap();
    spool.write(b"x").unwrap();
    let spool = spool.finish().unwrap();
    let path = spool.path().to_owned();
    assert!(path.exists());
    drop(spool);
    assert!(!path.exists());
}

/// Yields `good` chunks, then fails.
struct FailsAfter {
    good: usize,
}

impl ChunkSource for FailsAfter {
    fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.good == 0 {
            return Err(std::io::Error::other("connection reset"));
        }
        self.good -= 1;
        Ok(Some(vec![0u8; 100]))
    }
}

async fn failing_upload_leaves_no_rows(db: &TestDb) {
    let vault = db.vault(vec![old_key()]).await;
    let blob = NewBlob {
        sha256: "a".repeat(64),
        size: 1000,
        key: BlobKey {
            kek_id: "kek-old".into(),
            header: b"GHT1".to_vec(),
        },
        stored_at: now(),
    };
    let err = vault
        .blobs()
        .put(&blob, &mut FailsAfter { good: 3 })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing was stored"), "{err}");
    assert_eq!(db.count("SELECT COUNT(*) FROM evidence_blobs").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM evidence_chunks").await, 0);
}

async fn plaintext_rows_from_before_encryption_are_sealed(db: &TestDb) {
    let vault = db.vault(vec![old_key()]).await;
    let data = content(2500, 6);
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&data))
    };
    // A row as migration 0200 wrote it: plaintext in `content`, no key.
    let hexdata = hex::encode(&data);
    let literal = match db.config() {
        StoreConfig::Sqlite { .. } => format!("X'{hexdata}'"),
        StoreConfig::Postgres { .. } => format!("'\\x{hexdata}'::bytea"),
    };
    db.execute(&format!(
        "INSERT INTO evidence_blobs (sha256, size, content, stored_at_ns) \
         VALUES ('{sha}', {}, {literal}, 0)",
        data.len()
    ))
    .await;
    // Readable before sealing (the store hands the plaintext over once).
    assert_eq!(vault.read_all(&sha).await.unwrap(), data);
    assert_eq!(vault.seal_plain_rows(None).await.unwrap(), 1);
    assert_eq!(vault.seal_plain_rows(None).await.unwrap(), 0);
    assert!(
        !db.raw_bytes()
            .await
            .windows(16)
            .any(|w| w == b"PLAINTEXT-MARKER")
    );
    assert_eq!(vault.read_all(&sha).await.unwrap(), data);
    assert_eq!(db.count("SELECT COUNT(*) FROM evidence_chunks").await, 3);
}

async fn tampered_chunk_is_refused(db: &TestDb) {
    let vault = db.vault(vec![old_key()]).await;
    let (sha, _) = store(&vault, &content(3 * CHUNK, 8)).await;
    // Swap chunks 0 and 1 (reorder) directly in the database.
    db.execute(&format!(
        "UPDATE evidence_chunks SET idx = 99 WHERE sha256 = '{sha}' AND idx = 0"
    ))
    .await;
    db.execute(&format!(
        "UPDATE evidence_chunks SET idx = 0 WHERE sha256 = '{sha}' AND idx = 1"
    ))
    .await;
    db.execute(&format!(
        "UPDATE evidence_chunks SET idx = 1 WHERE sha256 = '{sha}' AND idx = 99"
    ))
    .await;
    let err = vault.read_all(&sha).await.unwrap_err();
    assert!(
        err.to_string().contains("chunk 0 failed authentication"),
        "{err}"
    );
    // Dropping the last chunk (truncation) is refused too.
    let (sha2, _) = store(&vault, &content(3 * CHUNK, 9)).await;
    db.execute(&format!(
        "DELETE FROM evidence_chunks WHERE sha256 = '{sha2}' AND idx = 2"
    ))
    .await;
    let err = vault.read_all(&sha2).await.unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}
