//! `gatehouse token create|list|revoke`: API tokens of the caller, through the server's API.
//!
//! The new token acts as the caller (`GATEHOUSE_TOKEN`), with roles the caller holds, and is
//! printed once. The first admin token, when no credential exists yet, comes from
//! `gatehouse admin bootstrap` instead (offline).

use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_server::routes::tokens::{CreateToken, CreatedToken, TokenList, TokenView};
use jiff::SignedDuration;
use reqwest::Method;

use crate::client::{ApiClient, ServerArgs};
use crate::output::outln;
use crate::output::{OutputFormat, print_json};

/// Arguments of `gatehouse token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an API token acting as you, with some of your roles; printed once.
    Create(CreateArgs),
    /// List your API tokens (never their secrets); admins may list everyone's with --all.
    List(ListArgs),
    /// Revoke an API token by id.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Role the token carries (repeatable); you must hold it (an admin may grant any role).
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// Lifetime, e.g. 30d, 12h, 90m.
    #[arg(long, default_value = "30d", value_parser = crate::identity::parse_duration)]
    pub expires: SignedDuration,
    /// What the token is for, e.g. "ci payments".
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Every principal's tokens (admin only).
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Token id (24 hex digits; `token list` shows it, and it is the part after `gh_`).
    pub id: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::runtime::block_on(async move {
        match args.command {
            TokenCommand::Create(a) => create(a).await,
            TokenCommand::List(a) => list(a).await,
            TokenCommand::Revoke(a) => revoke(a).await,
        }
    })?
}

async fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let seconds = u64::try_from(args.expires.as_secs()).context("--expires must be positive")?;
    let body = CreateToken {
        roles: args.roles,
        expires_in_secs: Some(seconds),
        label: args.label,
    };
    let created: CreatedToken = client
        .post("api/v1/tokens", &body)
        .await
        .context("cannot create the token")?;
    match args.format {
        OutputFormat::Json => print_json(&created)?,
        OutputFormat::Text => {
            let v = &created.view;
            outln!(
                "token {} for {} (roles: {}; expires {}); it is shown only now:",
                v.id,
                v.principal,
                v.roles.join(", "),
                v.expires_at
                    .map_or_else(|| "never".to_owned(), |at| at.to_string())
            );
            outln!("{}", created.token);
        }
    }
    Ok(super::EXIT_OK)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.server)?;
    let path = if args.all {
        "api/v1/tokens?all=true"
    } else {
        "api/v1/tokens"
    };
    let list: TokenList = client.get(path).await.context("cannot list tokens")?;
    match args.format {
        OutputFormat::Json => print_json(&list)?,
        OutputFormat::Text => {
            if list.tokens.is_empty() {
                outln!("no tokens");
            }
            for t in &list.tokens {
                print_token(t);
            }
        }
    }
    Ok(super::EXIT_OK)
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    // Accept a whole token too (`gh_<id>_<secret>`), but never send its secret anywhere.
    let id = args
        .id
        .strip_prefix("gh_")
        .and_then(|rest| rest.split('_').next())
        .unwrap_or(&args.id);
    if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{:?} is not a token id (24 hex digits)",
            args.id.chars().take(30).collect::<String>()
        );
    }
    let client = ApiClient::new(&args.server)?;
    let view: TokenView = client
        .send::<(), _>(Method::DELETE, &format!("api/v1/tokens/{id}"), None)
        .await
        .with_context(|| format!("cannot revoke token {id}"))?;
    match args.format {
        OutputFormat::Json => print_json(&view)?,
        OutputFormat::Text => {
            outln!("revoked token {}", view.id);
            print_token(&view);
        }
    }
    Ok(super::EXIT_OK)
}

fn print_token(t: &TokenView) {
    outln!(
        "{}  {}  {}  roles: {}  expires: {}{}",
        t.id,
        t.state,
        t.principal,
        t.roles.join(","),
        t.expires_at
            .map_or_else(|| "never".to_owned(), |at| at.to_string()),
        t.label
            .as_ref()
            .map_or_else(String::new, |l| format!("  label: {l}"))
    );
}
