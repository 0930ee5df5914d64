//! `gatehouse admin bootstrap`: the first credential, created offline on the data directory.
//!
//! A fresh `serve` denies every API request (deny by default), so the first admin token cannot
//! come from the API. Like a recovery command, bootstrap works directly on the store (server
//! running or not), prints the token once, is audited, and is refused while an active admin
//! token exists unless `--force` is given.

use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::clock::Clock;
use gatehouse_core::identity::IssuedToken;
use gatehouse_server::SystemClock;
use jiff::SignedDuration;
use serde_json::json;

use super::serve::{StorageArgs, open_store};
use crate::output::outln;
use crate::output::{OutputFormat, print_json};

/// Arguments of `gatehouse admin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create an admin API token directly in the store and print it once.
    Bootstrap(BootstrapArgs),
}

#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Principal id the token belongs to.
    #[arg(long, default_value = "admin")]
    pub principal: String,
    /// Lifetime of the token, e.g. 30d, 12h or 90m.
    #[arg(long, default_value = "30d", value_parser = parse_lifetime)]
    pub expires: SignedDuration,
    /// Create another admin token even though an active one exists.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        AdminCommand::Bootstrap(a) => crate::runtime::block_on(bootstrap(a))?,
    }
}

async fn bootstrap(args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    if args.principal.trim().is_empty() || args.principal.chars().any(char::is_control) {
        bail!("--principal must be a non-empty name without control characters");
    }
    let config = args.storage.config()?;
    let store = open_store(&config).await?;
    let clock = SystemClock;
    let now = clock.now();

    // Ask the store for active admin tokens directly: a paged token listing could miss one.
    let active_admins: Vec<String> = store
        .active_api_tokens_with_role("admin", now)
        .await
        .context("cannot list existing admin tokens")?
        .into_iter()
        .map(|t| format!("{} ({})", t.id, t.principal))
        .collect();
    if !active_admins.is_empty() && !args.force {
        let record = AuditRecord {
            at: now,
            actor: "local".into(),
            action: "admin.bootstrap".into(),
            target: format!("principal:{}", args.principal),
            outcome: AuditOutcome::Denied,
            detail: json!({ "reason": "an active admin token exists" }),
        };
        store
            .append_audit(&record)
            .await
            .context("cannot audit the refused bootstrap")?;
        bail!(
            "refusing to bootstrap: active admin token(s) exist: {} (use --force to create another)",
            active_admins.join(", ")
        );
    }

    let expires_at = now
        .checked_add(args.expires)
        .context("--expires is too far in the future")?;
    let issued =
        IssuedToken::generate(&args.principal, vec!["admin".into()], now, Some(expires_at))?;
    store
        .insert_api_token(issued.record())
        .await
        .context("cannot store the admin token")?;
    store
        .append_audit(&AuditRecord {
            at: now,
            actor: "local".into(),
            action: "admin.bootstrap".into(),
            target: format!("token:{}", issued.record().id),
            outcome: AuditOutcome::Succeeded,
            detail: json!({
                "principal": args.principal,
                "roles": ["admin"],
                "expires_at": expires_at,
                "forced": args.force && !active_admins.is_empty(),
            }),
        })
        .await
        .context("cannot audit the bootstrap")?;

    match args.format {
        OutputFormat::Json => print_json(&json!({
            "token": issued.token(),
            "token_id": issued.record().id.to_string(),
            "principal": args.principal,
            "roles": ["admin"],
            "expires_at": expires_at,
        }))?,
        OutputFormat::Text => {
            outln!(
                "admin token for {} (store: {}; expires {expires_at}); it is shown only now:",
                args.principal,
                config.describe()
            );
            outln!("{}", issued.token());
        }
    }
    Ok(super::EXIT_OK)
}

/// Parses `30d`, `12h`, `90m` into a duration.
fn parse_lifetime(input: &str) -> Result<SignedDuration, String> {
    let (digits, unit) = input.split_at(input.len().saturating_sub(1));
    let amount: i64 = digits
        .parse()
        .map_err(|_| format!("`{input}` is not a lifetime like 30d, 12h or 90m"))?;
    if amount <= 0 {
        return Err("the lifetime must be positive".into());
    }
    let hours = match unit {
        "d" => amount.checked_mul(24),
        "h" => Some(amount),
        "m" => return Ok(SignedDuration::from_mins(amount)),
        _ => return Err(format!("`{input}`: the unit must be d, h or m")),
    };
    hours
        .filter(|h| *h <= 24 * 3650)
        .map(SignedDuration::from_hours)
        .ok_or_else(|| "the lifetime must be at most ten years".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_in_days_hours_and_minutes() {
        assert_eq!(
            parse_lifetime("30d").unwrap(),
            SignedDuration::from_hours(720)
        );
        assert_eq!(
            parse_lifetime("12h").unwrap(),
            SignedDuration::from_hours(12)
        );
        assert_eq!(
            parse_lifetime("90m").unwrap(),
            SignedDuration::from_mins(90)
        );
    }

    #[test]
    fn bad_lifetimes_are_refused() {
        for bad in ["", "d", "0d", "-1d", "5w", "99999d", "1.5h"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
