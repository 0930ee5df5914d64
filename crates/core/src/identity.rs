//! Who is calling: principals, and API tokens that prove a principal's identity.
//!
//! An API token is shown to its owner once, as `gh_<id>_<secret>`. Only the SHA-256 of the
//! 256-bit secret is stored, so a leaked database does not leak usable tokens; the public `id`
//! part lets the server find the record without scanning. [`verify`] compares hashes in constant
//! time and refuses revoked and expired tokens, taking the current time as a parameter. The
//! credential itself (generation, format, hash, comparison) is `crate::credential`'s, shared
//! with browser sessions.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crate::credential::SecretHash;
use crate::credential::{self, Malformed, SecretCredential};
use crate::random::RandomnessError;
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

/// What tells an API token from other bearer credentials (OIDC JWTs) at a glance.
const TOKEN_PREFIX: &str = "gh_";

/// The public, non-secret part of an API token; the key its record is stored under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(String);

impl TokenId {
    /// Parses a token id: 24 lowercase hex digits.
    pub fn parse(input: &str) -> Result<Self, TokenError> {
        if credential::is_id(input) {
            Ok(Self(input.to_owned()))
        } else {
            Err(malformed_id(input))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn malformed_id(input: &str) -> TokenError {
    TokenError::Malformed {
        reason: format!(
            "token id `{}` is not {} lowercase hex digits",
            truncate_for_message(input),
            credential::ID_BYTES * 2
        ),
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
        let credential = SecretCredential::generate(TOKEN_PREFIX)?;
        let record = ApiTokenRecord {
            id: TokenId(credential.id().to_owned()),
            secret_hash: credential.digest(),
            roles,
            principal: principal.to_owned(),
            created_at,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        Ok(Self {
            record,
            token: credential.encode(),
        })
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
#[derive(Debug)]
pub struct PresentedToken {
    id: TokenId,
    credential: SecretCredential,
}

impl PresentedToken {
    /// Parses `gh_<24 hex id>_<64 hex secret>`. Errors never echo the secret.
    pub fn parse(presented: &str) -> Result<Self, TokenError> {
        let malformed = |reason: &str| TokenError::Malformed {
            reason: reason.to_owned(),
        };
        let credential = SecretCredential::parse(TOKEN_PREFIX, presented).map_err(|e| match e {
            Malformed::Prefix => malformed("an API token starts with `gh_`"),
            Malformed::Shape => malformed("an API token has the form gh_<id>_<secret>"),
            Malformed::Id(id) => malformed_id(id),
            Malformed::Secret => {
                malformed("the secret part of an API token is 64 lowercase hex digits")
            }
        })?;
        Ok(Self {
            id: TokenId(credential.id().to_owned()),
            credential,
        })
    }

    /// The id to look the token's record up by.
    pub fn id(&self) -> &TokenId {
        &self.id
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
    if !presented
        .credential
        .verify(record.id.as_str(), &record.secret_hash)
    {
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

    /// Tokens already issued keep working: this literal token and stored hash (SHA-256 of
    /// the secret's bytes, not of its hex) are the wire and storage format.
    #[test]
    fn existing_tokens_keep_verifying() {
        let token = "gh_0123456789abcdef01234567_\
                     000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let record = ApiTokenRecord {
            id: TokenId::parse("0123456789abcdef01234567").unwrap(),
            secret_hash: SecretHash::from_hex(
                "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd",
            )
            .unwrap(),
            roles: vec!["submitter".into()],
            principal: "alice".into(),
            created_at: at(1_000),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        };
        verify(token, &record, at(2_000)).unwrap();
        assert_eq!(
            PresentedToken::parse(token).unwrap().id().as_str(),
            "0123456789abcdef01234567"
        );
        assert_eq!(
            serde_json::to_value(&record.secret_hash).unwrap(),
            "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
        );
    }

    #[test]
    fn malformed_token_reasons_name_the_part() {
        let secret = "f".repeat(64);
        let reason = |token: &str| PresentedToken::parse(token).unwrap_err().to_string();
        assert_eq!(
            reason("xx_abc"),
            "malformed API token: an API token starts with `gh_`"
        );
        assert_eq!(
            reason("gh_abc"),
            "malformed API token: an API token has the form gh_<id>_<secret>"
        );
        assert_eq!(
            reason(&format!("gh_abc_{secret}")),
            "malformed API token: token id `abc` is not 24 lowercase hex digits"
        );
        assert_eq!(
            reason(&format!("gh_{}_{}", "a".repeat(24), "F".repeat(64))),
            "malformed API token: the secret part of an API token is 64 lowercase hex digits"
        );
    }
}
