//! Options of `gatehouse serve` for sign-in, browser sessions and their rate limits, and the
//! wiring that attaches them to the server (kept out of `serve.rs` so that command stays about
//! serving).

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context;
use gatehouse_core::session::SessionPolicy;
use gatehouse_server::AppState;
use gatehouse_server::ratelimit::{Quota, RateLimitConfig};
use gatehouse_server::session::{Identity, IdentityConfig};
use gatehouse_store::StoreConfig;
use jiff::SignedDuration;

/// Sign-in and session settings of `gatehouse serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
    /// A browser session with no request for this long ends (e.g. 30m, 1h, 90s).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub session_idle_timeout: SignedDuration,
    /// A browser session ends this long after sign-in, however active (e.g. 12h, 1d).
    #[arg(long, default_value = "12h", value_parser = parse_duration)]
    pub session_absolute_timeout: SignedDuration,
    /// Mark session cookies Secure although this process serves plain HTTP (a TLS-terminating
    /// proxy in front). Under --tls-cert they are Secure anyway.
    #[arg(long)]
    pub secure_cookies: bool,
    /// Sign-in attempts per username, as N/PERIOD (e.g. 5/1m).
    #[arg(long, default_value = "5/1m", value_parser = Quota::parse)]
    pub login_rate_limit: Quota,
    /// Sign-in attempts per client IP, as N/PERIOD.
    #[arg(long, default_value = "30/1m", value_parser = Quota::parse)]
    pub login_rate_limit_per_ip: Quota,
    /// Requests to /api/v1/tokens per principal, as N/PERIOD.
    #[arg(long, default_value = "30/1m", value_parser = Quota::parse)]
    pub token_rate_limit: Quota,
    /// Requests to /api/v1/tokens per client IP, as N/PERIOD.
    #[arg(long, default_value = "60/1m", value_parser = Quota::parse)]
    pub token_rate_limit_per_ip: Quota,
    /// A reverse proxy whose X-Forwarded-For is believed for rate limits (repeatable). Without
    /// one, the client IP is always the socket peer.
    #[arg(long = "trust-forwarded-for", value_name = "PROXY_IP")]
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for IdentityArgs {
    fn default() -> Self {
        let limits = RateLimitConfig::default();
        let sessions = SessionPolicy::default();
        Self {
            session_idle_timeout: sessions.idle_timeout,
            session_absolute_timeout: sessions.absolute_timeout,
            secure_cookies: false,
            login_rate_limit: limits.login_per_user,
            login_rate_limit_per_ip: limits.login_per_ip,
            token_rate_limit: limits.tokens_per_principal,
            token_rate_limit_per_ip: limits.tokens_per_ip,
            trusted_proxies: Vec::new(),
        }
    }
}

impl IdentityArgs {
    pub fn config(&self) -> anyhow::Result<IdentityConfig> {
        if self.session_idle_timeout > self.session_absolute_timeout {
            anyhow::bail!(
                "--session-idle-timeout ({}) must not exceed --session-absolute-timeout ({})",
                self.session_idle_timeout,
                self.session_absolute_timeout
            );
        }
        Ok(IdentityConfig {
            sessions: SessionPolicy {
                idle_timeout: self.session_idle_timeout,
                absolute_timeout: self.session_absolute_timeout,
            },
            rate_limits: RateLimitConfig {
                login_per_ip: self.login_rate_limit_per_ip,
                login_per_user: self.login_rate_limit,
                tokens_per_ip: self.token_rate_limit_per_ip,
                tokens_per_principal: self.token_rate_limit,
                trusted_proxies: self.trusted_proxies.clone(),
                ..RateLimitConfig::default()
            },
            max_concurrent_password_checks: 0,
            secure_cookies: self.secure_cookies,
        })
    }
}

/// Connects the identity store and attaches sign-in and sessions to the server.
pub async fn attach_to_server(
    state: &AppState,
    store_config: &StoreConfig,
    args: &IdentityArgs,
) -> anyhow::Result<()> {
    let config = args.config()?;
    let store = gatehouse_store::SqlIdentityStore::connect(store_config)
        .await
        .with_context(|| {
            format!(
                "cannot open the identity store ({})",
                store_config.describe()
            )
        })?;
    state.attach_identity(Arc::new(Identity::new(Arc::new(store), config)));
    Ok(())
}

/// Parses `90s`, `30m`, `12h`, `30d` into a positive duration of at most ten years.
pub fn parse_duration(input: &str) -> Result<SignedDuration, String> {
    let input = input.trim();
    let (digits, unit) = input.split_at(input.len().saturating_sub(1));
    let amount: i64 = digits
        .parse()
        .map_err(|_| format!("`{input}` is not a duration like 90s, 30m, 12h or 30d"))?;
    if amount <= 0 {
        return Err("the duration must be positive".into());
    }
    let seconds = match unit {
        "s" => Some(amount),
        "m" => amount.checked_mul(60),
        "h" => amount.checked_mul(3600),
        "d" => amount.checked_mul(86_400),
        _ => return Err(format!("`{input}`: the unit must be s, m, h or d")),
    };
    seconds
        .filter(|s| *s <= 3650 * 86_400)
        .map(SignedDuration::from_secs)
        .ok_or_else(|| "the duration must be at most ten years".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(SignedDuration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(SignedDuration::from_mins(30)));
        assert_eq!(parse_duration("12h"), Ok(SignedDuration::from_hours(12)));
        assert_eq!(parse_duration("30d"), Ok(SignedDuration::from_hours(720)));
        for bad in ["", "m", "0m", "-5m", "5w", "1.5h", "99999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idle_longer_than_absolute_is_refused() {
        let args = IdentityArgs {
            session_idle_timeout: SignedDuration::from_hours(2),
            session_absolute_timeout: SignedDuration::from_hours(1),
            ..IdentityArgs::default()
        };
        assert!(args.config().is_err());
        IdentityArgs::default().config().unwrap();
    }
}
