//! Streaming envelope encryption: a blob of any size sealed as a sequence of chunks.
//!
//! [`crate::envelope`] seals one object in one AEAD call, which needs the whole object in
//! memory and produces one value as large as the object — too large for a 2 GB evidence file
//! and for a PostgreSQL row. This module seals a blob as numbered chunks (1 MiB by default)
//! under one per-blob data key, in the manner of the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway, Vizár 2015), so the blob streams through in constant memory and each chunk can be
//! stored as its own row:
//!
//! - every blob gets a fresh random 256-bit data key and a random 128-bit stream id; the data
//!   key is wrapped by a key-encryption key exactly as in [`crate::envelope`] (bound to the
//!   stream id), so `gatehouse keys rotate` rewraps the 80-byte [`StreamHeader`] and never
//!   touches the chunks;
//! - chunk `i` is XChaCha20-Poly1305 with nonce `stream id ‖ i` (u64 big-endian): unique per
//!   key because the counter never repeats within a stream and the key is never reused;
//! - the associated data binds the context string, the stream id, the chunk index and a
//!   final-chunk flag. Reordering chunks changes their index, dropping the tail leaves a last
//!   chunk that was not sealed as final, appending after the final chunk leaves a final chunk
//!   that is not last, and a chunk from another blob fails under this blob's key: all are
//!   detected ([`StreamError::ChunkRejected`], [`StreamError::Truncated`]).
//!
//! Every chunk except the final one holds exactly `chunk_size` plaintext bytes; the final
//! one holds 0 to `chunk_size` bytes, so an empty blob is one empty final chunk.
//!
//! Framing ([`SealingWriter`], [`FramedChunks`]) is for a spool file: each sealed chunk is
//! preceded by its length (u32 big-endian). A database stores chunks as rows instead and
//! needs no framing.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::envelope::{EnvelopeError, Kek, KekId, Keyring, WrappedDataKey, unwrap_key, wrap};

/// Plaintext bytes per chunk unless the caller chooses otherwise: large enough that the
/// 16-byte tag and per-row overhead are negligible, small enough to stream.
pub const DEFAULT_CHUNK_SIZE: usize = 1024 * 1024;
/// Largest chunk size accepted in a header (bounds what a reader allocates).
pub const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;
/// Bytes a sealed chunk adds to its plaintext (the Poly1305 tag).
pub const CHUNK_OVERHEAD: usize = 16;

const CHUNK_AAD_CONTEXT: &[u8] = b"gatehouse sealed stream chunk v1\0";
const HEADER_MAGIC: &[u8; 4] = b"GHT1";
const STREAM_ID_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Errors of sealing and opening a stream. None carries key bytes or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Unwrapping the data key failed: the key is missing (named) or does not match.
    #[error(transparent)]
    Key(#[from] EnvelopeError),
    #[error(
        "sealed chunk {index} failed authentication (tampered, reordered, from another blob, or \
         data after the final chunk)"
    )]
    ChunkRejected { index: u64 },
    #[error("the sealed stream is truncated: it ends after chunk {chunks} without a final chunk")]
    Truncated { chunks: u64 },
    #[error("the stream header is malformed: {0}")]
    MalformedHeader(&'static str),
    #[error("sealed chunk {index} is malformed: {reason}")]
    MalformedChunk { index: u64, reason: &'static str },
    #[error("chunk size {0} is outside 1..={MAX_CHUNK_SIZE}")]
    ChunkSize(usize),
    #[error("the stream was already finished; nothing more can be sealed")]
    Finished,
    #[error("encryption failed")]
    EncryptFailed,
    #[error("operating system randomness unavailable: {0}")]
    Randomness(String),
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// What a reader needs besides the chunks: the chunk size, the stream id and the wrapped data
/// key (which names its key-encryption key). Stored with the blob; rewritten by rotation.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamHeader {
    pub chunk_size: u32,
    pub stream_id: [u8; STREAM_ID_LEN],
    pub data_key: WrappedDataKey,
}

impl std::fmt::Debug for StreamHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHeader")
            .field("chunk_size", &self.chunk_size)
            .field("stream_id", &hex::encode(self.stream_id))
            .field("kek_id", &self.data_key.kek_id)
            .finish()
    }
}

impl StreamHeader {
    /// Id of the key-encryption key that wraps this stream's data key.
    #[must_use]
    pub fn kek_id(&self) -> &KekId {
        &self.data_key.kek_id
    }

    /// Binary form: `GHT1` ‖ chunk size (u32 BE) ‖ stream id (16) ‖ wrapped data key
    /// ([`WrappedDataKey::encode`]).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let key = self.data_key.encode();
        let mut out = Vec::with_capacity(4 + 4 + STREAM_ID_LEN + key.len());
        out.extend_from_slice(HEADER_MAGIC);
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        out.extend_from_slice(&self.stream_id);
        out.extend_from_slice(&key);
        out
    }

    /// Reads the binary form.
    pub fn decode(bytes: &[u8]) -> Result<StreamHeader, StreamError> {
        let rest = bytes
            .strip_prefix(HEADER_MAGIC)
            .ok_or(StreamError::MalformedHeader("no GHT1 magic"))?;
        if rest.len() < 4 + STREAM_ID_LEN {
            return Err(StreamError::MalformedHeader("truncated"));
        }
        let chunk_size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let size = usize::try_from(chunk_size).unwrap_or(usize::MAX);
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(StreamError::ChunkSize(size));
        }
        let mut stream_id = [0u8; STREAM_ID_LEN];
        stream_id.copy_from_slice(&rest[4..4 + STREAM_ID_LEN]);
        let data_key = WrappedDataKey::decode(&rest[4 + STREAM_ID_LEN..])?;
        Ok(StreamHeader {
            chunk_size,
            stream_id,
            data_key,
        })
    }

    /// This header with its data key rewrapped under `new_id` (found in `keyring`, as is the
    /// key that wraps it now); `None` when it is already wrapped by `new_id`, so a rotation
    /// that is run again skips it. The chunks are untouched: the data key does not change.
    pub fn rewrap_to(
        &self,
        keyring: &Keyring,
        new_id: &KekId,
    ) -> Result<Option<StreamHeader>, StreamError> {
        Ok(keyring
            .rewrap_to(&self.stream_id, &self.data_key, new_id)?
            .map(|data_key| StreamHeader {
                chunk_size: self.chunk_size,
                stream_id: self.stream_id,
                data_key,
            }))
    }

    fn plain_chunk_size(&self) -> usize {
        usize::try_from(self.chunk_size).unwrap_or(usize::MAX)
    }
}

fn nonce(stream_id: &[u8; STREAM_ID_LEN], index: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..STREAM_ID_LEN].copy_from_slice(stream_id);
    n[STREAM_ID_LEN..].copy_from_slice(&index.to_be_bytes());
    XNonce::from(n)
}

fn chunk_aad(stream_id: &[u8; STREAM_ID_LEN], index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(CHUNK_AAD_CONTEXT.len() + STREAM_ID_LEN + 9);
    aad.extend_from_slice(CHUNK_AAD_CONTEXT);
    aad.extend_from_slice(stream_id);
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

fn data_cipher(key: &[u8; KEY_LEN]) -> Result<XChaCha20Poly1305, StreamError> {
    XChaCha20Poly1305::new_from_slice(key).map_err(|_| StreamError::MalformedHeader("key length"))
}

/// Seals one blob chunk by chunk. Call [`StreamSealer::seal_chunk`] with full chunks and
/// `last = false`, then once with the remainder (possibly empty) and `last = true`.
pub struct StreamSealer {
    header: StreamHeader,
    cipher: XChaCha20Poly1305,
    next_index: u64,
    finished: bool,
}

impl std::fmt::Debug for StreamSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSealer")
            .field("header", &self.header)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl StreamSealer {
    /// A new stream under a fresh data key wrapped by `kek`.
    pub fn new(kek: &Kek, chunk_size: usize) -> Result<StreamSealer, StreamError> {
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(StreamError::ChunkSize(chunk_size));
        }
        let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(data_key.as_mut_slice())
            .map_err(|e| StreamError::Randomness(e.to_string()))?;
        let mut stream_id = [0u8; STREAM_ID_LEN];
        getrandom::fill(&mut stream_id).map_err(|e| StreamError::Randomness(e.to_string()))?;
        let wrapped = wrap(&stream_id, &data_key, kek)?;
        Ok(StreamSealer {
            header: StreamHeader {
                chunk_size: u32::try_from(chunk_size)
                    .map_err(|_| StreamError::ChunkSize(chunk_size))?,
                stream_id,
                data_key: wrapped,
            },
            cipher: data_cipher(&data_key)?,
            next_index: 0,
            finished: false,
        })
    }

    #[must_use]
    pub fn header(&self) -> &StreamHeader {
        &self.header
    }

    /// Chunks sealed so far.
    #[must_use]
    pub fn chunks_sealed(&self) -> u64 {
        self.next_index
    }

    /// Seals the next chunk. A non-final chunk must be exactly `chunk_size` bytes, the final
    /// one at most that; nothing can follow the final chunk.
    pub fn seal_chunk(&mut self, plaintext: &[u8], last: bool) -> Result<Vec<u8>, StreamError> {
        if self.finished {
            return Err(StreamError::Finished);
        }
        let size = self.header.plain_chunk_size();
        let index = self.next_index;
        if plaintext.len() > size || (!last && plaintext.len() != size) {
            return Err(StreamError::MalformedChunk {
                index,
                reason: "a non-final chunk must be exactly the chunk size, the final one at most",
            });
        }
        let sealed = self
            .cipher
            .encrypt(
                &nonce(&self.header.stream_id, index),
                Payload {
                    msg: plaintext,
                    aad: &chunk_aad(&self.header.stream_id, index, last),
                },
            )
            .map_err(|_| StreamError::EncryptFailed)?;
        self.next_index = index.saturating_add(1);
        self.finished = last;
        Ok(sealed)
    }
}

/// Opens the chunks of one stream in order.
pub struct StreamOpener {
    stream_id: [u8; STREAM_ID_LEN],
    chunk_size: usize,
    cipher: XChaCha20Poly1305,
    next_index: u64,
    finished: bool,
}

impl std::fmt::Debug for StreamOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOpener")
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl StreamOpener {
    /// Unwraps the data key with the key-encryption key the header names. A key missing from
    /// `keyring` is named in the error ([`EnvelopeError::KekNotFound`]).
    pub fn new(header: &StreamHeader, keyring: &Keyring) -> Result<StreamOpener, StreamError> {
        let kek = keyring.get(&header.data_key.kek_id)?;
        let data_key = unwrap_key(&header.stream_id, &header.data_key, kek)?;
        Ok(StreamOpener {
            stream_id: header.stream_id,
            chunk_size: header.plain_chunk_size(),
            cipher: data_cipher(&data_key)?,
            next_index: 0,
            finished: false,
        })
    }

    /// Whether the final chunk has been opened.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Opens the next chunk; `last` says whether the caller's source has no chunk after it.
    pub fn open_chunk(
        &mut self,
        sealed: &[u8],
        last: bool,
    ) -> Result<Zeroizing<Vec<u8>>, StreamError> {
        let index = self.next_index;
        if self.finished {
            return Err(StreamError::ChunkRejected { index });
        }
        if sealed.len() < CHUNK_OVERHEAD || sealed.len() > self.chunk_size + CHUNK_OVERHEAD {
            return Err(StreamError::MalformedChunk {
                index,
                reason: "wrong length",
            });
        }
        let plain = self
            .cipher
            .decrypt(
                &nonce(&self.stream_id, index),
                Payload {
                    msg: sealed,
                    aad: &chunk_aad(&self.stream_id, index, last),
                },
            )
            .map_err(|_| {
                // A last chunk that opens as non-final means the chunks after it are gone.
                let sealed_as_middle = last
                    && self
                        .cipher
                        .decrypt(
                            &nonce(&self.stream_id, index),
                            Payload {
                                msg: sealed,
                                aad: &chunk_aad(&self.stream_id, index, false),
                            },
                        )
                        .is_ok();
                if sealed_as_middle {
                    StreamError::Truncated { chunks: index + 1 }
                } else {
                    StreamError::ChunkRejected { index }
                }
            })?;
        self.finished = last;
        self.next_index = index.saturating_add(1);
        Ok(Zeroizing::new(plain))
    }
}

/// A source of sealed chunks in order (a spool file, database rows).
pub trait SealedChunks {
    /// The next sealed chunk, or `None` at the end.
    fn next_sealed(&mut self) -> io::Result<Option<Vec<u8>>>;
}

impl<T: SealedChunks + ?Sized> SealedChunks for &mut T {
    fn next_sealed(&mut self) -> io::Result<Option<Vec<u8>>> {
        (**self).next_sealed()
    }
}

/// Reads length-framed sealed chunks (as written by [`SealingWriter`]) from `R`.
pub struct FramedChunks<R> {
    inner: R,
    max_len: usize,
}

impl<R: Read> FramedChunks<R> {
    /// Frames longer than `chunk_size + 16` are refused, so a corrupt length cannot make the
    /// reader allocate gigabytes.
    pub fn new(inner: R, chunk_size: usize) -> FramedChunks<R> {
        FramedChunks {
            inner,
            max_len: chunk_size.saturating_add(CHUNK_OVERHEAD),
        }
    }
}

impl<R: Read> SealedChunks for FramedChunks<R> {
    fn next_sealed(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = self.inner.read(&mut len[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "sealed chunk frame length is truncated",
                ));
            }
            got += n;
        }
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len > self.max_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "sealed chunk frame is longer than the chunk size allows",
            ));
        }
        let mut chunk = vec![0u8; len];
        self.inner.read_exact(&mut chunk)?;
        Ok(Some(chunk))
    }
}

/// Plaintext `Read` over a stream's sealed chunks. Looks one chunk ahead to know which one is
/// the last; fails (never returns a short, silently truncated read) when a chunk is rejected
/// or the stream ends without its final chunk.
pub struct OpeningReader<S> {
    source: S,
    opener: StreamOpener,
    current: Zeroizing<Vec<u8>>,
    position: usize,
    peeked: Option<Vec<u8>>,
    started: bool,
}

impl<S: SealedChunks> OpeningReader<S> {
    pub fn new(
        header: &StreamHeader,
        keyring: &Keyring,
        source: S,
    ) -> Result<OpeningReader<S>, StreamError> {
        Ok(OpeningReader {
            source,
            opener: StreamOpener::new(header, keyring)?,
            current: Zeroizing::new(Vec::new()),
            position: 0,
            peeked: None,
            started: false,
        })
    }

    /// Opens the next chunk into `current`; `Ok(false)` at the (verified) end.
    fn advance(&mut self) -> io::Result<bool> {
        if !self.started {
            self.started = true;
            self.peeked = self.source.next_sealed()?;
        }
        let Some(chunk) = self.peeked.take() else {
            if self.opener.is_finished() {
                return Ok(false);
            }
            return Err(StreamError::Truncated {
                chunks: self.opener.next_index,
            }
            .into());
        };
        self.peeked = self.source.next_sealed()?;
        let last = self.peeked.is_none();
        self.current = self.opener.open_chunk(&chunk, last)?;
        self.position = 0;
        Ok(true)
    }
}

impl<S: SealedChunks> Read for OpeningReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.position >= self.current.len() {
            if !self.advance()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// `Write` that seals what it is given into length-framed chunks on `W` (a spool file).
/// Holds at most one chunk of plaintext; call [`SealingWriter::finish`] to seal the final
/// chunk — a writer dropped without it leaves a stream that readers reject as truncated.
pub struct SealingWriter<W> {
    inner: W,
    sealer: StreamSealer,
    buffer: Zeroizing<Vec<u8>>,
    chunk_size: usize,
}

impl<W: Write> SealingWriter<W> {
    pub fn new(inner: W, kek: &Kek, chunk_size: usize) -> Result<SealingWriter<W>, StreamError> {
        Ok(SealingWriter {
            inner,
            sealer: StreamSealer::new(kek, chunk_size)?,
            buffer: Zeroizing::new(Vec::with_capacity(chunk_size)),
            chunk_size,
        })
    }

    #[must_use]
    pub fn header(&self) -> &StreamHeader {
        self.sealer.header()
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        let sealed = self.sealer.seal_chunk(&self.buffer, last)?;
        let len = u32::try_from(sealed.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "chunk too large"))?;
        self.inner.write_all(&len.to_be_bytes())?;
        self.inner.write_all(&sealed)?;
        self.buffer.clear();
        Ok(())
    }

    /// Seals the final chunk, flushes, and returns the header, the number of chunks and the
    /// inner writer.
    pub fn finish(mut self) -> io::Result<(StreamHeader, u64, W)> {
        self.emit(true)?;
        self.inner.flush()?;
        let chunks = self.sealer.chunks_sealed();
        Ok((self.sealer.header.clone(), chunks, self.inner))
    }
}

impl<W: Write> Write for SealingWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let written = data.len();
        while !data.is_empty() {
            // A full buffer is sealed as non-final only once more data arrives, so the last
            // chunk of a blob whose size is a multiple of the chunk size is still final.
            if self.buffer.len() == self.chunk_size {
                self.emit(false)?;
            }
            let take = data.len().min(self.chunk_size - self.buffer.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn kek(id: &str, byte: u8) -> Kek {
        Kek::from_bytes(
            KekId::new(id).unwrap(),
            "2026-11-27T12:00:00Z".parse().unwrap(),
            &[byte; 32],
        )
    }

    fn ring(keys: Vec<Kek>) -> Keyring {
        let mut ring = Keyring::new();
        for k in keys {
            ring.insert(k).unwrap();
        }
        ring
    }

    /// Seals `data` into a list of sealed chunks.
    fn seal_all(data: &[u8], kek: &Kek, chunk_size: usize) -> (StreamHeader, Vec<Vec<u8>>) {
        let mut writer = SealingWriter::new(Vec::new(), kek, chunk_size).unwrap();
        writer.write_all(data).unwrap();
        let (header, count, framed) = writer.finish().unwrap();
        let mut chunks = Vec::new();
        let mut source = FramedChunks::new(framed.as_slice(), chunk_size);
        while let Some(c) = source.next_sealed().unwrap() {
            chunks.push(c);
        }
        assert_eq!(count, chunks.len() as u64);
        (header, chunks)
    }

    struct VecChunks(std::vec::IntoIter<Vec<u8>>);
    impl SealedChunks for VecChunks {
        fn next_sealed(&mut self) -> io::Result<Option<Vec<u8>>> {
            Ok(self.0.next())
        }
    }

    fn open_all(
        header: &StreamHeader,
        ring: &Keyring,
        chunks: Vec<Vec<u8>>,
    ) -> io::Result<Vec<u8>> {
        let mut reader = OpeningReader::new(header, ring, VecChunks(chunks.into_iter()))
            .map_err(io::Error::from)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        let k = kek("k1", 1);
        let ring = ring(vec![kek("k1", 1)]);
        for len in [0usize, 1, 15, 16, 17, 32, 33, 100] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let (header, chunks) = seal_all(&data, &k, 16);
            // Sizes that are a multiple of the chunk size still end in a (short) final chunk
            // only when empty; otherwise the last full chunk is the final one.
            assert_eq!(chunks.len(), len.max(1).div_ceil(16), "len {len}");
            assert_eq!(open_all(&header, &ring, chunks).unwrap(), data, "len {len}");
        }
    }

    #[test]
    fn ciphertext_is_not_the_plaintext() {
        let data = b"SECRET-SARIF-CONTENT ".repeat(10);
        let (_, chunks) = seal_all(&data, &kek("k1", 1), 64);
        for c in &chunks {
            assert!(!c.windows(13).any(|w| w == b"SECRET-SARIF-"));
        }
    }

    #[test]
    fn header_round_trips_and_names_its_key() {
        let (header, _) = seal_all(b"x", &kek("k1", 1), 16);
        let decoded = StreamHeader::decode(&header.encode()).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(decoded.kek_id().as_str(), "k1");
        assert!(StreamHeader::decode(&header.encode()[..10]).is_err());
        assert!(StreamHeader::decode(b"nope").is_err());
    }

    #[test]
    fn missing_key_is_named() {
        let (header, chunks) = seal_all(b"data", &kek("kek-gone", 1), 16);
        let err = open_all(&header, &ring(vec![kek("other", 2)]), chunks).unwrap_err();
        assert!(err.to_string().contains("kek-gone"), "{err}");
    }

    #[test]
    fn rewrap_keeps_chunks_and_needs_only_the_new_key() {
        let data = vec![42u8; 50];
        let (header, chunks) = seal_all(&data, &kek("old", 1), 16);
        let both = ring(vec![kek("old", 1), kek("new", 2)]);
        let new_id = KekId::new("new").unwrap();
        let rewrapped = header.rewrap_to(&both, &new_id).unwrap().unwrap();
        assert_eq!(rewrapped.kek_id().as_str(), "new");
        assert!(rewrapped.rewrap_to(&both, &new_id).unwrap().is_none());
        let only_new = ring(vec![kek("new", 2)]);
        assert_eq!(
            open_all(&rewrapped, &only_new, chunks.clone()).unwrap(),
            data
        );
        assert!(open_all(&header, &only_new, chunks).is_err());
    }

    #[test]
    fn sealer_refuses_misuse() {
        let mut s = StreamSealer::new(&kek("k", 1), 16).unwrap();
        assert!(s.seal_chunk(&[0; 15], false).is_err());
        assert!(s.seal_chunk(&[0; 17], true).is_err());
        s.seal_chunk(&[0; 3], true).unwrap();
        assert!(matches!(
            s.seal_chunk(&[], true),
            Err(StreamError::Finished)
        ));
        assert!(StreamSealer::new(&kek("k", 1), 0).is_err());
    }

    #[test]
    fn corrupt_frame_length_is_refused_without_allocating() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut source = FramedChunks::new(&bytes[..], 16);
        assert!(source.next_sealed().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn tamper_reorder_truncate_and_extend_are_detected(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            chunk_size in 1usize..40,
            pick in any::<prop::sample::Index>(),
            bit in 0u8..8,
            mode in 0u8..5,
        ) {
            let k = kek("k1", 9);
            let ring = ring(vec![kek("k1", 9)]);
            let (header, mut chunks) = seal_all(&data, &k, chunk_size);
            prop_assert_eq!(open_all(&header, &ring, chunks.clone()).unwrap(), data.clone());
            let n = chunks.len();
            let changed = match mode {
                // Flip one bit of one chunk.
                0 => {
                    let c = pick.index(n);
                    let b = pick.index(chunks[c].len());
                    chunks[c][b] ^= 1 << bit;
                    true
                }
                // Swap two different chunks.
                1 if n >= 2 => {
                    let a = pick.index(n);
                    let b = (a + 1) % n;
                    chunks.swap(a, b);
                    true
                }
                // Drop the tail.
                2 if n >= 2 => {
                    chunks.truncate(pick.index(n - 1) + 1);
                    true
                }
                // Append a copy of a chunk after the final one.
                3 => {
                    let c = chunks[pick.index(n)].clone();
                    chunks.push(c);
                    true
                }
                // A chunk from another blob (same key, another stream) in its place.
                4 => {
                    let (_, other) = seal_all(&data, &k, chunk_size);
                    let c = pick.index(n);
                    chunks[c] = other[c].clone();
                    true
                }
                _ => false,
            };
            let opened = open_all(&header, &ring, chunks);
            if changed {
                prop_assert!(opened.is_err(), "mode {} went undetected", mode);
            } else {
                prop_assert_eq!(opened.unwrap(), data);
            }
        }
    }
}
