//! Who is calling: principals, and API tokens that prove a principal's identity.
//!
//! An API token is shown to its owner once, as `gh_<id>_<secret>`. Only the SHA-256 of the
//! 256-bit secret is stored, so a leaked database does not leak usable tokens; the public `id`
//! part lets the server find the record without scanning. [`verify`] compares hashes in constant
//! time and refuses revoked and expired tokens, taking the current time as a parameter.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::random::{self, RandomnessError};
use crate::release::truncate_for_message;

/// How a principal proved its identity on this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A gatehouse API token (`gh_…`).
    ApiToken,
    /// A password of a local person.
    Password,
    /// An OIDC ID token of a person (browser login).
    OidcPerson,
    /// An OIDC workload token (e.g. a CI pipeline), no stored secret.
    OidcWorkload,
    /// A browser session established by one of the above.
    Session,
    /// An offline administrative command run directly on the data directory.
    Local,
}

/// An authenticated identity and the roles it holds for this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Stable identifier (a pack `Person` id, or a workload subject).
    pub id: String,
    /// Human-readable name for logs, memos and the UI.
    pub display: String,
    /// Role ids (from the pack's `Role` documents) granted to this principal.
    pub roles: Vec<String>,
    pub auth_method: AuthMethod,
    /// Services this principal may act on; `None` means any service. A workload token mapped by
    /// a pack claim rule (e.g. the `acme/payments` pipeline) is confined to the rule's services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_scope: Option<Vec<String>>,
}

impl Principal {
    /// Whether the principal holds the role `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the principal may act on releases of `service` (its service scope allows it).
    pub fn may_act_on_service(&self, service: &str) -> bool {
        self.service_scope
            .as_ref()
            .is_none_or(|services| services.iter().any(|s| s == service))
    }
}

const TOKEN_PREFIX: &str = "gh_";
const TOKEN_ID_BYTES: usize = 12;
const TOKEN_SECRET_BYTES: usize = 32;

/// The public, non-secret part of an API token; the key its record is stored under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(String);

impl TokenId {
    fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; TOKEN_ID_BYTES];
        random::fill(&mut bytes)?;
        Ok(Self(hex::encode(bytes)))
    }

    /// Parses a token id: 24 lowercase hex digits.
    pub fn parse(input: &str) -> Result<Self, TokenError> {
        if input.len() == TOKEN_ID_BYTES * 2 && is_lower_hex(input) {
            Ok(Self(input.to_owned()))
        } else {
            Err(TokenError::Malformed {
                reason: format!(
                    "token id `{}` is not {} lowercase hex digits",
                    truncate_for_message(input),
                    TOKEN_ID_BYTES * 2
                ),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TokenId {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for TokenId {
    type Error = TokenError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TokenId> for String {
    fn from(value: TokenId) -> Self {
        value.0
    }
}

/// SHA-256 of a token secret: what is stored instead of the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    fn of(secret: &[u8]) -> Self {
        Self(sha2::Sha256::digest(secret).into())
    }

    /// Parses the 64-hex-digit form written by [`SecretHash::to_hex`].
    pub fn from_hex(input: &str) -> Result<Self, TokenError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(input, &mut bytes).map_err(|e| TokenError::Malformed {
            reason: format!("secret hash is not 64 hex digits: {e}"),
        })?;
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
    type Error = TokenError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_hex(&value)
    }
}

impl From<SecretHash> for String {
    fn from(value: SecretHash) -> Self {
        value.to_hex()
    }
}

/// The stored form of an API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub id: TokenId,
    pub secret_hash: SecretHash,
    /// Roles the token is scoped to (a subset of what its principal may hold).
    pub roles: Vec<String>,
    /// Principal id the token acts as.
    pub principal: String,
    pub created_at: Timestamp,
    /// No expiry when `None`.
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl ApiTokenRecord {
    /// Whether the token is revoked at `now`.
    pub fn is_revoked(&self, now: Timestamp) -> bool {
        self.revoked_at.is_some_and(|at| at <= now)
    }

    /// Whether the token has expired at `now` (the expiry instant itself is already expired).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A freshly generated token: the record to store and the one-time secret string to show.
pub struct IssuedToken {
    record: ApiTokenRecord,
    token: Zeroizing<String>,
}

impl IssuedToken {
    /// Generates a token for `principal`, scoped to `roles`, with a 256-bit random secret.
    pub fn generate(
        principal: &str,
        roles: Vec<String>,
        created_at: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<Self, RandomnessError> {
        let id = TokenId::generate()?;
        let mut secret = Zeroizing::new([0u8; TOKEN_SECRET_BYTES]);
        random::fill(secret.as_mut())?;
        let secret_hex = Zeroizing::new(hex::encode(secret.as_ref()));
        let token = Zeroizing::new(format!("{TOKEN_PREFIX}{id}_{}", secret_hex.as_str()));
        let record = ApiTokenRecord {
            id,
            secret_hash: SecretHash::of(secret.as_ref()),
            roles,
            principal: principal.to_owned(),
            created_at,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        Ok(Self { record, token })
    }

    /// The record to persist (contains only the secret's hash).
    pub fn record(&self) -> &ApiTokenRecord {
        &self.record
    }

    /// The full token string, to be shown to its owner exactly once.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Splits into the record and the secret string.
    pub fn into_parts(self) -> (ApiTokenRecord, Zeroizing<String>) {
        (self.record, self.token)
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("record", &self.record)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A token string as presented by a client, split into its id and secret.
pub struct PresentedToken {
    id: TokenId,
    secret: Zeroizing<[u8; TOKEN_SECRET_BYTES]>,
}

impl PresentedToken {
    /// Parses `gh_<24 hex id>_<64 hex secret>`. Errors never echo the secret.
    pub fn parse(presented: &str) -> Result<Self, TokenError> {
        let malformed = |reason: &str| TokenError::Malformed {
            reason: reason.to_owned(),
        };
        let rest = presented
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| malformed("an API token starts with `gh_`"))?;
        let (id, secret_hex) = rest
            .split_once('_')
            .ok_or_else(|| malformed("an API token has the form gh_<id>_<secret>"))?;
        let id = TokenId::parse(id)?;
        if secret_hex.len() != TOKEN_SECRET_BYTES * 2 || !is_lower_hex(secret_hex) {
            return Err(malformed(
                "the secret part of an API token is 64 lowercase hex digits",
            ));
        }
        let mut secret = Zeroizing::new([0u8; TOKEN_SECRET_BYTES]);
        hex::decode_to_slice(secret_hex, secret.as_mut())
            .map_err(|_| malformed("the secret part of an API token is not hex"))?;
        Ok(Self { id, secret })
    }

    /// The id to look the token's record up by.
    pub fn id(&self) -> &TokenId {
        &self.id
    }
}

impl fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a presented token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed API token: {reason}")]
    Malformed { reason: String },
    /// The id is known but the secret does not match, or the record is for another id.
    #[error("API token {id} is not valid")]
    WrongSecret { id: TokenId },
    #[error("API token {id} was revoked at {at}")]
    Revoked { id: TokenId, at: Timestamp },
    #[error("API token {id} expired at {at}")]
    Expired { id: TokenId, at: Timestamp },
}

/// Checks a presented token string against its stored record at time `now`.
///
/// The secret is checked first, in constant time, so that revocation and expiry are only
/// revealed to a caller who actually holds the secret.
pub fn verify(presented: &str, record: &ApiTokenRecord, now: Timestamp) -> Result<(), TokenError> {
    verify_presented(&PresentedToken::parse(presented)?, record, now)
}

/// [`verify`] for a token the caller has already parsed (to look its record up by id).
pub fn verify_presented(
    presented: &PresentedToken,
    record: &ApiTokenRecord,
    now: Timestamp,
) -> Result<(), TokenError> {
    let presented_hash = SecretHash::of(presented.secret.as_ref());
    let id_matches = presented.id == record.id;
    let secret_matches: bool = presented_hash
        .as_bytes()
        .ct_eq(record.secret_hash.as_bytes())
        .into();
    if !(id_matches && secret_matches) {
        return Err(TokenError::WrongSecret {
            id: presented.id.clone(),
        });
    }
    if let Some(at) = record.revoked_at.filter(|at| *at <= now) {
        return Err(TokenError::Revoked {
            id: record.id.clone(),
            at,
        });
    }
    if let Some(at) = record.expires_at.filter(|at| *at <= now) {
        return Err(TokenError::Expired {
            id: record.id.clone(),
            at,
        });
    }
    Ok(())
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn issue(expires_at: Option<Timestamp>) -> IssuedToken {
        IssuedToken::generate("alice", vec!["submitter".into()], at(1_000), expires_at).unwrap()
    }

    #[test]
    fn issued_token_verifies_against_its_record() {
        let issued = issue(None);
        assert!(issued.token().starts_with("gh_"));
        assert_eq!(issued.token().len(), 3 + 24 + 1 + 64);
        verify(issued.token(), issued.record(), at(2_000)).unwrap();
        let parsed = PresentedToken::parse(issued.token()).unwrap();
        assert_eq!(parsed.id(), &issued.record().id);
    }

    #[test]
    fn record_stores_a_hash_not_the_secret() {
        let issued = issue(None);
        let secret_hex = issued.token().rsplit('_').next().unwrap();
        let stored = serde_json::to_string(issued.record()).unwrap();
        assert!(!stored.contains(secret_hex));
        assert!(!format!("{issued:?}").contains(secret_hex));
    }

    #[test]
    fn two_tokens_differ() {
        let a = issue(None);
        let b = issue(None);
        assert_ne!(a.token(), b.token());
        assert_ne!(a.record().id, b.record().id);
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let issued = issue(None);
        let token = issued.token();
        // Flip the last hex digit of the secret.
        let last = token.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        let forged = format!("{}{flipped}", &token[..token.len() - 1]);
        assert_eq!(
            verify(&forged, issued.record(), at(2_000)),
            Err(TokenError::WrongSecret {
                id: issued.record().id.clone()
            })
        );
    }

    #[test]
    fn token_of_another_record_is_rejected() {
        let a = issue(None);
        let b = issue(None);
        assert!(matches!(
            verify(a.token(), b.record(), at(2_000)),
            Err(TokenError::WrongSecret { .. })
        ));
    }

    #[test]
    fn revoked_token_is_rejected_from_revocation_on() {
        let issued = issue(None);
        let mut record = issued.record().clone();
        record.revoked_at = Some(at(1_500));
        verify(issued.token(), &record, at(1_499)).unwrap();
        assert_eq!(
            verify(issued.token(), &record, at(1_500)),
            Err(TokenError::Revoked {
                id: record.id.clone(),
                at: at(1_500)
            })
        );
    }

    #[test]
    fn expired_token_is_rejected_at_and_after_expiry() {
        let issued = issue(Some(at(3_000)));
        verify(issued.token(), issued.record(), at(2_999)).unwrap();
        assert!(matches!(
            verify(issued.token(), issued.record(), at(3_000)),
            Err(TokenError::Expired { .. })
        ));
        assert!(issued.record().is_expired(at(3_001)));
    }

    #[test]
    fn revocation_and_expiry_are_hidden_from_a_wrong_secret() {
        let issued = issue(Some(at(1_100)));
        let mut record = issued.record().clone();
        record.revoked_at = Some(at(1_050));
        let other = issue(None);
        let forged = format!(
            "gh_{}_{}",
            record.id,
            other.token().rsplit('_').next().unwrap()
        );
        assert!(matches!(
            verify(&forged, &record, at(5_000)),
            Err(TokenError::WrongSecret { .. })
        ));
    }

    #[test]
    fn malformed_tokens_are_rejected_without_echoing_secrets() {
        let secret = "f".repeat(64);
        for bad in [
            String::new(),
            "Bearer xyz".to_owned(),
            "gh_".to_owned(),
            format!("gh_{}", "a".repeat(24)),
            format!("gh_{}_{}", "a".repeat(23), secret),
            format!("gh_{}_{}", "a".repeat(24), &secret[..63]),
            format!("gh_{}_{}", "A".repeat(24), secret),
            format!("gh_{}_{}Z", "a".repeat(24), &secret[..63]),
        ] {
            let err = PresentedToken::parse(&bad).unwrap_err();
            assert!(matches!(err, TokenError::Malformed { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains(&secret[..63]), "{err}");
        }
    }

    #[test]
    fn secret_hash_round_trips_through_hex() {
        let issued = issue(None);
        let hash = &issued.record().secret_hash;
        assert_eq!(&SecretHash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert!(SecretHash::from_hex("abc").is_err());
    }
}
