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
//!
//! The cookie's credential (generation, format, hash, constant-time comparison) is
//! `crate::credential`'s, shared with API tokens; only its lack of a prefix is chosen here.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::credential::{self, SecretCredential, SecretHash};
use crate::identity::AuthMethod;

/// Session cookies carry no prefix: the cookie name already says what they are.
const COOKIE_PREFIX: &str = "";
const CSRF_LABEL: &[u8] = b"gatehouse csrf v1\0";

/// The public part of a session cookie; the key of its record (24 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// Parses 24 lowercase hex digits.
    pub fn parse(input: &str) -> Result<Self, SessionError> {
        if credential::is_id(input) {
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
        let credential = SecretCredential::generate(COOKIE_PREFIX)
            .map_err(|e| SessionError::CannotStart(e.to_string()))?;
        let record = SessionRecord {
            id: SessionId(credential.id().to_owned()),
            secret_hash: credential.digest(),
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
            csrf_token: csrf_token_for(&credential),
            record,
            cookie_value: credential.encode(),
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
#[derive(Debug)]
pub struct PresentedSession {
    id: SessionId,
    credential: SecretCredential,
}

impl PresentedSession {
    /// Parses `<24 hex id>_<64 hex secret>`. Errors never echo the secret.
    pub fn parse(value: &str) -> Result<Self, SessionError> {
        let credential =
            SecretCredential::parse(COOKIE_PREFIX, value).map_err(|_| SessionError::Malformed)?;
        Ok(Self {
            id: SessionId(credential.id().to_owned()),
            credential,
        })
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The CSRF token bound to this session.
    pub fn csrf_token(&self) -> String {
        csrf_token_for(&self.credential)
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
    if !presented
        .credential
        .verify(record.id.as_str(), &record.secret_hash)
    {
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

fn csrf_token_for(credential: &SecretCredential) -> String {
    hex::encode(credential.derive(CSRF_LABEL))
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

    /// Sessions already established keep working: this literal cookie, stored hash (SHA-256 of
    /// the secret's bytes) and CSRF token (SHA-256 of the label and the secret) are the format.
    #[test]
    fn existing_sessions_keep_verifying() {
        let cookie = "0123456789abcdef01234567_\
                      000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let record = SessionRecord {
            id: SessionId::parse("0123456789abcdef01234567").unwrap(),
            secret_hash: SecretHash::from_hex(
                "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd",
            )
            .unwrap(),
            principal: "alice".into(),
            established_by: AuthMethod::Password,
            created_at: at(10_000),
            last_seen_at: at(10_000),
            expires_at: at(11_000),
            ended_at: None,
        };
        let presented = PresentedSession::parse(cookie).unwrap();
        verify(&presented, &record, at(10_050), &policy()).unwrap();
        assert_eq!(
            presented.csrf_token(),
            "2ea68647738da971a911c145f5b0581c02383409e267310213d4a5408a7e74da"
        );
        assert!(
            presented
                .csrf_matches(" 2ea68647738da971a911c145f5b0581c02383409e267310213d4a5408a7e74da ")
        );
        assert!(PresentedSession::parse(&format!("gh_{cookie}")).is_err());
    }

    #[test]
    fn new_session_has_the_cookie_format() {
        let s = start();
        let (id, secret) = s.cookie_value().split_once('_').unwrap();
        assert_eq!(id, s.record().id.as_str());
        assert_eq!(id.len(), 24);
        assert_eq!(secret.len(), 64);
        assert!(
            secret
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
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
