//! Signed tree heads: an Ed25519 signature over (tree size, root, time, key id).
//!
//! The Merkle root alone proves nothing to someone who can rewrite the whole log; a root signed
//! by the log's key at a known size pins every entry below that size. Heads are signed over a
//! fixed binary encoding (not JSON) so that no serializer detail can change what was signed.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::merkle::Hash;

/// Domain separation: a signature over these bytes can never be mistaken for one over
/// anything else the same key might sign.
const HEAD_CONTEXT: &[u8] = b"gatehouse tree head v1\0";

/// Identifies a log signing key: the first 16 bytes of SHA-256 of the Ed25519 public key, in
/// hex (32 characters). Derived, so it can always be recomputed from the key it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The key id of an Ed25519 public key.
    #[must_use]
    pub fn of_public_key(public_key: &[u8; 32]) -> KeyId {
        let digest = Sha256::digest(public_key);
        KeyId(hex::encode(&digest[..16]))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Errors of signing keys and tree-head signatures.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("operating system randomness unavailable: {0}")]
    Randomness(String),
    #[error("log signing key is not 32 bytes of standard base64")]
    MalformedSecretKey,
    #[error("public key `{0}` is not a valid Ed25519 key")]
    MalformedPublicKey(String),
    #[error(
        "tree head at size {tree_size} names key `{head_key}` but was checked with key `{given_key}`"
    )]
    KeyIdMismatch {
        tree_size: u64,
        head_key: KeyId,
        given_key: KeyId,
    },
    #[error("signature of tree head at size {tree_size} by key `{key_id}` is invalid")]
    BadSignature { tree_size: u64, key_id: KeyId },
}

/// The private half of the log's signing key. Zeroized on drop (ed25519-dalek's `zeroize`
/// feature); Debug shows only the key id.
pub struct LogSigningKey {
    inner: SigningKey,
    key_id: KeyId,
}

impl fmt::Debug for LogSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSigningKey")
            .field("key_id", &self.key_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl LogSigningKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<LogSigningKey, SignatureError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut_slice())
            .map_err(|e| SignatureError::Randomness(e.to_string()))?;
        Ok(LogSigningKey::from_secret_bytes(&secret))
    }

    /// The key with this 32-byte Ed25519 secret.
    #[must_use]
    pub fn from_secret_bytes(secret: &[u8; 32]) -> LogSigningKey {
        let inner = SigningKey::from_bytes(secret);
        let key_id = KeyId::of_public_key(&inner.verifying_key().to_bytes());
        LogSigningKey { inner, key_id }
    }

    /// Reads the secret as written by [`LogSigningKey::to_base64_secret`]. The error never
    /// quotes the input.
    pub fn from_base64_secret(text: &str) -> Result<LogSigningKey, SignatureError> {
        let bytes = Zeroizing::new(
            BASE64
                .decode(text.trim())
                .map_err(|_| SignatureError::MalformedSecretKey)?,
        );
        let secret: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| SignatureError::MalformedSecretKey)?,
        );
        Ok(LogSigningKey::from_secret_bytes(&secret))
    }

    /// The secret in standard base64, for a key file; zeroized when dropped.
    #[must_use]
    pub fn to_base64_secret(&self) -> Zeroizing<String> {
        let secret = Zeroizing::new(self.inner.to_bytes());
        Zeroizing::new(BASE64.encode(secret.as_slice()))
    }

    #[must_use]
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The public half, to publish and to embed in exports.
    #[must_use]
    pub fn verifying_key(&self) -> LogVerifyingKey {
        LogVerifyingKey {
            inner: self.inner.verifying_key(),
            key_id: self.key_id.clone(),
        }
    }
}

/// The public half of a log signing key, with its id.
#[derive(Clone, PartialEq, Eq)]
pub struct LogVerifyingKey {
    inner: VerifyingKey,
    key_id: KeyId,
}

impl fmt::Debug for LogVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogVerifyingKey")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl LogVerifyingKey {
    /// The key with these 32 public-key bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<LogVerifyingKey, SignatureError> {
        let inner = VerifyingKey::from_bytes(bytes)
            .map_err(|_| SignatureError::MalformedPublicKey(KeyId::of_public_key(bytes).0))?;
        Ok(LogVerifyingKey {
            inner,
            key_id: KeyId::of_public_key(bytes),
        })
    }

    /// Reads standard base64 of the 32 public-key bytes.
    pub fn from_base64(text: &str) -> Result<LogVerifyingKey, SignatureError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| SignatureError::MalformedPublicKey(text.to_owned()))?;
        let array: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SignatureError::MalformedPublicKey(text.to_owned()))?;
        LogVerifyingKey::from_bytes(&array)
    }

    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    #[must_use]
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.inner.to_bytes())
    }

    #[must_use]
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }
}

/// A tree head signed by the log: "the log of `tree_size` entries has root `root_hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    pub root_hash: Hash,
    /// When it was signed (passed in by the caller).
    pub timestamp: Timestamp,
    pub key_id: KeyId,
    #[serde(with = "signature_base64")]
    pub signature: [u8; 64],
}

impl SignedTreeHead {
    /// The exact bytes an Ed25519 signature covers:
    /// context ‖ tree_size (u64 BE) ‖ root (32) ‖ seconds (i64 BE) ‖ nanoseconds (i32 BE) ‖
    /// key-id length (u8) ‖ key id (ASCII).
    #[must_use]
    pub fn signed_bytes(
        tree_size: u64,
        root_hash: &Hash,
        timestamp: Timestamp,
        key_id: &KeyId,
    ) -> Vec<u8> {
        let id = key_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(HEAD_CONTEXT.len() + 8 + 32 + 12 + 1 + id.len());
        out.extend_from_slice(HEAD_CONTEXT);
        out.extend_from_slice(&tree_size.to_be_bytes());
        out.extend_from_slice(root_hash.as_bytes());
        out.extend_from_slice(&timestamp.as_second().to_be_bytes());
        out.extend_from_slice(&timestamp.subsec_nanosecond().to_be_bytes());
        // Key ids are 32 characters; the length byte keeps the encoding unambiguous anyway.
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(id);
        out
    }

    /// Signs a head.
    #[must_use]
    pub fn sign(
        tree_size: u64,
        root_hash: Hash,
        timestamp: Timestamp,
        key: &LogSigningKey,
    ) -> SignedTreeHead {
        let message = SignedTreeHead::signed_bytes(tree_size, &root_hash, timestamp, key.key_id());
        let signature = key.inner.sign(&message).to_bytes();
        SignedTreeHead {
            tree_size,
            root_hash,
            timestamp,
            key_id: key.key_id().clone(),
            signature,
        }
    }

    /// Checks the signature with `key`, which must be the key the head names.
    pub fn verify(&self, key: &LogVerifyingKey) -> Result<(), SignatureError> {
        if key.key_id() != &self.key_id {
            return Err(SignatureError::KeyIdMismatch {
                tree_size: self.tree_size,
                head_key: self.key_id.clone(),
                given_key: key.key_id().clone(),
            });
        }
        let message = SignedTreeHead::signed_bytes(
            self.tree_size,
            &self.root_hash,
            self.timestamp,
            &self.key_id,
        );
        let signature = Signature::from_bytes(&self.signature);
        key.inner
            .verify_strict(&message, &signature)
            .map_err(|_| SignatureError::BadSignature {
                tree_size: self.tree_size,
                key_id: self.key_id.clone(),
            })
    }
}

mod signature_base64 {
    use super::BASE64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8; 64], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = BASE64
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("signature is not standard base64"))?;
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::custom("signature is not 64 bytes"))
    }
}

/// Serialises a public key as `{"key_id": …, "algorithm": "ed25519", "public_key": base64}`.
impl Serialize for LogVerifyingKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PublicKeyRecord {
            key_id: self.key_id.clone(),
            algorithm: "ed25519".to_owned(),
            public_key: self.to_base64(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LogVerifyingKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = PublicKeyRecord::deserialize(deserializer)?;
        if record.algorithm != "ed25519" {
            return Err(serde::de::Error::custom(format!(
                "unsupported key algorithm `{}`",
                record.algorithm
            )));
        }
        let key =
            LogVerifyingKey::from_base64(&record.public_key).map_err(serde::de::Error::custom)?;
        if key.key_id != record.key_id {
            return Err(serde::de::Error::custom(format!(
                "key id `{}` does not match its public key (which has id `{}`)",
                record.key_id, key.key_id
            )));
        }
        Ok(key)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeyRecord {
    key_id: KeyId,
    algorithm: String,
    public_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    fn ts() -> Timestamp {
        "2026-11-27T12:00:00.123456789Z".parse().unwrap()
    }

    #[test]
    fn signed_head_verifies_and_any_field_change_breaks_it() {
        let key = LogSigningKey::from_secret_bytes(&[7; 32]);
        let head = SignedTreeHead::sign(10, leaf_hash(b"root"), ts(), &key);
        head.verify(&key.verifying_key()).unwrap();

        let mut bigger = head.clone();
        bigger.tree_size = 11;
        assert!(matches!(
            bigger.verify(&key.verifying_key()),
            Err(SignatureError::BadSignature { tree_size: 11, .. })
        ));
        let mut other_root = head.clone();
        other_root.root_hash = leaf_hash(b"other");
        assert!(other_root.verify(&key.verifying_key()).is_err());
        let mut later = head.clone();
        later.timestamp = "2026-11-27T12:00:01Z".parse().unwrap();
        assert!(later.verify(&key.verifying_key()).is_err());
    }

    #[test]
    fn head_checked_with_another_key_names_both_ids() {
        let key = LogSigningKey::from_secret_bytes(&[7; 32]);
        let other = LogSigningKey::from_secret_bytes(&[8; 32]);
        let head = SignedTreeHead::sign(1, leaf_hash(b"r"), ts(), &key);
        let err = head.verify(&other.verifying_key()).unwrap_err().to_string();
        assert!(
            err.contains(key.key_id().as_str()) && err.contains(other.key_id().as_str()),
            "{err}"
        );
    }

    #[test]
    fn key_ids_are_32_hex_chars_from_the_public_key() {
        let key = LogSigningKey::from_secret_bytes(&[1; 32]);
        assert_eq!(key.key_id().as_str().len(), 32);
        assert_eq!(
            key.key_id(),
            &KeyId::of_public_key(&key.verifying_key().to_bytes())
        );
    }

    #[test]
    fn secret_round_trips_through_base64_and_debug_redacts_it() {
        let key = LogSigningKey::generate().unwrap();
        let secret = key.to_base64_secret();
        let again = LogSigningKey::from_base64_secret(&secret).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        let debug = format!("{key:?}");
        assert!(!debug.contains(secret.as_str()), "{debug}");
        assert!(debug.contains("[redacted]"));
        assert!(LogSigningKey::from_base64_secret("c2hvcnQ=").is_err());
    }

    #[test]
    fn head_and_public_key_serialise_as_json_and_back() {
        let key = LogSigningKey::from_secret_bytes(&[3; 32]);
        let head = SignedTreeHead::sign(5, leaf_hash(b"x"), ts(), &key);
        let text = serde_json::to_string(&head).unwrap();
        let back: SignedTreeHead = serde_json::from_str(&text).unwrap();
        assert_eq!(back, head);
        let public = serde_json::to_string(&key.verifying_key()).unwrap();
        let back: LogVerifyingKey = serde_json::from_str(&public).unwrap();
        assert_eq!(back, key.verifying_key());
        let forged = public.replace(key.key_id().as_str(), &"0".repeat(32));
        assert!(serde_json::from_str::<LogVerifyingKey>(&forged).is_err());
    }
}
