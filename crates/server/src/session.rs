//! Browser sessions: the session cookie as a credential, and the CSRF guard.
//!
//! The web UI cannot hold an API token safely in page script, so a person signs in once
//! (`POST /api/v1/session`) and the browser carries an HttpOnly, SameSite=Strict cookie
//! (`Secure` under TLS, then also named with the `__Host-` prefix so no subdomain can set it).
//! [`authenticate_cookie`] turns that cookie into a principal for the [`Authenticated`]
//! extractor when a request has no `Authorization` header; the session logic itself (secret
//! hashing, timeouts, the CSRF token) is in `gatehouse_core::session`.
//!
//! Cookies are sent by the browser automatically, so a state-changing request that
//! authenticates by cookie must also prove it comes from gatehouse's own page: [`csrf_guard`]
//! requires `X-CSRF-Token` to equal the session's synchronizer token (compared in constant
//! time). Requests with a bearer token are not sent automatically by browsers and need none.
//!
//! [`Authenticated`]: crate::auth::Authenticated

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::identity::{AuthMethod, Principal};
use gatehouse_core::identity_store::IdentityStore;
use gatehouse_core::session::{self, PresentedSession, SessionPolicy, SessionRecord};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::audit;
use crate::error::ApiError;
use crate::ratelimit::{RateLimitConfig, RateLimits};
use crate::state::AppState;

/// Name of the session cookie without TLS.
pub const COOKIE_NAME: &str = "gatehouse_session";
/// Name of the session cookie under TLS: the `__Host-` prefix makes browsers refuse it unless
/// it is `Secure`, has `Path=/` and no `Domain`, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE_NAME: &str = "__Host-gatehouse_session";
/// Header carrying the CSRF token on state-changing cookie requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How session cookies are written: `Secure` when the server terminates TLS itself
/// (`ServerConfig::tls`) or runs behind a TLS proxy (`IdentityConfig::secure_cookies`).
/// [`csrf_guard`] puts it in every request's extensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CookiePolicy {
    /// Mark cookies `Secure` (the server runs under TLS).
    pub secure: bool,
}

impl CookiePolicy {
    pub fn name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE_NAME
        } else {
            COOKIE_NAME
        }
    }

    /// `Set-Cookie` value establishing a session that lasts `max_age`.
    pub fn set_cookie(&self, value: &str, max_age: SignedDuration) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            self.name(),
            max_age.as_secs().max(0),
            if self.secure { "; Secure" } else { "" }
        ))
    }

    /// `Set-Cookie` value removing the session cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
            self.name(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The cookie policy the router attached to this request (insecure default otherwise).
    pub fn of(parts: &Parts) -> Self {
        parts.extensions.get::<Self>().copied().unwrap_or_default()
    }
}

/// Session and sign-in settings of one server.
#[derive(Debug, Clone, Default)]
pub struct IdentityConfig {
    pub sessions: SessionPolicy,
    pub rate_limits: RateLimitConfig,
    /// Argon2id verifications allowed at once (each takes 19 MiB for a moment); 0 means 4.
    pub max_concurrent_password_checks: usize,
    /// Mark session cookies `Secure` even without TLS in this process (a TLS-terminating
    /// reverse proxy in front).
    pub secure_cookies: bool,
}

/// Local people, sessions and sign-in limits, attached to the server by the binary.
pub struct Identity {
    store: Arc<dyn IdentityStore>,
    config: IdentityConfig,
    limits: RateLimits,
    password_checks: Semaphore,
    last_purge: Mutex<Option<Timestamp>>,
}

/// Sessions that ended or expired are deleted at most this often (on a successful sign-in).
const PURGE_INTERVAL: SignedDuration = SignedDuration::from_mins(10);

impl Identity {
    pub fn new(store: Arc<dyn IdentityStore>, config: IdentityConfig) -> Self {
        let permits = if config.max_concurrent_password_checks == 0 {
            4
        } else {
            config.max_concurrent_password_checks
        };
        Self {
            limits: RateLimits::new(&config.rate_limits),
            password_checks: Semaphore::new(permits),
            store,
            config,
            last_purge: Mutex::new(None),
        }
    }

    pub fn store(&self) -> &dyn IdentityStore {
        self.store.as_ref()
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.config.sessions
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    pub(crate) fn password_checks(&self) -> &Semaphore {
        &self.password_checks
    }

    /// Whether expired sessions are due to be purged at `now` (and marks the purge as done).
    pub(crate) fn purge_due(&self, now: Timestamp) -> bool {
        let mut last = self
            .last_purge
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = last.is_none_or(|at| now.duration_since(at) >= PURGE_INTERVAL);
        if due {
            *last = Some(now);
        }
        due
    }
}

/// The session cookie of the request, if it carries one under the configured name.
pub fn session_cookie(headers: &HeaderMap, policy: CookiePolicy) -> Option<String> {
    cookie(headers, policy.name()).map(|v| v.trim().to_owned())
}

/// The value of the first cookie named exactly `name` among the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Authenticates a request by its session cookie. `None` when the request carries no session
/// cookie (the caller then reports "no credential"); `Some(Err(reason))` when it carries one
/// that is not valid.
pub async fn authenticate_cookie(
    parts: &Parts,
    state: &AppState,
) -> Option<Result<Principal, String>> {
    let cookie = session_cookie(&parts.headers, CookiePolicy::of(parts))?;
    Some(
        resolve(state, &cookie)
            .await
            .map(|(principal, _, _)| principal),
    )
}

/// The principal, the presented session and its record, for a cookie value.
pub(crate) async fn resolve(
    state: &AppState,
    cookie: &str,
) -> Result<(Principal, PresentedSession, SessionRecord), String> {
    let identity = state
        .identity()
        .ok_or_else(|| "browser sessions are not enabled on this server".to_owned())?;
    let presented = PresentedSession::parse(cookie).map_err(|e| e.to_string())?;
    let record = identity
        .store()
        .find_session(presented.id())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot look up a session");
            "the credential could not be checked (store unavailable)".to_owned()
        })?
        .ok_or_else(|| format!("session {} is not valid", presented.id()))?;
    let now = state.clock().now();
    let policy = identity.policy();
    session::verify(&presented, &record, now, policy).map_err(|e| e.to_string())?;
    let principal = principal_for(
        state,
        identity,
        &record.principal,
        record.established_by,
        now,
    )
    .await
    .map_err(|reason| format!("session {}: {reason}", record.id))?;

    if now.duration_since(record.last_seen_at) >= policy.touch_resolution()
        && let Err(err) = identity.store().touch_session(&record.id, now).await
    {
        // The idle timeout then counts from the previous write, a little early: fail safe.
        tracing::warn!(error = %err, session = %record.id, "cannot record session activity");
    }
    Ok((principal, presented, record))
}

/// The principal a local person acts as at `now`: refused when disabled or unknown; roles
/// and name from the pack `Person` with the same id when there is one.
pub(crate) async fn principal_for(
    state: &AppState,
    identity: &Identity,
    id: &str,
    established_by: AuthMethod,
    now: Timestamp,
) -> Result<Principal, String> {
    let user = identity.store().find_user(id).await.map_err(|e| {
        tracing::error!(error = %e, "cannot look up a person");
        "the credential could not be checked (store unavailable)".to_owned()
    })?;
    let pack = state.pack();
    let person = pack.pack.person(id);
    let pack_roles = person.map(|p| p.roles.iter().map(|r| r.value.clone()).collect::<Vec<_>>());
    let (roles, display) = match (&user, person) {
        (Some(user), _) if user.is_disabled(now) => {
            return Err(format!("{id} is disabled"));
        }
        (Some(user), person) => (
            user.effective_roles(pack_roles),
            person.map_or_else(|| user.display.clone(), |p| p.name.clone()),
        ),
        // A person the pack declares but who has no local record can only hold a session
        // established by their identity provider.
        (None, Some(person)) if established_by == AuthMethod::OidcPerson => {
            (pack_roles.unwrap_or_default(), person.name.clone())
        }
        (None, _) => return Err(format!("{id} is not a known person")),
    };
    Ok(Principal {
        id: id.to_owned(),
        display,
        roles,
        auth_method: AuthMethod::Session,
        service_scope: None,
    })
}

/// Whether a request to this path is the sign-in itself (which has no session yet, so no CSRF
/// token; the `Origin` check and SameSite=Strict guard it instead).
fn is_sign_in(method: &Method, path: &str) -> bool {
    method == Method::POST && path.trim_end_matches('/') == "/api/v1/session"
}

/// State of [`csrf_guard`]: the server state and whether the server terminates TLS itself.
#[derive(Clone)]
pub struct GuardState {
    state: AppState,
    tls: bool,
}

impl GuardState {
    pub fn new(state: &AppState, tls: bool) -> Self {
        Self {
            state: state.clone(),
            tls,
        }
    }
}

/// Middleware over the whole router: records the [`CookiePolicy`] in the request, then, under
/// `/api/v1`, requires a state-changing request authenticated by session cookie to carry the
/// session's CSRF token in `X-CSRF-Token`, and refuses a cross-origin sign-in. Missing or
/// wrong tokens are answered 403 and audited (`auth.csrf`).
pub async fn csrf_guard(
    State(GuardState { state, tls }): State<GuardState>,
    mut request: Request,
    next: Next,
) -> Response {
    let policy = CookiePolicy {
        secure: tls || state.identity().is_some_and(|i| i.config.secure_cookies),
    };
    request.extensions_mut().insert(policy);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        || !path.starts_with("/api/v1/")
    {
        return next.run(request).await;
    }
    let headers = request.headers();
    if is_sign_in(&method, &path) {
        if cross_origin(headers) {
            return refuse(&state, &method, &path, "cross-origin sign-in refused").await;
        }
        return next.run(request).await;
    }
    if headers.contains_key(AUTHORIZATION) {
        return next.run(request).await;
    }
    let Some(cookie) = session_cookie(headers, policy) else {
        return next.run(request).await;
    };
    let reason = match (
        PresentedSession::parse(&cookie),
        headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
    ) {
        (_, None) => "missing X-CSRF-Token header on a cookie-authenticated request",
        (Err(_), Some(_)) => "malformed session cookie",
        (Ok(session), Some(token)) if session.csrf_matches(token) => {
            return next.run(request).await;
        }
        (Ok(_), Some(_)) => "X-CSRF-Token does not belong to this session",
    };
    refuse(&state, &method, &path, reason).await
}

/// An `Origin` header naming another host than `Host` (browsers send `Origin` on POST).
fn cross_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    !origin_host.eq_ignore_ascii_case(host)
}

async fn refuse(state: &AppState, method: &Method, path: &str, reason: &str) -> Response {
    audit::append_or_log(
        state,
        audit::ANONYMOUS,
        "auth.csrf",
        &format!("route:{method} {path}"),
        AuditOutcome::Denied,
        json!({ "reason": reason }),
    )
    .await;
    tracing::info!(reason, path, "CSRF check refused a request");
    ApiError::Forbidden(format!("CSRF check failed: {reason}")).into_response()
}

/// Adds a `Set-Cookie` header to `response`.
pub(crate) fn with_cookie(mut response: Response, cookie: &str) -> Response {
    match HeaderValue::from_str(cookie) {
        Ok(value) => {
            response.headers_mut().append(SET_COOKIE, value);
        }
        Err(e) => tracing::error!(error = %e, "cannot build a Set-Cookie header"),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes_follow_the_policy() {
        let plain = CookiePolicy { secure: false };
        let set = plain.set_cookie("abc_def", SignedDuration::from_hours(12));
        assert_eq!(
            set.as_str(),
            "gatehouse_session=abc_def; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"
        );
        let secure = CookiePolicy { secure: true };
        let set = secure.set_cookie("abc_def", SignedDuration::from_secs(60));
        assert!(set.starts_with("__Host-gatehouse_session=abc_def; HttpOnly; SameSite=Strict"));
        assert!(set.ends_with("; Secure"));
        assert!(secure.clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn session_cookie_is_found_among_others_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("theme=dark; xgatehouse_session=no; gatehouse_session=abc"),
        );
        let plain = CookiePolicy::default();
        assert_eq!(session_cookie(&headers, plain).as_deref(), Some("abc"));
        // Under TLS only the __Host- cookie counts.
        assert_eq!(
            session_cookie(&headers, CookiePolicy { secure: true }),
            None
        );
    }

    #[test]
    fn cross_origin_compares_origin_host_with_host() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("gate.example:8080"));
        assert!(!cross_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("http://gate.example:8080"));
        assert!(!cross_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(cross_origin(&headers));
    }

    #[test]
    fn only_post_to_session_is_the_sign_in() {
        assert!(is_sign_in(&Method::POST, "/api/v1/session"));
        assert!(!is_sign_in(&Method::POST, "/api/v1/releases/x/session"));
        assert!(!is_sign_in(&Method::DELETE, "/api/v1/session"));
        assert!(!is_sign_in(&Method::POST, "/api/v1/tokens"));
    }
}
