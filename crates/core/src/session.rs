//! Browser sessions: the cookie credential of the web UI, and its CSRF token.
//!
//! A session cookie carries `<id>_<secret>`: a public 96-bit id to find the record and a
//! 256-bit random secret of which only the SHA-256 is stored (a leaked database yields no
//! usable session). A session ends at the first of: its idle timeout (no request for that
//! long), its absolute timeout (counted from sign-in, however active it is), logout, or its
//! person being disabled.
//!
//! The CSRF token is a synchronizer token bound to the session: SHA-256 over a domain label and
//! the session secret. The server recomputes it from the cookie on every state-changing request
//! and compares it in constant time with `X-CSRF-Token`, so it needs no storage, differs for
//! every session (a token from another session is refused), and a page that cannot read the
//! HttpOnly cookie cannot derive it. Time is always a parameter; this module reads no clock.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::identity::{AuthMethod, SecretHash};
use crate::random::{self, RandomnessError};

const ID_BYTES: usize = 12;
const SECRET_BYTES: usize = 32;
const CSRF_LABEL: &[u8] = b"gatehouse csrf v1\0";

/// The public part of a session cookie; the key of its record (24 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// Parses 24 lowercase hex digits.
    pub fn parse(input: &str) -> Result<Self, SessionError> {
        if input.len() == ID_BYTES * 2 && is_lower_hex(input) {
            Ok(Self(input.to_owned()))
        } else {
            Err(SessionError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SessionId {
    type Error = SessionError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SessionId> for String {
    fn from(value: SessionId) -> Self {
        value.0
    }
}

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session with no request for this long has ended.
    pub idle_timeout: SignedDuration,
    /// A session ends this long after sign-in, however active it is.
    pub absolute_timeout: SignedDuration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: SignedDuration::from_mins(30),
            absolute_timeout: SignedDuration::from_hours(12),
        }
    }
}

impl SessionPolicy {
    /// How often the last-seen time is written: often enough that the idle timeout is accurate
    /// to a fraction of itself, rarely enough that reads do not each cost a write.
    pub fn touch_resolution(&self) -> SignedDuration {
        let quarter = self.idle_timeout / 4;
        quarter.min(SignedDuration::from_secs(60))
    }
}

/// The stored form of a session (no secret, only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: SessionId,
    pub secret_hash: SecretHash,
    /// The principal (a local person's id) the session acts as.
    pub principal: String,
    /// How the person proved its identity when the session was established.
    pub established_by: AuthMethod,
    pub created_at: Timestamp,
    /// Last request seen (written at most every [`SessionPolicy::touch_resolution`]).
    pub last_seen_at: Timestamp,
    /// The absolute end of the session.
    pub expires_at: Timestamp,
    /// Set by logout or by disabling the person.
    pub ended_at: Option<Timestamp>,
}

impl SessionRecord {
    /// When the session ends by inactivity if no further request comes.
    pub fn idle_expires_at(&self, policy: &SessionPolicy) -> Timestamp {
        self.last_seen_at
            .saturating_add(policy.idle_timeout)
            .unwrap_or(Timestamp::MAX)
            .min(self.expires_at)
    }
}

/// A freshly established session: the record to store and the cookie value to send once.
pub struct NewSession {
    record: SessionRecord,
    cookie_value: Zeroizing<String>,
    csrf_token: String,
}

impl NewSession {
    /// Starts a session for `principal` at `now` with a 256-bit random secret.
    pub fn generate(
        principal: &str,
        established_by: AuthMethod,
        now: Timestamp,
        policy: &SessionPolicy,
    ) -> Result<Self, SessionError> {
        let unavailable = |e: RandomnessError| SessionError::CannotStart(e.to_string());
        let mut id = [0u8; ID_BYTES];
        random::fill(&mut id).map_err(unavailable)?;
        let id = SessionId(hex::encode(id));
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        random::fill(secret.as_mut()).map_err(unavailable)?;
        let secret_hash = SecretHash::from_hex(&hex::encode(hash_bytes(secret.as_ref())))
            .map_err(|e| SessionError::CannotStart(e.to_string()))?;
        let cookie_value = Zeroizing::new(format!("{id}_{}", hex::encode(secret.as_ref())));
        let record = SessionRecord {
            id,
            secret_hash,
            principal: principal.to_owned(),
            established_by,
            created_at: now,
            last_seen_at: now,
            expires_at: now
                .saturating_add(policy.absolute_timeout)
                .unwrap_or(Timestamp::MAX),
            ended_at: None,
        };
        Ok(Self {
            csrf_token: csrf_token_for(secret.as_ref()),
            record,
            cookie_value,
        })
    }

    pub fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// The cookie value `<id>_<secret>`, to send in `Set-Cookie` once.
    pub fn cookie_value(&self) -> &str {
        &self.cookie_value
    }

    /// The CSRF token of this session.
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("record", &self.record)
            .field("cookie_value", &"<redacted>")
            .finish()
    }
}

/// A session cookie value as presented by a browser.
pub struct PresentedSession {
    id: SessionId,
    secret: Zeroizing<[u8; SECRET_BYTES]>,
}

impl PresentedSession {
    /// Parses `<24 hex id>_<64 hex secret>`. Errors never echo the secret.
    pub fn parse(value: &str) -> Result<Self, SessionError> {
        let (id, secret_hex) = value.split_once('_').ok_or(SessionError::Malformed)?;
        let id = SessionId::parse(id)?;
        if secret_hex.len() != SECRET_BYTES * 2 || !is_lower_hex(secret_hex) {
            return Err(SessionError::Malformed);
        }
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        hex::decode_to_slice(secret_hex, secret.as_mut()).map_err(|_| SessionError::Malformed)?;
        Ok(Self { id, secret })
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The CSRF token bound to this session.
    pub fn csrf_token(&self) -> String {
        csrf_token_for(self.secret.as_ref())
    }

    /// Whether `presented` (the `X-CSRF-Token` header) is this session's CSRF token, compared
    /// in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let expected = self.csrf_token();
        expected
            .as_bytes()
            .ct_eq(presented.trim().as_bytes())
            .into()
    }
}

impl fmt::Debug for PresentedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedSession")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a presented session is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("malformed session cookie")]
    Malformed,
    #[error("session {id} is not valid")]
    WrongSecret { id: SessionId },
    #[error("session {id} ended at {at} (signed out)")]
    Ended { id: SessionId, at: Timestamp },
    #[error("session {id} expired at {at} (absolute timeout)")]
    Expired { id: SessionId, at: Timestamp },
    #[error("session {id} expired at {at} (idle timeout)")]
    Idle { id: SessionId, at: Timestamp },
    #[error("cannot start a session: {0}")]
    CannotStart(String),
}

/// Checks a presented session against its record at `now`: the secret first, in constant time
/// (so an ended or expired session is only reported to whoever holds its secret), then logout,
/// the absolute timeout and the idle timeout.
pub fn verify(
    presented: &PresentedSession,
    record: &SessionRecord,
    now: Timestamp,
    policy: &SessionPolicy,
) -> Result<(), SessionError> {
    let hash = hash_bytes(presented.secret.as_ref());
    let id_matches = presented.id == record.id;
    let secret_matches: bool = hash.ct_eq(record.secret_hash.as_bytes()).into();
    if !(id_matches && secret_matches) {
        return Err(SessionError::WrongSecret {
            id: presented.id.clone(),
        });
    }
    if let Some(at) = record.ended_at.filter(|at| *at <= now) {
        return Err(SessionError::Ended {
            id: record.id.clone(),
            at,
        });
    }
    if record.expires_at <= now {
        return Err(SessionError::Expired {
            id: record.id.clone(),
            at: record.expires_at,
        });
    }
    let idle_at = record.idle_expires_at(policy);
    if idle_at <= now {
        return Err(SessionError::Idle {
            id: record.id.clone(),
            at: idle_at,
        });
    }
    Ok(())
}

fn hash_bytes(secret: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(secret).into()
}

fn csrf_token_for(secret: &[u8]) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(CSRF_LABEL);
    hasher.update(secret);
    let digest: [u8; 32] = hasher.finalize().into();
    hex::encode(digest)
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

    fn policy() -> SessionPolicy {
        SessionPolicy {
            idle_timeout: SignedDuration::from_secs(100),
            absolute_timeout: SignedDuration::from_secs(1000),
        }
    }

    fn start() -> NewSession {
        NewSession::generate("alice", AuthMethod::Password, at(10_000), &policy()).unwrap()
    }

    #[test]
    fn new_session_verifies_and_stores_only_a_hash() {
        let s = start();
        let presented = PresentedSession::parse(s.cookie_value()).unwrap();
        verify(&presented, s.record(), at(10_050), &policy()).unwrap();
        let secret = s.cookie_value().split('_').nth(1).unwrap();
        assert_eq!(secret.len(), 64);
        assert!(!serde_json::to_string(s.record()).unwrap().contains(secret));
        assert!(!format!("{s:?} {presented:?}").contains(secret));
        assert_eq!(s.record().expires_at, at(11_000));
    }

    #[test]
    fn idle_and_absolute_timeouts_end_the_session() {
        let s = start();
        let presented = PresentedSession::parse(s.cookie_value()).unwrap();
        assert!(matches!(
            verify(&presented, s.record(), at(10_100), &policy()),
            Err(SessionError::Idle { .. })
        ));
        let mut active = s.record().clone();
        active.last_seen_at = at(10_950);
        verify(&presented, &active, at(10_999), &policy()).unwrap();
        assert!(matches!(
            verify(&presented, &active, at(11_000), &policy()),
            Err(SessionError::Expired { .. })
        ));
        assert_eq!(active.idle_expires_at(&policy()), at(11_000));
    }

    #[test]
    fn ended_session_is_refused() {
        let s = start();
        let presented = PresentedSession::parse(s.cookie_value()).unwrap();
        let mut ended = s.record().clone();
        ended.ended_at = Some(at(10_010));
        assert!(matches!(
            verify(&presented, &ended, at(10_011), &policy()),
            Err(SessionError::Ended { .. })
        ));
    }

    #[test]
    fn wrong_secret_or_other_session_is_refused_before_anything_else() {
        let a = start();
        let b = start();
        let presented_b = PresentedSession::parse(b.cookie_value()).unwrap();
        assert!(matches!(
            verify(&presented_b, a.record(), at(10_001), &policy()),
            Err(SessionError::WrongSecret { .. })
        ));
        // Same id, another secret, on an ended record: still only "not valid".
        let forged = format!(
            "{}_{}",
            a.record().id,
            b.cookie_value().split('_').nth(1).unwrap()
        );
        let mut ended = a.record().clone();
        ended.ended_at = Some(at(10_000));
        assert!(matches!(
            verify(
                &PresentedSession::parse(&forged).unwrap(),
                &ended,
                at(10_001),
                &policy()
            ),
            Err(SessionError::WrongSecret { .. })
        ));
    }

    #[test]
    fn csrf_token_is_bound_to_its_session() {
        let a = start();
        let b = start();
        let pa = PresentedSession::parse(a.cookie_value()).unwrap();
        let pb = PresentedSession::parse(b.cookie_value()).unwrap();
        assert_eq!(pa.csrf_token(), a.csrf_token());
        assert!(pa.csrf_matches(a.csrf_token()));
        assert!(!pa.csrf_matches(b.csrf_token()));
        assert!(!pb.csrf_matches(a.csrf_token()));
        assert!(!pa.csrf_matches(""));
        // The token is not the cookie secret.
        assert!(!a.cookie_value().contains(a.csrf_token()));
    }

    #[test]
    fn malformed_cookies_are_refused() {
        for bad in [
            "",
            "abc",
            "_",
            &format!("{}_{}", "a".repeat(24), "b".repeat(63)),
            &format!("{}_{}", "A".repeat(24), "b".repeat(64)),
            &format!("{}{}", "a".repeat(24), "b".repeat(64)),
        ] {
            assert!(PresentedSession::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn touch_resolution_is_a_fraction_of_the_idle_timeout() {
        assert_eq!(policy().touch_resolution(), SignedDuration::from_secs(25));
        assert_eq!(
            SessionPolicy::default().touch_resolution(),
            SignedDuration::from_secs(60)
        );
    }
}
