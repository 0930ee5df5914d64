//! OpenID Connect: workload tokens as bearer credentials, and people signing in through their
//! identity provider (authorization code + PKCE).
//!
//! CI pipelines should not hold a long-lived gatehouse secret. Their platform (GitHub Actions,
//! GitLab, …) mints a short-lived JWT per job instead; the pack's `IdentityProvider` documents
//! name the issuers gatehouse trusts and map claims (`repository`, `ref`, …) to roles and to
//! the services the pipeline may act on. This module fetches each issuer's discovery document
//! and JWKS (bounded size, timeouts, no redirects, https except loopback), caches the keys per
//! issuer, refetches them on an unknown `kid` at most once per [`KID_REFETCH_INTERVAL`] (key
//! rotation works; a flood of made-up `kid`s does not hammer the issuer), and validates tokens.
//!
//! How long keys are cached is the issuer's call within bounds: the JWKS response's
//! `Cache-Control: max-age` (less its `Age`), clamped to [`MIN_KEYS_TTL`]..[`MAX_KEYS_TTL`], so
//! an issuer that rotates hourly is followed and one that says "a year" is still re-read daily;
//! `no-store`/`no-cache` give the minimum and no `max-age` gives [`DEFAULT_KEYS_TTL`]. When a
//! refresh fails, the last good keys stay in use for at most [`MAX_STALE`] past their expiry
//! (stale-if-error: an issuer outage must not lock pipelines out at once, but a key the issuer
//! may have revoked is not trusted indefinitely), and the refresh is retried at most once per
//! [`REFRESH_RETRY_INTERVAL`] meanwhile. Cache times are read from the server's `Clock`, like the
//! tokens' own `exp`, so tests move time instead of waiting.
//!
//! The signing algorithm is pinned by the *key* (its `kty`/`crv`/`alg`), never taken from the
//! token header: a token whose header says `none` or `HS256` is refused before any signature
//! check, which defeats the classic "HS256 signed with the RSA public key" confusion. `iss`,
//! `aud`, `exp`, `nbf` and `iat` are checked against the server's clock with the provider's
//! bounded skew.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::identity::{AuthMethod, Principal};
use gatehouse_pack::lint::is_secure_url;
use gatehouse_pack::model::{ClaimRule, IdentityProvider, JwtAlgorithm, OidcPrincipal};
use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq as _;
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use crate::audit;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// An unknown `kid` triggers a JWKS refetch at most this often per issuer.
pub const KID_REFETCH_INTERVAL: SignedDuration = SignedDuration::from_secs(30);
/// How long keys are fresh when the JWKS response has no `Cache-Control: max-age`. Keys are
/// refreshed when they expire even if every `kid` is known, so a rotation that retires a key is
/// picked up and revoked keys stop being trusted.
pub const DEFAULT_KEYS_TTL: SignedDuration = SignedDuration::from_hours(1);
/// The shortest freshness, also for `no-store`/`no-cache`: whatever the issuer says, its JWKS is
/// not fetched for every request.
pub const MIN_KEYS_TTL: SignedDuration = SignedDuration::from_secs(60);
/// The longest freshness, whatever `max-age` says.
pub const MAX_KEYS_TTL: SignedDuration = SignedDuration::from_hours(24);
/// Expired keys whose refresh fails stay in use this long past their expiry, no longer.
pub const MAX_STALE: SignedDuration = SignedDuration::from_hours(24);
/// While a refresh of expired keys keeps failing, it is retried at most this often (requests in
/// between are served from the stale keys without waiting for the issuer's timeout).
pub const REFRESH_RETRY_INTERVAL: SignedDuration = SignedDuration::from_secs(30);
/// Largest discovery, JWKS or token-endpoint response read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Largest JWT accepted (GitHub's are about 1.5 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Most keys kept from one JWKS.
const MAX_KEYS: usize = 64;
/// Fetches give up after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A sign-in must come back from the identity provider within this time.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Most sign-ins in flight at once (each holds a few hundred bytes until it returns).
const MAX_PENDING_LOGINS: usize = 10_000;
/// Upper bound on any provider's clock skew, whatever the pack says (lint refuses more).
const MAX_SKEW_SECONDS: i64 = 300;
/// Cookie binding a sign-in's `state` to the browser that started it.
const LOGIN_COOKIE: &str = "gatehouse_oidc_login";
const CLEAR_LOGIN_COOKIE: &str =
    "gatehouse_oidc_login=; HttpOnly; SameSite=Lax; Path=/api/v1/auth/oidc/; Max-Age=0";

/// Why an OIDC document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{0}` is not an https:// URL (plain http is accepted for loopback hosts only)")]
    Insecure(String),
    #[error("cannot reach {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} did not answer a valid document: {reason}")]
    Invalid { url: String, reason: String },
}

/// The discovery document fields gatehouse uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

/// One verification key, with the only algorithm it may verify.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: JwtAlgorithm,
    key: DecodingKey,
}

/// Cached discovery and keys of one issuer. Times are the server clock's.
#[derive(Default)]
struct IssuerState {
    discovery: Option<Discovery>,
    keys: Vec<Key>,
    /// When the keys were last fetched successfully; `None` until the first time.
    fetched_at: Option<Timestamp>,
    /// How long after `fetched_at` the keys are fresh (the JWKS response's, clamped).
    ttl: SignedDuration,
    /// The last failed refresh of expired keys, and why it failed (cleared by a success).
    refresh_failed_at: Option<Timestamp>,
    refresh_error: Option<String>,
    /// When an unknown `kid` last caused a refetch.
    kid_refetch_at: Option<Timestamp>,
}

impl IssuerState {
    /// Time since the keys were fetched; `None` before the first fetch. Negative when the clock
    /// was set back.
    fn age(&self, now: Timestamp) -> Option<SignedDuration> {
        self.fetched_at.map(|at| now.duration_since(at))
    }

    /// Fresh keys are used without asking the issuer. After the clock was set back nobody
    /// knows how old they are, so they are not fresh.
    fn is_fresh(&self, now: Timestamp) -> bool {
        self.age(now)
            .is_some_and(|age| !age.is_negative() && age < self.ttl)
    }

    /// Whether the keys may still be used when they cannot be refreshed.
    fn is_usable(&self, now: Timestamp) -> bool {
        self.age(now)
            .is_some_and(|age| age < self.ttl.saturating_add(MAX_STALE))
    }

    fn expires_at(&self) -> Option<Timestamp> {
        self.fetched_at
            .map(|at| at.saturating_add(self.ttl).unwrap_or(Timestamp::MAX))
    }
}

/// Whether at least `interval` has passed since `last` (or the clock was set back since).
fn elapsed(last: Option<Timestamp>, now: Timestamp, interval: SignedDuration) -> bool {
    last.is_none_or(|at| {
        let since = now.duration_since(at);
        since >= interval || since.is_negative()
    })
}

/// A sign-in waiting for the identity provider to redirect back.
struct PendingLogin {
    provider: String,
    nonce: String,
    verifier: Zeroizing<String>,
    started: Instant,
}

/// OIDC state of one server: an HTTP client, per-issuer key caches and pending sign-ins.
pub struct Oidc {
    http: reqwest::Client,
    /// Per issuer; the async mutex makes concurrent cold requests share one fetch.
    issuers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<IssuerState>>>>,
    logins: Mutex<HashMap<String, PendingLogin>>,
}

impl Default for Oidc {
    fn default() -> Self {
        Self::new()
    }
}

impl Oidc {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect could lead from https to anywhere; issuers answer directly.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot configure the OIDC HTTP client; using defaults");
                reqwest::Client::new()
            });
        Self {
            http,
            issuers: Mutex::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
        }
    }

    fn issuer_state(&self, issuer: &str) -> Arc<tokio::sync::Mutex<IssuerState>> {
        let mut issuers = self
            .issuers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(issuers.entry(issuer.to_owned()).or_default())
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, FetchError> {
        if !is_secure_url(url) {
            return Err(FetchError::Insecure(url.to_owned()));
        }
        self.http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Transport {
                url: url.to_owned(),
                reason: e.to_string(),
            })
    }

    async fn discover(&self, provider: &IdentityProvider) -> Result<Discovery, FetchError> {
        let issuer = provider.issuer.value.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let value = read_json(&url, self.get(&url).await?).await?;
        let discovery: Discovery =
            serde_json::from_value(value).map_err(|e| FetchError::Invalid {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        // OpenID Connect Discovery §4.3: the document must name exactly the issuer asked for,
        // or a compromised host could vouch for another issuer's tokens.
        if discovery.issuer != provider.issuer.value {
            return Err(FetchError::Invalid {
                url,
                reason: format!(
                    "it names issuer `{}`, not `{}`",
                    discovery.issuer, provider.issuer.value
                ),
            });
        }
        Ok(discovery)
    }

    /// Fetches discovery (when needed) and the JWKS into `cache`, at `now`. On failure the
    /// cached keys are left as they were.
    async fn refresh(
        &self,
        provider: &IdentityProvider,
        cache: &mut IssuerState,
        now: Timestamp,
    ) -> Result<(), FetchError> {
        let needs_discovery = provider.jwks_uri.is_none()
            || (provider.principal == OidcPrincipal::Person && cache.discovery.is_none());
        if needs_discovery {
            cache.discovery = Some(self.discover(provider).await?);
        }
        let jwks_uri = match (&provider.jwks_uri, &cache.discovery) {
            (Some(uri), _) => uri.value.clone(),
            (
                None,
                Some(Discovery {
                    jwks_uri: Some(uri),
                    ..
                }),
            ) => uri.clone(),
            (None, _) => {
                return Err(FetchError::Invalid {
                    url: provider.issuer.value.clone(),
                    reason: "the discovery document has no `jwks_uri`".into(),
                });
            }
        };
        let response = self.get(&jwks_uri).await?;
        let ttl = keys_ttl(response.headers());
        let jwks = read_json(&jwks_uri, response).await?;
        cache.keys = parse_jwks(&jwks).map_err(|reason| FetchError::Invalid {
            url: jwks_uri.clone(),
            reason,
        })?;
        cache.fetched_at = Some(now);
        cache.ttl = ttl;
        cache.refresh_failed_at = None;
        cache.refresh_error = None;
        tracing::info!(
            issuer = %provider.issuer.value,
            keys = cache.keys.len(),
            ttl_secs = ttl.as_secs(),
            "fetched OIDC signing keys"
        );
        Ok(())
    }

    /// Makes `cache` hold keys usable at `now`: fresh keys as they are; expired keys refreshed,
    /// or, when the refresh fails, kept for at most [`MAX_STALE`] past their expiry with a new
    /// attempt at most once per [`REFRESH_RETRY_INTERVAL`]. Before the first successful fetch
    /// every call tries, and fails with the reason.
    async fn ensure_keys(
        &self,
        provider: &IdentityProvider,
        cache: &mut IssuerState,
        now: Timestamp,
    ) -> Result<(), String> {
        let issuer = provider.issuer.value.as_str();
        if cache.is_fresh(now) {
            return Ok(());
        }
        if cache.fetched_at.is_none()
            || elapsed(cache.refresh_failed_at, now, REFRESH_RETRY_INTERVAL)
        {
            match self.refresh(provider, cache, now).await {
                Ok(()) => return Ok(()),
                Err(e) if cache.fetched_at.is_none() => {
                    tracing::warn!(error = %e, issuer, "cannot fetch OIDC signing keys");
                    return Err(format!(
                        "the signing keys of issuer {issuer} cannot be fetched: {e}"
                    ));
                }
                Err(e) => {
                    cache.refresh_failed_at = Some(now);
                    cache.refresh_error = Some(e.to_string());
                    if cache.is_usable(now) {
                        // An issuer outage must not lock pipelines out at once.
                        tracing::warn!(error = %e, issuer, "cannot refresh OIDC signing keys; using the expired keys");
                    }
                }
            }
        }
        if cache.is_usable(now) {
            return Ok(());
        }
        tracing::warn!(
            issuer,
            "OIDC signing keys expired beyond the stale bound; refusing tokens"
        );
        Err(format!(
            "the signing keys of issuer {issuer} expired at {} and cannot be refreshed ({}); \
             expired keys are used for at most {}s",
            cache
                .expires_at()
                .map_or_else(|| "?".to_owned(), |at| at.to_string()),
            cache.refresh_error.as_deref().unwrap_or("no attempt yet"),
            MAX_STALE.as_secs()
        ))
    }

    /// The key to verify a token with `kid` (and header `alg`), refetching on an unknown kid
    /// at most once per [`KID_REFETCH_INTERVAL`].
    async fn key_for(
        &self,
        provider: &IdentityProvider,
        kid: Option<&str>,
        alg: JwtAlgorithm,
        now: Timestamp,
    ) -> Result<Key, String> {
        let issuer = provider.issuer.value.as_str();
        let cache = self.issuer_state(issuer);
        let mut cache = cache.lock().await;
        self.ensure_keys(provider, &mut cache, now).await?;
        if let Some(key) = find_key(&cache.keys, kid, alg)? {
            return Ok(key);
        }
        let Some(kid) = kid else {
            return Err(format!(
                "no {} key of issuer {issuer} fits this token (and it names no `kid`)",
                alg.as_str()
            ));
        };
        let may_refetch = elapsed(cache.kid_refetch_at, now, KID_REFETCH_INTERVAL);
        if may_refetch {
            cache.kid_refetch_at = Some(now);
            tracing::info!(issuer, kid, "unknown kid: refetching the issuer's keys");
            if let Err(e) = self.refresh(provider, &mut cache, now).await {
                tracing::warn!(error = %e, issuer, "cannot refetch OIDC signing keys");
            }
            if let Some(key) = find_key(&cache.keys, Some(kid), alg)? {
                return Ok(key);
            }
        }
        Err(format!(
            "unknown signing key `{}` for issuer {issuer}{}",
            truncate(kid),
            if may_refetch {
                " (not in its current JWKS)"
            } else {
                " (keys were refetched less than 30s ago)"
            }
        ))
    }

    /// The discovery document of `provider` (cached with its keys, and as long).
    async fn discovery_of(
        &self,
        provider: &IdentityProvider,
        now: Timestamp,
    ) -> Result<Discovery, String> {
        let cache = self.issuer_state(&provider.issuer.value);
        let mut cache = cache.lock().await;
        self.ensure_keys(provider, &mut cache, now).await?;
        cache
            .discovery
            .clone()
            .ok_or_else(|| "the issuer has no discovery document".to_owned())
    }
}

async fn read_json(url: &str, mut response: reqwest::Response) -> Result<Value, FetchError> {
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Transport {
        url: url.to_owned(),
        reason: e.to_string(),
    })? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| FetchError::Invalid {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// How long a JWKS response's keys are fresh: its `Cache-Control: max-age` less its `Age`
/// (RFC 9111), clamped to [`MIN_KEYS_TTL`]..[`MAX_KEYS_TTL`]. `no-store` or `no-cache`, and a
/// `max-age` that is not a number, give the minimum (RFC 9111 §4.2.1: invalid freshness means
/// stale; conflicting directives, the most restrictive); several `max-age`s, the smallest; no
/// `max-age`, [`DEFAULT_KEYS_TTL`]. `Expires` is not read.
fn keys_ttl(headers: &reqwest::header::HeaderMap) -> SignedDuration {
    let mut max_age: Option<u64> = None;
    let mut restrictive = false;
    for value in headers.get_all(reqwest::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            restrictive = true;
            continue;
        };
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                restrictive = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                match argument.and_then(delta_seconds) {
                    Some(secs) => max_age = Some(max_age.map_or(secs, |m| m.min(secs))),
                    None => restrictive = true,
                }
            }
        }
    }
    if restrictive {
        return MIN_KEYS_TTL;
    }
    let Some(max_age) = max_age else {
        return DEFAULT_KEYS_TTL;
    };
    let age = headers
        .get(reqwest::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| delta_seconds(v.trim()))
        .unwrap_or(0);
    let remaining = i64::try_from(max_age.saturating_sub(age)).unwrap_or(i64::MAX);
    SignedDuration::from_secs(remaining).clamp(MIN_KEYS_TTL, MAX_KEYS_TTL)
}

/// An RFC 9111 delta-seconds: digits only; too large a number saturates.
fn delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// The usable keys of a JWKS. Keys of other types (symmetric `oct` keys above all), other
/// curves, encryption keys and RSA keys under 2048 bits are skipped, never trusted.
fn parse_jwks(jwks: &Value) -> Result<Vec<Key>, String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no `keys` array")?;
    let mut out = Vec::new();
    for jwk in keys.iter().take(MAX_KEYS) {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        if text("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let declared = text("alg");
        let parsed = match (text("kty"), text("crv")) {
            (Some("RSA"), _) if declared.is_none_or(|a| a == "RS256") => {
                match (text("n"), text("e")) {
                    (Some(n), Some(e))
                        if URL_SAFE_NO_PAD
                            .decode(n)
                            .is_ok_and(|m| m.iter().skip_while(|b| **b == 0).count() >= 256) =>
                    {
                        DecodingKey::from_rsa_components(n, e)
                            .ok()
                            .map(|k| (JwtAlgorithm::RS256, k))
                    }
                    _ => None,
                }
            }
            (Some("EC"), Some("P-256")) if declared.is_none_or(|a| a == "ES256") => {
                match (text("x"), text("y")) {
                    (Some(x), Some(y)) => DecodingKey::from_ec_components(x, y)
                        .ok()
                        .map(|k| (JwtAlgorithm::ES256, k)),
                    _ => None,
                }
            }
            (Some("OKP"), Some("Ed25519")) if declared.is_none_or(|a| a == "EdDSA") => text("x")
                .and_then(|x| DecodingKey::from_ed_components(x).ok())
                .map(|k| (JwtAlgorithm::EdDSA, k)),
            _ => None,
        };
        if let Some((alg, key)) = parsed {
            out.push(Key {
                kid: text("kid").map(str::to_owned),
                alg,
                key,
            });
        }
    }
    Ok(out)
}

/// The key named `kid` (or the only key of `alg` when the token names none). A key with that
/// kid but another algorithm is an error: the key, not the header, decides the algorithm.
fn find_key(keys: &[Key], kid: Option<&str>, alg: JwtAlgorithm) -> Result<Option<Key>, String> {
    match kid {
        Some(kid) => match keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
            Some(key) if key.alg == alg => Ok(Some(key.clone())),
            Some(key) => Err(format!(
                "the token says alg {} but key `{}` is a {} key; the algorithm is pinned by the key",
                alg.as_str(),
                truncate(kid),
                key.alg.as_str()
            )),
            None => Ok(None),
        },
        None => {
            let mut fitting = keys.iter().filter(|k| k.alg == alg);
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Ok(Some(key.clone())),
                _ => Ok(None),
            }
        }
    }
}

fn jwt_algorithm(alg: &str) -> Option<JwtAlgorithm> {
    match alg {
        "RS256" => Some(JwtAlgorithm::RS256),
        "ES256" => Some(JwtAlgorithm::ES256),
        "EdDSA" => Some(JwtAlgorithm::EdDSA),
        _ => None,
    }
}

fn library_algorithm(alg: JwtAlgorithm) -> Algorithm {
    match alg {
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_owned()
    }
}

fn decode_part(part: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("malformed JWT: the {what} is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(format!("malformed JWT: the {what} is not a JSON object")),
    }
}

/// What the token must satisfy beyond its signature.
struct Expectations<'a> {
    /// Only these providers (all with the token's issuer) are considered.
    providers: Vec<&'a IdentityProvider>,
    /// For an ID token from a sign-in: the nonce the login started with.
    nonce: Option<&'a str>,
    /// For an ID token from a sign-in: the audience must be the client id.
    client_id: Option<&'a str>,
}

/// A verified token: the provider it matched and its claims.
struct Verified<'a> {
    provider: &'a IdentityProvider,
    claims: Map<String, Value>,
}

impl Oidc {
    /// Checks a bearer JWT and maps it to a principal; `Err` is the reason, for the 401 and
    /// the audit log. Never echoes the token.
    pub async fn authenticate_bearer(
        &self,
        state: &AppState,
        token: &str,
    ) -> Result<Principal, String> {
        let pack = state.pack();
        let token = token.trim();
        let issuer = unverified_issuer(token)?;
        let providers: Vec<&IdentityProvider> = pack
            .pack
            .identity_providers()
            .filter(|p| p.issuer.value == issuer)
            .collect();
        if providers.is_empty() {
            return Err(format!(
                "JWT issuer `{}` is not an IdentityProvider in the served pack",
                truncate(&issuer)
            ));
        }
        let verified = self
            .verify(
                state,
                token,
                Expectations {
                    providers,
                    nonce: None,
                    client_id: None,
                },
            )
            .await?;
        map_principal(&pack.pack, verified.provider, &verified.claims)
    }

    async fn verify<'a>(
        &self,
        state: &AppState,
        token: &str,
        expect: Expectations<'a>,
    ) -> Result<Verified<'a>, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!("JWT is longer than {MAX_TOKEN_BYTES} bytes"));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts.as_slice() else {
            return Err(
                "malformed JWT: expected three base64url parts separated by `.`".to_owned(),
            );
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err("malformed JWT: a part is empty (unsigned tokens are refused)".to_owned());
        }
        let header = decode_part(header, "header")?;
        let alg_text = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = jwt_algorithm(alg_text).ok_or_else(|| {
            format!(
                "JWT algorithm `{}` is not accepted (only RS256, ES256 and EdDSA)",
                truncate(alg_text)
            )
        })?;
        let kid = header.get("kid").and_then(Value::as_str);
        let first = *expect.providers.first().ok_or("no identity provider")?;
        let key = self.key_for(first, kid, alg, state.clock().now()).await?;

        let mut validation = Validation::new(library_algorithm(key.alg));
        // Time and audience are checked below against the server's clock and the pack, with
        // reasons a pipeline author can act on.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| format!("JWT signature is not valid: {e}"))?;
        let claims = data.claims;

        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let provider = expect
            .providers
            .iter()
            .copied()
            .find(|p| match expect.client_id {
                Some(client) => audiences.contains(&client),
                None => p
                    .audiences
                    .iter()
                    .any(|a| audiences.contains(&a.value.as_str())),
            })
            .ok_or_else(|| {
                let accepted: Vec<&str> = match expect.client_id {
                    Some(client) => vec![client],
                    None => expect
                        .providers
                        .iter()
                        .flat_map(|p| p.audiences.iter().map(|a| a.value.as_str()))
                        .collect(),
                };
                format!(
                    "JWT audience {:?} is not accepted (expected one of {:?})",
                    audiences, accepted
                )
            })?;
        if !provider.algorithms.contains(&key.alg) {
            return Err(format!(
                "JWT algorithm {} is not allowed by identity provider `{}`",
                key.alg.as_str(),
                provider.id.value
            ));
        }
        check_times(&claims, state.clock().now(), provider)?;
        if let Some(nonce) = expect.nonce {
            let presented = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
            if !bool::from(presented.as_bytes().ct_eq(nonce.as_bytes())) {
                return Err("ID token nonce does not match the sign-in".to_owned());
            }
        }
        Ok(Verified { provider, claims })
    }
}

/// The `iss` claim of a token, read before verification only to pick the provider.
fn unverified_issuer(token: &str) -> Result<String, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!("JWT is longer than {MAX_TOKEN_BYTES} bytes"));
    }
    let payload = token
        .split('.')
        .nth(1)
        .ok_or("malformed JWT: expected three base64url parts separated by `.`")?;
    let claims = decode_part(payload, "payload")?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "JWT has no `iss` claim".to_owned())
}

fn check_times(
    claims: &Map<String, Value>,
    now: Timestamp,
    provider: &IdentityProvider,
) -> Result<(), String> {
    let skew = i64::try_from(provider.max_clock_skew.value.as_secs())
        .unwrap_or(MAX_SKEW_SECONDS)
        .min(MAX_SKEW_SECONDS);
    let now_s = now.as_second();
    let at = |name: &str| -> Result<Option<i64>, String> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| format!("JWT claim `{name}` is not a number")),
        }
    };
    let show = |s: i64| Timestamp::from_second(s).map_or_else(|_| s.to_string(), |t| t.to_string());
    let exp = at("exp")?.ok_or("JWT has no `exp` claim")?;
    if now_s > exp.saturating_add(skew) {
        return Err(format!(
            "JWT expired at {} (now {}, allowed clock skew {skew}s)",
            show(exp),
            show(now_s)
        ));
    }
    if let Some(nbf) = at("nbf")?
        && now_s.saturating_add(skew) < nbf
    {
        return Err(format!(
            "JWT is not valid before {} (now {}, allowed clock skew {skew}s)",
            show(nbf),
            show(now_s)
        ));
    }
    if let Some(iat) = at("iat")?
        && now_s.saturating_add(skew) < iat
    {
        return Err(format!(
            "JWT was issued in the future ({}; now {}, allowed clock skew {skew}s)",
            show(iat),
            show(now_s)
        ));
    }
    Ok(())
}

/// Whether a claim value matches a rule pattern: strings exactly or as a `*` glob, lists when
/// one element does, numbers and booleans by their JSON text.
fn claim_matches(value: &Value, pattern: &str) -> bool {
    match value {
        Value::String(s) => glob(pattern, s),
        Value::Array(items) => items
            .iter()
            .any(|v| !v.is_array() && claim_matches(v, pattern)),
        Value::Number(n) => n.to_string() == pattern,
        Value::Bool(b) => pattern == if *b { "true" } else { "false" },
        Value::Null | Value::Object(_) => false,
    }
}

/// `*` matches any run of characters (including `/`); everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn rule_matches(rule: &ClaimRule, claims: &Map<String, Value>) -> bool {
    !rule.matches.is_empty()
        && rule
            .matches
            .iter()
            .all(|(claim, pattern)| claims.get(claim).is_some_and(|v| claim_matches(v, pattern)))
}

/// Maps verified claims to a principal under `provider`'s rules.
fn map_principal(
    pack: &gatehouse_pack::Pack,
    provider: &IdentityProvider,
    claims: &Map<String, Value>,
) -> Result<Principal, String> {
    let rule = provider.rules.iter().find(|r| rule_matches(r, claims));
    let rule_roles =
        |rule: &ClaimRule| -> Vec<String> { rule.roles.iter().map(|r| r.value.clone()).collect() };
    let services = |rule: &ClaimRule| {
        rule.services
            .as_ref()
            .map(|s| s.iter().map(|x| x.value.clone()).collect::<Vec<_>>())
    };
    match provider.principal {
        OidcPrincipal::Workload => {
            let sub = claims
                .get("sub")
                .and_then(Value::as_str)
                .ok_or("JWT has no `sub` claim")?;
            let rule = rule.ok_or_else(|| {
                format!(
                    "no claim rule of identity provider `{}` matches this token (sub `{}`)",
                    provider.id.value,
                    truncate(sub)
                )
            })?;
            Ok(Principal {
                id: format!("oidc:{}#{sub}", provider.issuer.value),
                display: sub.to_owned(),
                roles: rule_roles(rule),
                auth_method: AuthMethod::OidcWorkload,
                service_scope: services(rule),
            })
        }
        OidcPrincipal::Person => {
            let claim = provider.subject_claim.as_deref().unwrap_or("sub");
            let subject = claims
                .get(claim)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("ID token has no `{claim}` claim"))?;
            let person = pack
                .people()
                .find(|p| p.oidc_subject.as_deref() == Some(subject))
                .ok_or_else(|| {
                    format!(
                        "no Person in the served pack has oidc_subject `{}`",
                        truncate(subject)
                    )
                })?;
            if !provider.rules.is_empty() && rule.is_none() {
                return Err(format!(
                    "no claim rule of identity provider `{}` matches the ID token of {}",
                    provider.id.value, person.id.value
                ));
            }
            let mut roles: Vec<String> = person.roles.iter().map(|r| r.value.clone()).collect();
            for role in rule.map(rule_roles).unwrap_or_default() {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            Ok(Principal {
                id: person.id.value.clone(),
                display: person.name.clone(),
                roles,
                auth_method: AuthMethod::OidcPerson,
                service_scope: rule.and_then(services),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-in for people: authorization code + PKCE.

fn random_token(bytes: usize) -> Result<String, ApiError> {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    gatehouse_core::random::fill(&mut buf).map_err(|e| ApiError::internal("randomness", e))?;
    Ok(URL_SAFE_NO_PAD.encode(buf.as_slice()))
}

fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// A person provider that can sign people in: it has a client id and a redirect URI.
fn login_provider<'a>(
    pack: &'a gatehouse_pack::Pack,
    id: &str,
) -> Result<(&'a IdentityProvider, &'a str, &'a str), ApiError> {
    let provider = pack.identity_provider(id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no IdentityProvider `{}` in the served pack",
            truncate(id)
        ))
    })?;
    if provider.principal != OidcPrincipal::Person {
        return Err(ApiError::BadRequest(format!(
            "identity provider `{id}` is for workloads; people sign in through a `principal: person` provider"
        )));
    }
    match (&provider.client_id, &provider.redirect_uri) {
        (Some(client), Some(redirect)) => {
            Ok((provider, client.value.as_str(), redirect.value.as_str()))
        }
        _ => Err(ApiError::BadRequest(format!(
            "identity provider `{id}` has no `client_id` and `redirect_uri`, so it cannot sign people in"
        ))),
    }
}

/// Starts a sign-in: redirects the browser to the identity provider.
#[utoipa::path(get, path = "/api/v1/auth/oidc/{provider}/login", tag = "identity",
    params(("provider" = String, Path, description = "IdentityProvider id (principal: person)")),
    responses(
        (status = 303, description = "Redirect to the provider's authorization endpoint (PKCE S256, state, nonce)"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "Rate limited (per client IP, shared with password sign-in); see Retry-After", body = ErrorBody),
        (status = 503, description = "The provider's discovery document cannot be fetched, or too many sign-ins are in flight", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Err(refused) = limit_sign_in(&state, &extensions, &headers, "login").await {
        return Ok(refused);
    }
    let pack = state.pack();
    let (provider, client_id, redirect_uri) = login_provider(&pack.pack, &provider_id)?;
    let oidc = state.oidc();
    let discovery = oidc
        .discovery_of(provider, state.clock().now())
        .await
        .map_err(|e| ApiError::Unavailable(format!("identity provider `{provider_id}`: {e}")))?;
    let endpoint = discovery
        .authorization_endpoint
        .filter(|e| is_secure_url(e))
        .ok_or_else(|| {
            ApiError::Unavailable(format!(
                "identity provider `{provider_id}` has no https authorization_endpoint"
            ))
        })?;
    let login_state = random_token(32)?;
    let nonce = random_token(32)?;
    let verifier = Zeroizing::new(random_token(32)?);
    let challenge = pkce_challenge(&verifier);
    {
        let mut logins = oidc
            .logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        logins.retain(|_, l| l.started.elapsed() < LOGIN_TTL);
        if logins.len() >= MAX_PENDING_LOGINS {
            return Err(ApiError::Unavailable(
                "too many sign-ins in flight; try again in a few minutes".into(),
            ));
        }
        logins.insert(
            login_state.clone(),
            PendingLogin {
                provider: provider_id.clone(),
                nonce: nonce.clone(),
                verifier,
                started: Instant::now(),
            },
        );
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &login_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    let location = format!("{endpoint}{separator}{query}");
    // SameSite=Lax, not Strict: the callback is a top-level navigation from the provider's
    // site, and a Strict cookie would not be sent with it.
    let secure = redirect_uri.starts_with("https://");
    let cookie = format!(
        "{LOGIN_COOKIE}={login_state}; HttpOnly; SameSite=Lax; Path=/api/v1/auth/oidc/; Max-Age={}{}",
        LOGIN_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        LOCATION,
        HeaderValue::from_str(&location).map_err(|e| ApiError::internal("redirect", e))?,
    );
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal("cookie", e))?,
    );
    Ok(response)
}

/// What the identity provider sends back to the callback.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The person a sign-in established, and the browser session it started.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub principal: String,
    pub display: String,
    pub roles: Vec<String>,
    /// `oidc_person`.
    #[schema(value_type = String)]
    pub auth_method: AuthMethod,
    pub provider: String,
    /// The browser session started (absent when the server has no sessions attached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Send as `X-CSRF-Token` on state-changing requests made with the session cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// When the session ends at the latest (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
}

/// Sign-ins through a provider share the per-IP sign-in quota of password sign-ins, so a flood
/// of `/login` requests cannot fill the pending-sign-in table and lock real people out.
async fn limit_sign_in(
    state: &AppState,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    step: &str,
) -> Result<(), Response> {
    let Some(identity) = state.identity() else {
        return Ok(());
    };
    crate::ratelimit::enforce_per_client_ip(
        state,
        identity.limits(),
        crate::ratelimit::LimitKind::LoginPerIp,
        extensions,
        headers,
        audit::ANONYMOUS,
        &format!("GET /api/v1/auth/oidc/{{provider}}/{step}"),
    )
    .await?;
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/auth/oidc/{provider}/callback", tag = "identity",
    params(("provider" = String, Path, description = "IdentityProvider id"), CallbackQuery),
    responses(
        (status = 200, description = "Signed in: the session cookie is set, the body has its CSRF token", body = SignedIn),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Sign-in refused (reason in the message and the audit log)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "Rate limited (per client IP); see Retry-After", body = ErrorBody),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    headers: HeaderMap,
    cookies: Option<axum::Extension<crate::session::CookiePolicy>>,
    extensions: axum::http::Extensions,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    if let Err(refused) = limit_sign_in(&state, &extensions, &headers, "callback").await {
        return Ok(refused);
    }
    let cookies = cookies.map(|c| c.0).unwrap_or_default();
    match finish_login(&state, &provider_id, &headers, query).await {
        Ok(principal) => establish_session(&state, &provider_id, principal, cookies).await,
        Err(reason) => {
            audit::append_or_log(
                &state,
                audit::ANONYMOUS,
                "auth.login",
                &format!("identity_provider:{provider_id}"),
                AuditOutcome::Denied,
                json!({ "method": "oidc", "reason": reason }),
            )
            .await;
            tracing::info!(%reason, provider = %provider_id, "OIDC sign-in refused");
            let mut response = ApiError::Unauthorized(reason).into_response();
            response
                .headers_mut()
                .insert(SET_COOKIE, HeaderValue::from_static(CLEAR_LOGIN_COOKIE));
            Ok(response)
        }
    }
}

/// A validated person becomes a browser session (crate::session): the session cookie
/// (HttpOnly, SameSite=Strict, Secure under TLS) and its CSRF token, as after a password
/// sign-in. A server without sessions attached (the library used on its own) answers with the
/// signed-in principal only.
async fn establish_session(
    state: &AppState,
    provider_id: &str,
    principal: Principal,
    cookies: crate::session::CookiePolicy,
) -> Result<Response, ApiError> {
    let mut view = SignedIn {
        principal: principal.id.clone(),
        display: principal.display.clone(),
        roles: principal.roles.clone(),
        auth_method: principal.auth_method,
        provider: provider_id.to_owned(),
        session_id: None,
        csrf_token: None,
        expires_at: None,
    };
    let Some(identity) = state.identity() else {
        audit_sign_in(state, &principal, provider_id, None).await?;
        return Ok((StatusCode::OK, axum::Json(view)).into_response());
    };
    let now = state.clock().now();
    let new = gatehouse_core::session::NewSession::generate(
        &principal.id,
        AuthMethod::OidcPerson,
        now,
        identity.policy(),
    )
    .map_err(|e| ApiError::internal("starting a session", e))?;
    identity
        .store()
        .insert_session(new.record())
        .await
        .map_err(|e| ApiError::internal("storing a session", e))?;
    let session_id = new.record().id.to_string();
    audit_sign_in(state, &principal, provider_id, Some(&session_id)).await?;
    view.session_id = Some(session_id);
    view.csrf_token = Some(new.csrf_token().to_owned());
    view.expires_at = Some(new.record().expires_at);
    let cookie = cookies.set_cookie(new.cookie_value(), identity.policy().absolute_timeout);
    let mut response = (StatusCode::OK, axum::Json(view)).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal("session cookie", e))?,
    );
    response
        .headers_mut()
        .append(SET_COOKIE, HeaderValue::from_static(CLEAR_LOGIN_COOKIE));
    Ok(response)
}

async fn audit_sign_in(
    state: &AppState,
    principal: &Principal,
    provider_id: &str,
    session: Option<&str>,
) -> Result<(), ApiError> {
    audit::append(
        state,
        &principal.id,
        "auth.login",
        &session.map_or_else(
            || format!("person:{}", principal.id),
            |s| format!("session:{s}"),
        ),
        AuditOutcome::Succeeded,
        json!({ "method": "oidc", "provider": provider_id }),
    )
    .await
    .map(|_| ())
    .map_err(|e| ApiError::internal("auditing a sign-in", e))
}

/// Finishes a sign-in: exchanges the code (with the PKCE verifier), validates the ID token
/// (signature, issuer, audience = client id, times, nonce) and maps it to a pack `Person`.
async fn finish_login(
    state: &AppState,
    provider_id: &str,
    headers: &HeaderMap,
    query: CallbackQuery,
) -> Result<Principal, String> {
    if let Some(error) = &query.error {
        return Err(format!(
            "the identity provider refused the sign-in: {} {}",
            truncate(error),
            truncate(query.error_description.as_deref().unwrap_or(""))
        ));
    }
    let (Some(code), Some(login_state)) = (&query.code, &query.state) else {
        return Err("the callback has no `code` and `state`".to_owned());
    };
    let oidc = state.oidc();
    // Single use: the pending sign-in is removed whatever happens next.
    let pending = oidc
        .logins
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(login_state)
        .ok_or("unknown or already used sign-in `state`")?;
    if pending.started.elapsed() >= LOGIN_TTL {
        return Err("the sign-in took longer than 10 minutes; start again".to_owned());
    }
    if pending.provider != provider_id {
        return Err("the sign-in was started for another identity provider".to_owned());
    }
    // The state must come back to the browser that started the sign-in (login CSRF).
    let cookie = crate::session::cookie(headers, LOGIN_COOKIE)
        .ok_or("the sign-in cookie is missing (start the sign-in in this browser)")?;
    if !bool::from(cookie.as_bytes().ct_eq(login_state.as_bytes())) {
        return Err("the sign-in cookie does not match `state`".to_owned());
    }
    let pack = state.pack();
    let (provider, client_id, redirect_uri) =
        login_provider(&pack.pack, provider_id).map_err(|e| e.to_string())?;
    let discovery = oidc.discovery_of(provider, state.clock().now()).await?;
    let token_endpoint = discovery
        .token_endpoint
        .ok_or("the identity provider has no token_endpoint")?;
    if !is_secure_url(&token_endpoint) {
        return Err(format!("token endpoint `{token_endpoint}` is not https"));
    }
    let secret = match &provider.client_secret_env {
        Some(var) => Some(Zeroizing::new(std::env::var(var).map_err(|_| {
            format!(
                "the client secret variable `{var}` of identity provider `{provider_id}` is not set"
            )
        })?)),
        None => None,
    };
    // Built in a block: the serializer is not `Send` and must not live across an await.
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("client_id", client_id)
            .append_pair("code_verifier", &pending.verifier);
        if let Some(secret) = &secret {
            form.append_pair("client_secret", secret);
        }
        Zeroizing::new(form.finish())
    };
    let response = oidc
        .http
        .post(&token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body.as_str().to_owned())
        .send()
        .await
        .map_err(|e| format!("cannot reach the token endpoint: {e}"))?;
    let tokens = read_json(&token_endpoint, response)
        .await
        .map_err(|e| format!("code exchange failed: {e}"))?;
    let id_token = tokens
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or("the token endpoint answered no id_token")?;
    let issuer = unverified_issuer(id_token)?;
    if issuer != provider.issuer.value {
        return Err(format!(
            "ID token issuer `{}` is not `{}`",
            truncate(&issuer),
            provider.issuer.value
        ));
    }
    let verified = oidc
        .verify(
            state,
            id_token,
            Expectations {
                providers: vec![provider],
                nonce: Some(&pending.nonce),
                client_id: Some(client_id),
            },
        )
        .await?;
    map_principal(&pack.pack, verified.provider, &verified.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_prefixes_and_runs() {
        assert!(glob("refs/heads/main", "refs/heads/main"));
        assert!(!glob("refs/heads/main", "refs/heads/main2"));
        assert!(glob("refs/heads/release/*", "refs/heads/release/1.2"));
        assert!(!glob("refs/heads/release/*", "refs/heads/main"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(!glob("ab*ba", "aba"), "prefix and suffix may not overlap");
    }

    #[test]
    fn claims_match_lists_numbers_and_booleans() {
        assert!(claim_matches(&json!(["a", "b"]), "b"));
        assert!(!claim_matches(&json!(["a", ["b"]]), "b"));
        assert!(claim_matches(&json!(true), "true"));
        assert!(claim_matches(&json!(42), "42"));
        assert!(!claim_matches(&json!(null), "null"));
        assert!(!claim_matches(&json!({"a": 1}), "*"));
    }

    #[test]
    fn pkce_challenge_is_rfc7636_s256() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    fn ttl_of(headers: &[(&'static str, &'static str)]) -> i64 {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, reqwest::header::HeaderValue::from_static(value));
        }
        keys_ttl(&map).as_secs()
    }

    #[test]
    fn key_freshness_follows_cache_control_within_bounds() {
        assert_eq!(ttl_of(&[]), 3600, "no max-age: the default");
        assert_eq!(ttl_of(&[("cache-control", "public, max-age=600")]), 600);
        assert_eq!(ttl_of(&[("cache-control", "Max-Age=\"900\"")]), 900);
        assert_eq!(ttl_of(&[("cache-control", "max-age=5")]), 60, "clamped up");
        assert_eq!(ttl_of(&[("cache-control", "max-age=0")]), 60);
        assert_eq!(ttl_of(&[("cache-control", "max-age=31536000")]), 86_400);
        assert_eq!(
            ttl_of(&[("cache-control", "max-age=99999999999999999999999")]),
            86_400,
            "overflow saturates"
        );
        for restrictive in [
            "no-store",
            "no-cache",
            "max-age=3600, no-cache",
            "max-age=soon",
            "max-age=-5",
            "max-age",
        ] {
            assert_eq!(
                ttl_of(&[("cache-control", restrictive)]),
                60,
                "{restrictive}"
            );
        }
        // Two values (in one field or two): the smaller.
        assert_eq!(
            ttl_of(&[("cache-control", "max-age=900, max-age=300")]),
            300
        );
        assert_eq!(
            ttl_of(&[
                ("cache-control", "max-age=300"),
                ("cache-control", "max-age=900")
            ]),
            300
        );
        // A response that sat in a shared cache has less freshness left.
        assert_eq!(
            ttl_of(&[("cache-control", "max-age=900"), ("age", "300")]),
            600
        );
        assert_eq!(
            ttl_of(&[("cache-control", "max-age=900"), ("age", "899")]),
            60
        );
        assert_eq!(ttl_of(&[("cache-control", "s-maxage=10")]), 3600);
    }

    #[test]
    fn cached_keys_are_fresh_then_stale_then_unusable() {
        let at = |s: i64| Timestamp::from_second(1_780_000_000 + s).unwrap();
        let cache = IssuerState {
            fetched_at: Some(at(0)),
            ttl: SignedDuration::from_secs(600),
            ..IssuerState::default()
        };
        assert!(cache.is_fresh(at(599)) && cache.is_usable(at(599)));
        assert!(!cache.is_fresh(at(600)) && cache.is_usable(at(600)));
        assert!(cache.is_usable(at(600 + 86_399)));
        assert!(!cache.is_usable(at(600 + 86_400)));
        // The clock set back: the age is unknown, so refresh, but the keys are not thrown away.
        assert!(!cache.is_fresh(at(-10)) && cache.is_usable(at(-10)));
        assert!(!IssuerState::default().is_usable(at(0)));
        assert!(elapsed(None, at(0), KID_REFETCH_INTERVAL));
        assert!(!elapsed(Some(at(0)), at(29), KID_REFETCH_INTERVAL));
        assert!(elapsed(Some(at(0)), at(30), KID_REFETCH_INTERVAL));
        assert!(elapsed(Some(at(0)), at(-1), KID_REFETCH_INTERVAL));
    }

    #[test]
    fn symmetric_and_weak_keys_are_never_trusted() {
        let jwks = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            {"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 128]), "e": "AQAB", "kid": "small"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
            {"kty": "RSA", "alg": "RS512", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 256]), "e": "AQAB", "kid": "rs512"},
            {"kty": "RSA", "use": "enc", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 256]), "e": "AQAB", "kid": "enc"},
            {"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 256]), "e": "AQAB", "kid": "ok"},
        ]});
        let keys = parse_jwks(&jwks).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["ok"]);
        assert_eq!(keys[0].alg, JwtAlgorithm::RS256);
        let Err(err) = find_key(&keys, Some("ok"), JwtAlgorithm::EdDSA) else {
            panic!("a key of another algorithm must be refused");
        };
        assert!(err.contains("pinned by the key"), "{err}");
    }
}
