//! Rate limits on the sign-in and token endpoints, per client IP and per username/principal.
//!
//! Password guessing and token spraying are cheap for an attacker and expensive for gatehouse
//! (every password check is a deliberate 19 MiB Argon2id computation), so these endpoints are
//! limited before any work is done. Each limiter is a GCRA (generic cell rate algorithm, the
//! token bucket expressed as one "theoretical arrival time" per key): a quota of `burst`
//! requests per `period`, refilled continuously.
//!
//! Memory is bounded: at most `max_keys` keys are tracked. Keys whose bucket is full again are
//! indistinguishable from absent ones and are evicted first; when the table is still full (a
//! flood of distinct keys), new keys share one overflow bucket, so a flood can slow down new
//! clients but never grow memory or lift the limit.
//!
//! The client IP is the socket's peer address. `X-Forwarded-For` is only believed when the peer
//! is one of the configured trusted proxies (otherwise any client could pick its own key).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::audit::AuditOutcome;
use serde_json::json;

use crate::audit;
use crate::error::{ErrorBody, ErrorDetail};
use crate::hardening::ClientAddr;
use crate::state::AppState;

/// `burst` requests per `period`, refilled continuously (one every `period / burst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub burst: u32,
    pub period: Duration,
}

impl Quota {
    /// Parses `N/PERIOD`, e.g. `10/1m`, `5/30s`, `100/1h`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let (n, period) = input
            .split_once('/')
            .ok_or_else(|| format!("`{input}`: expected N/PERIOD, e.g. 10/1m"))?;
        let burst: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{input}`: N must be a whole number of at least 1"))?;
        let period = period.trim();
        let (digits, unit) = period.split_at(period.len().saturating_sub(1));
        let amount: u64 = digits
            .parse()
            .ok()
            .filter(|a| *a > 0)
            .ok_or_else(|| format!("`{input}`: PERIOD is a positive number with s, m or h"))?;
        let seconds = match unit {
            "s" => Some(amount),
            "m" => amount.checked_mul(60),
            "h" => amount.checked_mul(3600),
            _ => None,
        }
        .filter(|s| *s <= 86_400)
        .ok_or_else(|| format!("`{input}`: PERIOD is at most 24h, with unit s, m or h"))?;
        Ok(Self {
            burst,
            period: Duration::from_secs(seconds),
        })
    }

    fn emission_interval(&self) -> Duration {
        self.period / self.burst.max(1)
    }
}

/// What a limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited {
        /// When the next request of this key would be allowed.
        retry_after: Duration,
        /// `Some(n)` when this refusal should be audited, `n` being the refusals of this key
        /// not audited since the last audited one (one audit entry per key per period, so a
        /// flood cannot flood the audit log too).
        audit_suppressed: Option<u64>,
    },
}

struct Entry {
    /// Theoretical arrival time: the bucket is full again at `tat`.
    tat: Instant,
    suppressed: u64,
    last_audited: Option<Instant>,
}

struct Table {
    entries: HashMap<String, Entry>,
    last_purge: Option<Instant>,
}

/// A GCRA limiter over string keys, bounded to `max_keys` entries.
pub struct RateLimiter {
    quota: Quota,
    max_keys: usize,
    table: Mutex<Table>,
}

const OVERFLOW_KEY: &str = "\u{0}overflow";

impl RateLimiter {
    pub fn new(quota: Quota, max_keys: usize) -> Self {
        Self {
            quota,
            max_keys: max_keys.max(1),
            table: Mutex::new(Table {
                entries: HashMap::new(),
                last_purge: None,
            }),
        }
    }

    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Number of keys tracked (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave the table inconsistent (each update is a
        // single insert), so keep using it.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one request of `key` at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Decision {
        let interval = self.quota.emission_interval();
        let period = self.quota.period;
        let mut table = self.lock();
        let mut key = key;
        if !table.entries.contains_key(key) && table.entries.len() >= self.max_keys {
            // Purge at most once a second: a full table of live keys must not cost a scan on
            // every request.
            let due = table
                .last_purge
                .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
            if due {
                table
                    .entries
                    .retain(|k, e| e.tat > now || k == OVERFLOW_KEY);
                table.last_purge = Some(now);
            }
            if table.entries.len() >= self.max_keys {
                key = OVERFLOW_KEY;
            }
        }
        let entry = table.entries.entry(key.to_owned()).or_insert(Entry {
            tat: now,
            suppressed: 0,
            last_audited: None,
        });
        let tat = entry.tat.max(now);
        let new_tat = tat + interval;
        let ahead = new_tat.saturating_duration_since(now);
        if ahead <= period {
            entry.tat = new_tat;
            return Decision::Allowed;
        }
        let retry_after = ahead.saturating_sub(period);
        let audit_due = entry
            .last_audited
            .is_none_or(|at| now.saturating_duration_since(at) >= period);
        let audit_suppressed = if audit_due {
            let n = entry.suppressed;
            entry.suppressed = 0;
            entry.last_audited = Some(now);
            Some(n)
        } else {
            entry.suppressed = entry.suppressed.saturating_add(1);
            None
        };
        Decision::Limited {
            retry_after,
            audit_suppressed,
        }
    }
}

/// Quotas of the sign-in and token endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `POST /api/v1/session` per client IP.
    pub login_per_ip: Quota,
    /// `POST /api/v1/session` per username (whether or not it exists).
    pub login_per_user: Quota,
    /// `/api/v1/tokens` per client IP.
    pub tokens_per_ip: Quota,
    /// `/api/v1/tokens` per authenticated principal.
    pub tokens_per_principal: Quota,
    /// Keys tracked per limiter at most.
    pub max_keys: usize,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies in front of gatehouse).
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let per_minute = |burst| Quota {
            burst,
            period: Duration::from_secs(60),
        };
        Self {
            login_per_ip: per_minute(30),
            login_per_user: per_minute(5),
            tokens_per_ip: per_minute(60),
            tokens_per_principal: per_minute(30),
            max_keys: 100_000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The limiters of one server.
pub struct RateLimits {
    pub login_per_ip: RateLimiter,
    pub login_per_user: RateLimiter,
    pub tokens_per_ip: RateLimiter,
    pub tokens_per_principal: RateLimiter,
    trusted_proxies: Vec<IpAddr>,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            login_per_ip: RateLimiter::new(config.login_per_ip, config.max_keys),
            login_per_user: RateLimiter::new(config.login_per_user, config.max_keys),
            tokens_per_ip: RateLimiter::new(config.tokens_per_ip, config.max_keys),
            tokens_per_principal: RateLimiter::new(config.tokens_per_principal, config.max_keys),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// The limiter that enforces `kind`.
    fn limiter(&self, kind: LimitKind) -> &RateLimiter {
        match kind {
            LimitKind::LoginPerIp => &self.login_per_ip,
            LimitKind::LoginPerUser => &self.login_per_user,
            LimitKind::TokensPerIp => &self.tokens_per_ip,
            LimitKind::TokensPerPrincipal => &self.tokens_per_principal,
        }
    }

    /// The client's IP: the socket peer, or the nearest untrusted address in
    /// `X-Forwarded-For` when the peer is a trusted proxy. `None` when the server was not
    /// given the peer address (a router used without `ConnectInfo`, as in unit tests).
    pub fn client_ip(&self, extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer_addr(extensions)?.ip();
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        // Walk from the right: each trusted proxy appended the address it received from.
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !self.trusted_proxies.contains(ip))
                .unwrap_or(peer),
        )
    }
}

/// The socket peer of the request's connection (`ConnectInfo`, set when the server is served
/// with `into_make_service_with_connect_info`).
pub fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<ClientAddr>>()
        .map(|ConnectInfo(ClientAddr(addr))| *addr)
}

/// Which limit refused a request, for the answer and the audit entry.
#[derive(Debug, Clone, Copy)]
pub enum LimitKind {
    LoginPerIp,
    LoginPerUser,
    TokensPerIp,
    TokensPerPrincipal,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginPerIp => "login_per_ip",
            Self::LoginPerUser => "login_per_user",
            Self::TokensPerIp => "tokens_per_ip",
            Self::TokensPerPrincipal => "tokens_per_principal",
        }
    }
}

/// Applies `limiter` to `key`; on refusal, audits (`auth.rate_limited`, at most once per key
/// per period) and returns the 429 answer with `Retry-After`.
#[allow(clippy::too_many_arguments)]
pub async fn enforce(
    state: &AppState,
    limiter: &RateLimiter,
    kind: LimitKind,
    key: &str,
    actor: &str,
    route: &str,
    client_ip: Option<IpAddr>,
) -> Result<(), Response> {
    let Decision::Limited {
        retry_after,
        audit_suppressed,
    } = limiter.check(key, Instant::now())
    else {
        return Ok(());
    };
    let retry_secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let retry_secs = retry_secs.max(1);
    if let Some(suppressed) = audit_suppressed {
        audit::append_or_log(
            state,
            actor,
            "auth.rate_limited",
            &format!("route:{route}"),
            AuditOutcome::Denied,
            json!({
                "limit": kind.as_str(),
                "client_ip": client_ip.map(|ip| ip.to_string()),
                "retry_after_secs": retry_secs,
                "refusals_not_audited_before": suppressed,
            }),
        )
        .await;
        tracing::warn!(limit = kind.as_str(), route, "rate limit reached");
    }
    Err(too_many_requests(retry_secs, kind))
}

/// Applies the per-client-IP limit `kind` (`LoginPerIp` or `TokensPerIp`) to a request, as
/// [`enforce`] does, keyed by [`RateLimits::client_ip`]. Requests whose peer is not known share
/// the key `unknown`, so they are limited together rather than not at all. Returns the client
/// IP for the caller's later limits and audit entries.
pub async fn enforce_per_client_ip(
    state: &AppState,
    limits: &RateLimits,
    kind: LimitKind,
    extensions: &Extensions,
    headers: &HeaderMap,
    actor: &str,
    route: &str,
) -> Result<Option<IpAddr>, Response> {
    let client_ip = limits.client_ip(extensions, headers);
    let key = client_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    enforce(
        state,
        limits.limiter(kind),
        kind,
        &key,
        actor,
        route,
        client_ip,
    )
    .await?;
    Ok(client_ip)
}

/// The 429 answer, in the API's error shape, with `Retry-After` in seconds.
pub fn too_many_requests(retry_secs: u64, kind: LimitKind) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(ErrorBody {
            error: ErrorDetail {
                code: "rate_limited",
                message: format!(
                    "too many requests ({}); retry after {retry_secs} s",
                    kind.as_str()
                ),
                field: None,
                problems: Vec::new(),
            },
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(burst: u32, secs: u64) -> Quota {
        Quota {
            burst,
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn burst_is_allowed_then_limited_until_refill() {
        let limiter = RateLimiter::new(quota(3, 30), 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("k", t0), Decision::Allowed);
        }
        let Decision::Limited {
            retry_after,
            audit_suppressed,
        } = limiter.check("k", t0)
        else {
            panic!("fourth request in the burst must be limited");
        };
        assert_eq!(retry_after, Duration::from_secs(10));
        assert_eq!(audit_suppressed, Some(0));
        // The next refusals in the same period are not audited, but counted.
        for _ in 0..5 {
            assert!(matches!(
                limiter.check("k", t0),
                Decision::Limited {
                    audit_suppressed: None,
                    ..
                }
            ));
        }
        // One cell refills after period / burst.
        assert_eq!(
            limiter.check("k", t0 + Duration::from_secs(10)),
            Decision::Allowed
        );
        assert!(matches!(
            limiter.check("k", t0 + Duration::from_secs(10)),
            Decision::Limited { .. }
        ));
        // A full period after the burst, the next audited refusal reports the suppressed ones.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.check("k", later), Decision::Allowed);
        }
        assert_eq!(
            limiter.check("k", later),
            Decision::Limited {
                retry_after: Duration::from_secs(10),
                audit_suppressed: Some(6)
            }
        );
    }

    #[test]
    fn keys_are_independent() {
        let limiter = RateLimiter::new(quota(1, 60), 100);
        let t0 = Instant::now();
        assert_eq!(limiter.check("a", t0), Decision::Allowed);
        assert!(matches!(limiter.check("a", t0), Decision::Limited { .. }));
        assert_eq!(limiter.check("b", t0), Decision::Allowed);
    }

    #[test]
    fn memory_is_bounded_and_a_flood_shares_the_overflow_bucket() {
        let limiter = RateLimiter::new(quota(2, 60), 10);
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(limiter.check(&format!("k{i}"), t0), Decision::Allowed);
        }
        // The table is full of live keys: new keys share one bucket of the same quota.
        let mut allowed = 0;
        for i in 10..1000 {
            if limiter.check(&format!("k{i}"), t0) == Decision::Allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 2);
        assert!(limiter.tracked_keys() <= 11, "{}", limiter.tracked_keys());
        // Once the first keys' buckets are full again they are evicted for new keys.
        let later = t0 + Duration::from_secs(120);
        assert_eq!(limiter.check("fresh", later), Decision::Allowed);
        assert!(limiter.tracked_keys() <= 11);
    }

    #[test]
    fn quotas_parse() {
        assert_eq!(Quota::parse("10/1m").unwrap(), quota(10, 60));
        assert_eq!(Quota::parse("5/30s").unwrap(), quota(5, 30));
        assert_eq!(Quota::parse("100/1h").unwrap(), quota(100, 3600));
        for bad in ["", "10", "0/1m", "10/0s", "10/1d", "x/1m", "10/m", "10/25h"] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let limits = RateLimits::new(&RateLimitConfig {
            trusted_proxies: vec![proxy],
            ..RateLimitConfig::default()
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.9, 10.0.0.1"),
        );
        let connected = |addr: SocketAddr| {
            let mut extensions = Extensions::new();
            extensions.insert(ConnectInfo(ClientAddr(addr)));
            extensions
        };
        let via_proxy = connected(SocketAddr::new(proxy, 4000));
        assert_eq!(
            limits.client_ip(&via_proxy, &headers),
            Some("203.0.113.9".parse().unwrap())
        );
        let direct = connected(SocketAddr::new("198.51.100.7".parse().unwrap(), 4000));
        assert_eq!(
            limits.client_ip(&direct, &headers),
            Some("198.51.100.7".parse().unwrap())
        );
        assert_eq!(limits.client_ip(&Extensions::new(), &headers), None);
    }
}
