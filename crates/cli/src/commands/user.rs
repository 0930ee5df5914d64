//! `gatehouse user add|list|disable`: local people who sign in with a password, managed offline.
//!
//! Like `admin bootstrap`, these commands work directly on the data directory or database URL
//! (server running or not): creating the people who may sign in is an administrator's act on
//! the installation, not something an API caller can do. Every change is audited with actor
//! `local`.
//!
//! A person may also be declared in the pack as a `Person` with the same id. Then the pack is
//! the source of the person's roles and name (reviewed with the rest of the policy) and the
//! `--role`s stored here are only used if the pack stops declaring them; the store proves who
//! someone is (the password), the pack says what they may do.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::clock::Clock;
use gatehouse_core::identity_store::{IdentityStore, LocalUser};
use gatehouse_core::password;
use gatehouse_core::store::{Store, StoreError};
use gatehouse_server::SystemClock;
use serde_json::json;
use zeroize::Zeroizing;

use super::serve::StorageArgs;
use crate::output::outln;
use crate::output::{OutputFormat, print_json};

/// Arguments of `gatehouse user`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a local person (password from stdin with --password-stdin).
    Add(AddArgs),
    /// List local people.
    List(ListArgs),
    /// Disable a person: no more sign-in; their sessions end and API tokens are revoked.
    Disable(DisableArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The person's id (the same id as their pack `Person`, if the pack declares one).
    pub id: String,
    /// Role the person holds when the pack declares no `Person` with this id (repeatable).
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Display name (default: the id; a pack `Person`'s name wins).
    #[arg(long)]
    pub name: Option<String>,
    /// Read the password from standard input (one line). Without it the person has no
    /// password and cannot sign in with one.
    #[arg(long)]
    pub password_stdin: bool,
    /// Check the roles against this pack and show which roles will apply.
    #[arg(long)]
    pub pack: Option<PathBuf>,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct DisableArgs {
    /// The person's id.
    pub id: String,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::runtime::block_on(async move {
        match args.command {
            UserCommand::Add(a) => add(a).await,
            UserCommand::List(a) => list(a).await,
            UserCommand::Disable(a) => disable(a).await,
        }
    })?
}

async fn open(
    storage: &StorageArgs,
) -> anyhow::Result<(
    std::sync::Arc<dyn Store>,
    std::sync::Arc<dyn IdentityStore>,
    String,
)> {
    let config = storage.config()?;
    let (store, identity) = gatehouse_store::open_with_identity(&config)
        .await
        .with_context(|| format!("cannot open the store ({})", config.describe()))?;
    Ok((store, identity, config.describe()))
}

/// A person id: 1 to 128 letters, digits, `.`, `_`, `-` or `@` (ids appear in audit targets
/// and URLs, so no spaces or separators).
fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        bail!("the person id {id:?} must be 1 to 128 letters, digits, '.', '_', '-' or '@'");
    }
    Ok(())
}

fn read_password() -> anyhow::Result<Zeroizing<String>> {
    let mut input = Zeroizing::new(String::new());
    std::io::stdin()
        .take(password::MAX_BYTES as u64 + 3)
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let line = input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(&input);
    if line.contains('\n') {
        bail!("--password-stdin reads one line; the input has several");
    }
    Ok(Zeroizing::new(line.to_owned()))
}

async fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    check_id(&args.id)?;
    let mut roles: Vec<String> = Vec::new();
    for role in &args.roles {
        if role.trim().is_empty() || role.chars().any(char::is_control) {
            bail!("--role {role:?} is not a role id");
        }
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    let display = args.name.clone().unwrap_or_else(|| args.id.clone());
    if display.trim().is_empty() || display.chars().any(char::is_control) {
        bail!("--name must be non-empty without control characters");
    }
    let mut pack_roles: Option<Vec<String>> = None;
    if let Some(dir) = &args.pack {
        let loaded = gatehouse_pack::load(dir)
            .with_context(|| format!("cannot load the policy pack {}", dir.display()))?;
        for role in &roles {
            if loaded.pack.role(role).is_none() {
                bail!(
                    "--role {role}: no Role `{role}` in the pack {}",
                    dir.display()
                );
            }
        }
        pack_roles = loaded
            .pack
            .person(&args.id)
            .map(|p| p.roles.iter().map(|r| r.value.clone()).collect());
    }
    // Hash before opening the store: a weak password is refused without touching anything.
    let password_hash = if args.password_stdin {
        let password = read_password()?;
        let hash = tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .context("the password hashing task failed")??;
        Some(hash)
    } else {
        None
    };

    let (store, identity, described) = open(&args.storage).await?;
    let now = SystemClock.now();
    let user = LocalUser {
        id: args.id.clone(),
        display,
        roles: roles.clone(),
        password_hash,
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    match identity.insert_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => {
            store
                .append_audit(&AuditRecord {
                    at: now,
                    actor: "local".into(),
                    action: "user.create".into(),
                    target: format!("person:{}", args.id),
                    outcome: AuditOutcome::Failed,
                    detail: json!({ "reason": "the person exists" }),
                })
                .await
                .context("cannot audit the refused creation")?;
            bail!("a person with id {} already exists", args.id);
        }
        Err(e) => return Err(e).context("cannot store the person"),
    }
    store
        .append_audit(&AuditRecord {
            at: now,
            actor: "local".into(),
            action: "user.create".into(),
            target: format!("person:{}", args.id),
            outcome: AuditOutcome::Succeeded,
            detail: json!({
                "roles": roles,
                "password": user.password_hash.is_some(),
            }),
        })
        .await
        .context("cannot audit the creation")?;

    let effective = user.effective_roles(pack_roles.clone());
    match args.format {
        OutputFormat::Json => print_json(&json!({
            "id": user.id,
            "display": user.display,
            "roles": user.roles,
            "password": user.password_hash.is_some(),
            "created_at": user.created_at,
            "pack_person": args.pack.as_ref().map(|_| pack_roles.is_some()),
            "effective_roles": args.pack.as_ref().map(|_| effective.clone()),
        }))?,
        OutputFormat::Text => {
            outln!("created person {} ({described})", user.id);
            outln!(
                "roles:    {}",
                if roles.is_empty() {
                    "none".to_owned()
                } else {
                    roles.join(", ")
                }
            );
            if let Some(pack_roles) = &pack_roles {
                outln!(
                    "the pack declares Person {}: its roles apply instead ({})",
                    user.id,
                    if pack_roles.is_empty() {
                        "none".to_owned()
                    } else {
                        pack_roles.join(", ")
                    }
                );
            }
            outln!(
                "password: {}",
                if user.password_hash.is_some() {
                    "set (Argon2id)"
                } else {
                    "none (cannot sign in with a password)"
                }
            );
        }
    }
    Ok(super::EXIT_OK)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let (_, identity, _) = open(&args.storage).await?;
    let users = identity.list_users().await.context("cannot list people")?;
    let now = SystemClock.now();
    match args.format {
        OutputFormat::Json => {
            let users: Vec<_> = users
                .iter()
                .map(|u| {
                    json!({
                        "id": u.id,
                        "display": u.display,
                        "roles": u.roles,
                        "password": u.password_hash.is_some(),
                        "created_at": u.created_at,
                        "disabled_at": u.disabled_at,
                    })
                })
                .collect();
            print_json(&json!({ "users": users }))?;
        }
        OutputFormat::Text => {
            if users.is_empty() {
                outln!("no local people");
            }
            for u in &users {
                outln!(
                    "{}  {}  roles: {}  password: {}  {}",
                    u.id,
                    u.display,
                    if u.roles.is_empty() {
                        "none".to_owned()
                    } else {
                        u.roles.join(",")
                    },
                    if u.password_hash.is_some() {
                        "yes"
                    } else {
                        "no"
                    },
                    if u.is_disabled(now) {
                        "disabled"
                    } else {
                        "active"
                    }
                );
            }
        }
    }
    Ok(super::EXIT_OK)
}

async fn disable(args: DisableArgs) -> anyhow::Result<ExitCode> {
    check_id(&args.id)?;
    let (store, identity, _) = open(&args.storage).await?;
    let now = SystemClock.now();
    let outcome = match identity.disable_user(&args.id, now).await {
        Ok(outcome) => outcome,
        Err(StoreError::NotFound { .. }) => bail!("no person with id {}", args.id),
        Err(e) => return Err(e).context("cannot disable the person"),
    };
    store
        .append_audit(&AuditRecord {
            at: now,
            actor: "local".into(),
            action: "user.disable".into(),
            target: format!("person:{}", args.id),
            outcome: AuditOutcome::Succeeded,
            detail: json!({
                "tokens_revoked": outcome.tokens_revoked,
                "sessions_ended": outcome.sessions_ended,
                "already_disabled": outcome.already_disabled,
            }),
        })
        .await
        .context("cannot audit the disable")?;
    match args.format {
        OutputFormat::Json => print_json(&json!({
            "id": args.id,
            "tokens_revoked": outcome.tokens_revoked,
            "sessions_ended": outcome.sessions_ended,
            "already_disabled": outcome.already_disabled,
        }))?,
        OutputFormat::Text => outln!(
            "disabled {}{}: {} API token(s) revoked, {} session(s) ended",
            args.id,
            if outcome.already_disabled {
                " (was already disabled)"
            } else {
                ""
            },
            outcome.tokens_revoked,
            outcome.sessions_ended
        ),
    }
    Ok(super::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_ids_are_checked() {
        for good in ["alice", "a.b-c_d", "ci@example.com"] {
            check_id(good).unwrap();
        }
        for bad in ["", "with space", "a/b", "x\n", &"a".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
