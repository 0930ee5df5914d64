//! Envelope encryption of evidence blobs and sensitive fields.
//!
//! Each object is sealed with its own random data key (XChaCha20-Poly1305, random 192-bit
//! nonces, so no nonce bookkeeping), and that data key is wrapped by a key-encryption key
//! (KEK) named by an id. Rotating the KEK therefore rewraps 72-byte data keys, never the blobs;
//! because each wrapped key records the id of the KEK that wraps it, a rotation interrupted
//! half-way resumes by rewrapping whatever still names the old id, and rewrapping an object
//! twice is a no-op. The object id is bound into both AEADs as associated data, so a sealed
//! blob or wrapped key copied onto another object fails to open.
//!
//! Secrets live in zeroizing containers and never appear in `Debug` output or error messages.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jiff::Timestamp;
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

const DATA_AAD_CONTEXT: &[u8] = b"gatehouse sealed object v1\0";
const KEY_AAD_CONTEXT: &[u8] = b"gatehouse wrapped data key v1\0";
const SEALED_MAGIC: &[u8; 4] = b"GHS1";
const WRAPPED_MAGIC: &[u8; 4] = b"GHK1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const MAX_KEK_ID_LEN: usize = 64;

/// Errors of sealing, opening, rewrapping and key handling. None of them carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("key-encryption key `{kek_id}` not found in keyring")]
    KekNotFound { kek_id: KekId },
    #[error(
        "cannot unwrap data key: key `{kek_id}` does not match (or the sealed data belongs to another object)"
    )]
    KeyMismatch { kek_id: KekId },
    #[error(
        "cannot open object: its ciphertext failed authentication (tampered, truncated, or sealed for another object id)"
    )]
    CiphertextRejected,
    #[error("sealed data is malformed: {0}")]
    Malformed(&'static str),
    #[error("key-encryption key id `{0}` is invalid: use 1 to 64 of A-Z a-z 0-9 . _ -")]
    InvalidKekId(String),
    #[error("key-encryption key `{0}` is already in the keyring")]
    DuplicateKek(KekId),
    #[error("operating system randomness unavailable: {0}")]
    Randomness(String),
    #[error("encryption failed (plaintext too large?)")]
    EncryptFailed,
}

/// The id of a key-encryption key, e.g. `kek-20261127-3f9a1c2e`. Recorded with every wrapped
/// data key, so the keyring knows which key opens it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KekId(String);

impl KekId {
    /// Checks the id's spelling.
    pub fn new(id: impl Into<String>) -> Result<KekId, EnvelopeError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= MAX_KEK_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(KekId(id))
        } else {
            Err(EnvelopeError::InvalidKekId(id))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KekId {
    type Error = EnvelopeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        KekId::new(value)
    }
}

impl From<KekId> for String {
    fn from(id: KekId) -> String {
        id.0
    }
}

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key-encryption key: 32 secret bytes with an id and a creation time. The bytes are boxed,
/// zeroized on drop and redacted from `Debug`.
pub struct Kek {
    id: KekId,
    created: Timestamp,
    key: SecretBox<[u8; KEY_LEN]>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("created", &self.created)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Kek {
    /// A fresh random key, with an id made of the creation date and random hex.
    pub fn generate(created: Timestamp) -> Result<Kek, EnvelopeError> {
        // Filled in place inside the box, so the key never sits in a stack copy.
        let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
        fill_random(key.expose_secret_mut())?;
        let mut tag = [0u8; 4];
        fill_random(&mut tag)?;
        let date = created.strftime("%Y%m%d");
        let id = KekId::new(format!("kek-{date}-{}", hex::encode(tag)))?;
        Ok(Kek { id, created, key })
    }

    /// A key from known bytes (e.g. read from a secret manager).
    #[must_use]
    pub fn from_bytes(id: KekId, created: Timestamp, bytes: &[u8; KEY_LEN]) -> Kek {
        Kek {
            id,
            created,
            key: SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| k.copy_from_slice(bytes)),
        }
    }

    #[must_use]
    pub fn id(&self) -> &KekId {
        &self.id
    }

    #[must_use]
    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// This key as one key-file line (with the trailing newline): what `gatehouse keys
    /// generate` appends. Zeroized when dropped.
    #[must_use]
    pub fn to_key_file_line(&self) -> Zeroizing<String> {
        let key = Zeroizing::new(BASE64.encode(self.key.expose_secret()));
        // Built by hand so that no intermediate serde buffer holds the key.
        let mut line = Zeroizing::new(String::with_capacity(160));
        line.push_str("{\"id\":\"");
        line.push_str(self.id.as_str());
        line.push_str("\",\"key\":\"");
        line.push_str(&key);
        line.push_str("\",\"created\":\"");
        line.push_str(&self.created.to_string());
        line.push_str("\"}\n");
        line
    }

    fn cipher(&self) -> Result<XChaCha20Poly1305, EnvelopeError> {
        XChaCha20Poly1305::new_from_slice(self.key.expose_secret())
            .map_err(|_| EnvelopeError::Malformed("key-encryption key length"))
    }
}

/// The key file record: one JSON object per line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KekRecord {
    id: String,
    key: String,
    created: Timestamp,
}

/// A key file or environment value that cannot be read. Points at the line and column, never
/// quotes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}:{column}: {message}")]
pub struct KeyFileError {
    pub source_name: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The key-encryption keys available to this process. The newest key (by creation time) seals
/// new objects; older keys stay to open what they still wrap until rotation is complete.
#[derive(Default)]
pub struct Keyring {
    keys: Vec<Kek>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys.iter()).finish()
    }
}

impl Keyring {
    #[must_use]
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Reads a key file (or the value of an environment variable holding the same text):
    /// one `{"id": …, "key": base64 of 32 bytes, "created": RFC 3339}` object per line; blank
    /// lines are ignored. `source_name` (a path or `env:NAME`) is used in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Keyring, KeyFileError> {
        let mut ring = Keyring::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line_no = index + 1;
            let trimmed = raw_line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let column = raw_line.len() - raw_line.trim_start().len() + 1;
            let error = |column: usize, message: String| KeyFileError {
                source_name: source_name.to_owned(),
                line: line_no,
                column,
                message,
            };
            let mut record: KekRecord = serde_json::from_str(trimmed).map_err(|e| {
                // serde_json positions are within the trimmed line; its messages name fields
                // and expectations, not the values of strings, so no key text leaks.
                error(
                    column + e.column().saturating_sub(1),
                    describe_json_error(&e),
                )
            })?;
            let decoded = BASE64.decode(record.key.trim()).map(Zeroizing::new);
            record.key.zeroize();
            let bytes: [u8; KEY_LEN] = match &decoded {
                Ok(b) if b.len() == KEY_LEN => {
                    let mut array = [0u8; KEY_LEN];
                    array.copy_from_slice(b);
                    array
                }
                _ => {
                    return Err(error(
                        column,
                        format!("key of `{}` is not 32 bytes of standard base64", record.id),
                    ));
                }
            };
            let mut bytes = Zeroizing::new(bytes);
            let id = KekId::new(record.id).map_err(|e| error(column, e.to_string()))?;
            let kek = Kek::from_bytes(id, record.created, &bytes);
            bytes.zeroize();
            ring.insert(kek).map_err(|e| error(column, e.to_string()))?;
        }
        Ok(ring)
    }

    /// Reads the compact form of an environment variable such as `GATEHOUSE_KEYS`:
    /// `id:base64key` entries separated by commas (whitespace allowed). These carry no
    /// creation time, so later entries count as newer: the last entry is the active key.
    /// A value starting with `{` is read as key-file text instead ([`Keyring::parse`]).
    pub fn parse_list(text: &str, source_name: &str) -> Result<Keyring, KeyFileError> {
        if text.trim_start().starts_with('{') {
            return Keyring::parse(text, source_name);
        }
        let mut ring = Keyring::new();
        let mut column = 1;
        for (index, entry) in text.split(',').enumerate() {
            let entry_column = column + (entry.len() - entry.trim_start().len());
            column += entry.len() + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let error = |message: String| KeyFileError {
                source_name: source_name.to_owned(),
                line: 1,
                column: entry_column,
                message,
            };
            let Some((id, key)) = entry.split_once(':') else {
                return Err(error("expected `id:base64key`".into()));
            };
            let id = KekId::new(id.trim()).map_err(|e| error(e.to_string()))?;
            let decoded = Zeroizing::new(
                BASE64
                    .decode(key.trim())
                    .map_err(|_| error(format!("key of `{id}` is not standard base64")))?,
            );
            if decoded.len() != KEY_LEN {
                return Err(error(format!("key of `{id}` is not 32 bytes")));
            }
            let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
            bytes.copy_from_slice(&decoded);
            // Position as creation time: the list order decides which key is active.
            let created = Timestamp::from_second(i64::try_from(index).unwrap_or(i64::MAX))
                .unwrap_or(Timestamp::UNIX_EPOCH);
            ring.insert(Kek::from_bytes(id, created, &bytes))
                .map_err(|e| error(e.to_string()))?;
        }
        Ok(ring)
    }

    /// The key file text for these keys (what `gatehouse keys generate` writes). Zeroized when
    /// dropped; write it to a file only the service user can read.
    #[must_use]
    pub fn to_key_file(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for kek in &self.keys {
            out.push_str(&kek.to_key_file_line());
        }
        out
    }

    /// Adds a key; ids are unique.
    pub fn insert(&mut self, kek: Kek) -> Result<(), EnvelopeError> {
        if self.keys.iter().any(|k| k.id == kek.id) {
            return Err(EnvelopeError::DuplicateKek(kek.id.clone()));
        }
        self.keys.push(kek);
        Ok(())
    }

    /// Removes a key (after a completed rotation) and returns it.
    pub fn remove(&mut self, id: &KekId) -> Option<Kek> {
        let pos = self.keys.iter().position(|k| &k.id == id)?;
        Some(self.keys.remove(pos))
    }

    /// The key with this id.
    pub fn get(&self, id: &KekId) -> Result<&Kek, EnvelopeError> {
        self.keys
            .iter()
            .find(|k| &k.id == id)
            .ok_or_else(|| EnvelopeError::KekNotFound { kek_id: id.clone() })
    }

    /// The newest key: the one new objects are sealed with (ties go to the later line).
    #[must_use]
    pub fn active(&self) -> Option<&Kek> {
        // `max_by_key` returns the last of equal maxima, i.e. the later line.
        self.keys.iter().max_by_key(|k| k.created)
    }

    /// Ids of all keys, in file order.
    pub fn ids(&self) -> impl Iterator<Item = &KekId> {
        self.keys.iter().map(|k| &k.id)
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Rewraps `data_key` under the key `new_id`, finding the old key by the id the data key
    /// records. Returns `None` when it is already wrapped by `new_id` (idempotent resume).
    pub fn rewrap_to(
        &self,
        object_id: &[u8],
        data_key: &WrappedDataKey,
        new_id: &KekId,
    ) -> Result<Option<WrappedDataKey>, EnvelopeError> {
        if &data_key.kek_id == new_id {
            return Ok(None);
        }
        let old = self.get(&data_key.kek_id)?;
        let new = self.get(new_id)?;
        rewrap(object_id, data_key, old, new).map(Some)
    }
}

/// serde_json's message without its trailing " at line L column C" (we give our own position).
fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(pos) => text[..pos].to_owned(),
        None => text,
    }
}

/// A data key wrapped (encrypted) by a key-encryption key, with that key's id. 72 bytes of
/// ciphertext + nonce: what rotation rewrites.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    pub kek_id: KekId,
    pub nonce: [u8; NONCE_LEN],
    /// The 32-byte data key encrypted, followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for WrappedDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedDataKey")
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

impl WrappedDataKey {
    /// Binary form: `GHK1` ‖ id length (u8) ‖ id ‖ nonce (24) ‖ wrapped key (48).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let id = self.kek_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(4 + 1 + id.len() + NONCE_LEN + self.ciphertext.len());
        out.extend_from_slice(WRAPPED_MAGIC);
        // KekId::new caps ids at 64 bytes, so the length fits a byte.
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(id);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Reads the binary form.
    pub fn decode(bytes: &[u8]) -> Result<WrappedDataKey, EnvelopeError> {
        let rest = bytes
            .strip_prefix(WRAPPED_MAGIC)
            .ok_or(EnvelopeError::Malformed(
                "wrapped data key has no GHK1 header",
            ))?;
        let (&id_len, rest) = rest
            .split_first()
            .ok_or(EnvelopeError::Malformed("wrapped data key is truncated"))?;
        let id_len = usize::from(id_len);
        if rest.len() != id_len + NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(EnvelopeError::Malformed(
                "wrapped data key has the wrong length",
            ));
        }
        let id = std::str::from_utf8(&rest[..id_len])
            .map_err(|_| EnvelopeError::Malformed("wrapped data key id is not UTF-8"))?;
        let kek_id = KekId::new(id)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&rest[id_len..id_len + NONCE_LEN]);
        Ok(WrappedDataKey {
            kek_id,
            nonce,
            ciphertext: rest[id_len + NONCE_LEN..].to_vec(),
        })
    }
}

/// An object sealed under its own data key. Store `data_key` where it can be rewritten cheaply
/// (its own column): rotation touches only that.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedObject {
    pub data_key: WrappedDataKey,
    pub nonce: [u8; NONCE_LEN],
    /// Plaintext encrypted under the data key, followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedObject")
            .field("kek_id", &self.data_key.kek_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl SealedObject {
    /// Id of the key-encryption key that wraps this object's data key.
    #[must_use]
    pub fn kek_id(&self) -> &KekId {
        &self.data_key.kek_id
    }

    /// Binary form: `GHS1` ‖ wrapped-key length (u16 BE) ‖ wrapped key ‖ nonce (24) ‖
    /// ciphertext.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let key = self.data_key.encode();
        let mut out = Vec::with_capacity(4 + 2 + key.len() + NONCE_LEN + self.ciphertext.len());
        out.extend_from_slice(SEALED_MAGIC);
        out.extend_from_slice(&u16::try_from(key.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&key);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Reads the binary form.
    pub fn decode(bytes: &[u8]) -> Result<SealedObject, EnvelopeError> {
        let rest = bytes
            .strip_prefix(SEALED_MAGIC)
            .ok_or(EnvelopeError::Malformed("sealed object has no GHS1 header"))?;
        if rest.len() < 2 {
            return Err(EnvelopeError::Malformed("sealed object is truncated"));
        }
        let key_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let rest = &rest[2..];
        if rest.len() < key_len + NONCE_LEN + TAG_LEN {
            return Err(EnvelopeError::Malformed("sealed object is truncated"));
        }
        let data_key = WrappedDataKey::decode(&rest[..key_len])?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&rest[key_len..key_len + NONCE_LEN]);
        Ok(SealedObject {
            data_key,
            nonce,
            ciphertext: rest[key_len + NONCE_LEN..].to_vec(),
        })
    }
}

fn fill_random(buf: &mut [u8]) -> Result<(), EnvelopeError> {
    getrandom::fill(buf).map_err(|e| EnvelopeError::Randomness(e.to_string()))
}

fn data_aad(object_id: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DATA_AAD_CONTEXT.len() + object_id.len());
    aad.extend_from_slice(DATA_AAD_CONTEXT);
    aad.extend_from_slice(object_id);
    aad
}

fn key_aad(kek_id: &KekId, object_id: &[u8]) -> Vec<u8> {
    let id = kek_id.as_str().as_bytes();
    let mut aad = Vec::with_capacity(KEY_AAD_CONTEXT.len() + 1 + id.len() + object_id.len());
    aad.extend_from_slice(KEY_AAD_CONTEXT);
    aad.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(id);
    aad.extend_from_slice(object_id);
    aad
}

pub(crate) fn wrap(
    object_id: &[u8],
    data_key: &[u8; KEY_LEN],
    kek: &Kek,
) -> Result<WrappedDataKey, EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let ciphertext = kek
        .cipher()?
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: data_key,
                aad: &key_aad(&kek.id, object_id),
            },
        )
        .map_err(|_| EnvelopeError::EncryptFailed)?;
    Ok(WrappedDataKey {
        kek_id: kek.id.clone(),
        nonce,
        ciphertext,
    })
}

pub(crate) fn unwrap_key(
    object_id: &[u8],
    wrapped: &WrappedDataKey,
    kek: &Kek,
) -> Result<Zeroizing<[u8; KEY_LEN]>, EnvelopeError> {
    if wrapped.kek_id != kek.id {
        return Err(EnvelopeError::KeyMismatch {
            kek_id: wrapped.kek_id.clone(),
        });
    }
    let plain = Zeroizing::new(
        kek.cipher()?
            .decrypt(
                &XNonce::from(wrapped.nonce),
                Payload {
                    msg: &wrapped.ciphertext,
                    aad: &key_aad(&wrapped.kek_id, object_id),
                },
            )
            .map_err(|_| EnvelopeError::KeyMismatch {
                kek_id: wrapped.kek_id.clone(),
            })?,
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return Err(EnvelopeError::Malformed(
            "unwrapped data key has the wrong length",
        ));
    }
    key.copy_from_slice(&plain);
    Ok(key)
}

/// Seals `plaintext` for the object `object_id` under a fresh data key wrapped by `kek`.
pub fn seal(object_id: &[u8], plaintext: &[u8], kek: &Kek) -> Result<SealedObject, EnvelopeError> {
    let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(data_key.as_mut_slice())?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new_from_slice(data_key.as_slice())
        .map_err(|_| EnvelopeError::Malformed("data key length"))?;
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &data_aad(object_id),
            },
        )
        .map_err(|_| EnvelopeError::EncryptFailed)?;
    Ok(SealedObject {
        data_key: wrap(object_id, &data_key, kek)?,
        nonce,
        ciphertext,
    })
}

/// Opens an object sealed for `object_id`, with the key its data key names.
pub fn open(
    object_id: &[u8],
    sealed: &SealedObject,
    keyring: &Keyring,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let kek = keyring.get(&sealed.data_key.kek_id)?;
    let data_key = unwrap_key(object_id, &sealed.data_key, kek)?;
    let cipher = XChaCha20Poly1305::new_from_slice(data_key.as_slice())
        .map_err(|_| EnvelopeError::Malformed("data key length"))?;
    cipher
        .decrypt(
            &XNonce::from(sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &data_aad(object_id),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| EnvelopeError::CiphertextRejected)
}

/// Moves an object's data key from `old` to `new` without touching the object's ciphertext.
/// Idempotent: a key already wrapped by `new` is returned unchanged.
pub fn rewrap(
    object_id: &[u8],
    data_key: &WrappedDataKey,
    old: &Kek,
    new: &Kek,
) -> Result<WrappedDataKey, EnvelopeError> {
    if data_key.kek_id == new.id {
        return Ok(data_key.clone());
    }
    let plain = unwrap_key(object_id, data_key, old)?;
    wrap(object_id, &plain, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> Timestamp {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn generated_ids_carry_the_date_and_are_valid() {
        let kek = Kek::generate(created()).unwrap();
        assert!(
            kek.id().as_str().starts_with("kek-20261127-"),
            "{}",
            kek.id()
        );
        assert_eq!(kek.id().as_str().len(), "kek-20261127-".len() + 8);
    }

    #[test]
    fn kek_ids_are_validated() {
        assert!(KekId::new("kek-1.a_b").is_ok());
        for bad in ["", "has space", "slash/", &"x".repeat(65)] {
            assert!(KekId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encodings_round_trip_and_reject_truncation() {
        let kek = Kek::generate(created()).unwrap();
        let sealed = seal(b"obj", b"payload", &kek).unwrap();
        let bytes = sealed.encode();
        assert_eq!(SealedObject::decode(&bytes).unwrap(), sealed);
        for cut in [0, 3, 5, 20, bytes.len() - 60] {
            assert!(SealedObject::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let key_bytes = sealed.data_key.encode();
        assert_eq!(WrappedDataKey::decode(&key_bytes).unwrap(), sealed.data_key);
        assert!(WrappedDataKey::decode(&key_bytes[..key_bytes.len() - 1]).is_err());
    }

    #[test]
    fn inline_list_parses_and_the_last_entry_is_active() {
        let a = BASE64.encode([1u8; 32]);
        let b = BASE64.encode([2u8; 32]);
        let ring =
            Keyring::parse_list(&format!(" k-a:{a} , k-b:{b}"), "env:GATEHOUSE_KEYS").unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.active().unwrap().id().as_str(), "k-b");
        let err = Keyring::parse_list("k-a:c2hvcnQ=", "env:X").unwrap_err();
        assert!(err.to_string().contains("not 32 bytes"), "{err}");
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        assert!(Keyring::parse_list("nocolon", "env:X").is_err());
    }

    #[test]
    fn equal_creation_times_go_to_the_later_line() {
        let mut ring = Keyring::new();
        ring.insert(Kek::from_bytes(
            KekId::new("first").unwrap(),
            created(),
            &[1; 32],
        ))
        .unwrap();
        ring.insert(Kek::from_bytes(
            KekId::new("second").unwrap(),
            created(),
            &[2; 32],
        ))
        .unwrap();
        assert_eq!(ring.active().unwrap().id().as_str(), "second");
    }

    #[test]
    fn active_key_is_the_newest() {
        let mut ring = Keyring::new();
        let old = Kek::from_bytes(KekId::new("old").unwrap(), created(), &[1; 32]);
        let new = Kek::from_bytes(
            KekId::new("new").unwrap(),
            "2027-01-01T00:00:00Z".parse().unwrap(),
            &[2; 32],
        );
        ring.insert(new).unwrap();
        ring.insert(old).unwrap();
        assert_eq!(ring.active().unwrap().id().as_str(), "new");
        let dup = Kek::from_bytes(KekId::new("old").unwrap(), created(), &[3; 32]);
        assert!(matches!(
            ring.insert(dup),
            Err(EnvelopeError::DuplicateKek(_))
        ));
    }
}
