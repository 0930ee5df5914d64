//! Secret credentials: the one shape shared by API tokens and browser session cookies.
//!
//! Both are `<prefix><id>_<secret>`: a public 96-bit id (24 lowercase hex digits) under which
//! the record is stored, so the server finds it without scanning, and a 256-bit secret from the
//! operating system's random source (64 lowercase hex digits) of which only the SHA-256 digest
//! is stored, so a leaked database yields no usable credential. API tokens use the prefix `gh_`
//! (it tells them from OIDC JWTs in an `Authorization` header); session cookies use none.
//!
//! Generating, parsing, hashing and comparing live here once so that the two credentials
//! cannot drift apart: one accepting uppercase hex, one comparing digests with `==`, one
//! forgetting to wipe its secret. The format is persistent: existing tokens and sessions are
//! verified against digests computed by these functions, so none of them may change.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::random::{self, RandomnessError};

/// Random bytes of a credential's public id.
pub const ID_BYTES: usize = 12;
/// Random bytes of a credential's secret (256 bits).
pub const SECRET_BYTES: usize = 32;

/// Why a presented credential string is not well formed. Never carries the secret; the id is
/// public and may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed<'a> {
    /// It does not start with the credential's prefix.
    Prefix,
    /// No `_` separates the id from the secret.
    Shape,
    /// The id part is not [`ID_BYTES`] × 2 lowercase hex digits.
    Id(&'a str),
    /// The secret part is not [`SECRET_BYTES`] × 2 lowercase hex digits.
    Secret,
}

/// Whether `input` is a well-formed credential id: 24 lowercase hex digits.
pub fn is_id(input: &str) -> bool {
    input.len() == ID_BYTES * 2 && is_lower_hex(input)
}

/// A credential's id and secret, parsed from a client or freshly generated. The secret is wiped
/// from memory when the value is dropped and is never printed.
pub struct SecretCredential {
    prefix: &'static str,
    id: String,
    secret: Zeroizing<[u8; SECRET_BYTES]>,
}

impl SecretCredential {
    /// A new credential with a random id and a random 256-bit secret.
    pub fn generate(prefix: &'static str) -> Result<Self, RandomnessError> {
        let mut id = [0u8; ID_BYTES];
        random::fill(&mut id)?;
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        random::fill(secret.as_mut())?;
        Ok(Self {
            prefix,
            id: hex::encode(id),
            secret,
        })
    }

    /// Parses `<prefix><24 hex id>_<64 hex secret>`. Uppercase hex is refused rather than
    /// normalised: there is exactly one spelling of each credential.
    pub fn parse<'a>(prefix: &'static str, presented: &'a str) -> Result<Self, Malformed<'a>> {
        let rest = presented.strip_prefix(prefix).ok_or(Malformed::Prefix)?;
        let (id, secret_hex) = rest.split_once('_').ok_or(Malformed::Shape)?;
        if !is_id(id) {
            return Err(Malformed::Id(id));
        }
        if secret_hex.len() != SECRET_BYTES * 2 || !is_lower_hex(secret_hex) {
            return Err(Malformed::Secret);
        }
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        hex::decode_to_slice(secret_hex, secret.as_mut()).map_err(|_| Malformed::Secret)?;
        Ok(Self {
            prefix,
            id: id.to_owned(),
            secret,
        })
    }

    /// The public id (24 lowercase hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The full credential `<prefix><id>_<secret>`, to hand to its holder once.
    pub fn encode(&self) -> Zeroizing<String> {
        let secret_hex = Zeroizing::new(hex::encode(self.secret.as_ref()));
        Zeroizing::new(format!(
            "{}{}_{}",
            self.prefix,
            self.id,
            secret_hex.as_str()
        ))
    }

    /// The digest to store instead of the secret: SHA-256 of the secret's bytes.
    pub fn digest(&self) -> SecretHash {
        SecretHash(sha2::Sha256::digest(self.secret.as_ref()).into())
    }

    /// Whether this credential is the one stored under `id` with digest `stored`. The digests
    /// are compared in constant time, and both checks always run.
    pub fn verify(&self, id: &str, stored: &SecretHash) -> bool {
        let id_matches = self.id == id;
        let secret_matches: bool = self.digest().0.ct_eq(&stored.0).into();
        id_matches && secret_matches
    }

    /// A value bound to this credential for one purpose: SHA-256 over `label` and the secret.
    /// Whoever does not hold the secret cannot compute it; it does not reveal the secret.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut hasher = sha2::Sha256::new();
        hasher.update(label);
        hasher.update(self.secret.as_ref());
        hasher.finalize().into()
    }
}

impl fmt::Debug for SecretCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCredential")
            .field("prefix", &self.prefix)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// SHA-256 of a credential's secret: what is stored instead of the secret (as 64 hex digits).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash([u8; 32]);

/// A stored secret hash that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret hash is not 64 hex digits: {0}")]
pub struct SecretHashError(String);

impl SecretHash {
    /// Parses the 64-hex-digit form written by [`SecretHash::to_hex`].
    pub fn from_hex(input: &str) -> Result<Self, SecretHashError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(input, &mut bytes).map_err(|e| SecretHashError(e.to_string()))?;
        Ok(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not the secret, but there is no reason to put it in logs either.
        f.write_str("SecretHash(..)")
    }
}

impl TryFrom<String> for SecretHash {
    type Error = SecretHashError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_hex(&value)
    }
}

impl From<SecretHash> for String {
    fn from(value: SecretHash) -> Self {
        value.to_hex()
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn generated_credentials_round_trip_and_differ() {
        let a = SecretCredential::generate("x_").unwrap();
        let b = SecretCredential::generate("x_").unwrap();
        assert_ne!(a.id(), b.id());
        let encoded = a.encode();
        assert_eq!(encoded.len(), 2 + 24 + 1 + 64);
        let parsed = SecretCredential::parse("x_", &encoded).unwrap();
        assert_eq!(parsed.id(), a.id());
        assert!(parsed.verify(a.id(), &a.digest()));
        assert!(!parsed.verify(b.id(), &a.digest()));
        assert!(!parsed.verify(a.id(), &b.digest()));
        assert_eq!(parsed.derive(b"label"), a.derive(b"label"));
        assert_ne!(parsed.derive(b"label"), b.derive(b"label"));
        assert!(!format!("{a:?}").contains(&encoded[27..]));
    }

    #[test]
    fn digest_is_sha256_of_the_secret_bytes() {
        let c = SecretCredential::parse("", &format!("{}_{SECRET_HEX}", "0".repeat(24))).unwrap();
        assert_eq!(
            c.digest().to_hex(),
            "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
        );
    }

    #[test]
    fn malformed_input_says_which_part() {
        fn parse(s: &str) -> Option<Malformed<'_>> {
            SecretCredential::parse("p_", s).err()
        }
        let id = "a".repeat(24);
        assert_eq!(
            parse(&format!("{id}_{SECRET_HEX}")),
            Some(Malformed::Prefix)
        );
        assert_eq!(
            parse(&format!("p_{id}{SECRET_HEX}")),
            Some(Malformed::Shape)
        );
        assert_eq!(
            parse(&format!("p_{}_{SECRET_HEX}", "A".repeat(24))),
            Some(Malformed::Id(&"A".repeat(24)))
        );
        assert_eq!(
            parse(&format!("p_{id}_{}", &SECRET_HEX[..63])),
            Some(Malformed::Secret)
        );
        assert_eq!(
            parse(&format!("p_{id}_{}", SECRET_HEX.to_uppercase())),
            Some(Malformed::Secret)
        );
        assert_eq!(parse(&format!("p_{id}_{SECRET_HEX}")), None);
    }

    #[test]
    fn secret_hash_round_trips_through_hex() {
        let c = SecretCredential::generate("").unwrap();
        let hash = c.digest();
        assert_eq!(SecretHash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert!(SecretHash::from_hex("abc").is_err());
        assert_eq!(format!("{hash:?}"), "SecretHash(..)");
    }
}
