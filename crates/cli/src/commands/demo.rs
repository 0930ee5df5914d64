//! `gatehouse demo`: the newcomer's first command.
//!
//! It sets up everything `serve` needs in a scratch folder — the example pack, an embedded
//! SQLite store, a few releases and their audit entries — creates an admin API token, starts the
//! server and prints the URL, the token (once) and commands to try. Nothing here is simulated:
//! the records go through the same core validation, store and audit log as real ones.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::clock::Clock;
use gatehouse_core::identity::IssuedToken;
use gatehouse_core::release::{ChangeContext, NewRelease, ReleaseId};
use gatehouse_core::store::{ReleaseQuery, Store};
use gatehouse_pack::Pack;
use gatehouse_server::{AppState, PackSource, SystemClock};
use gatehouse_store::StoreConfig;
use jiff::SignedDuration;
use serde_json::json;

use super::serve::{self, HttpArgs, ShutdownSignal};
use crate::logging;
use crate::output::OutputFormat;
use crate::output::outln;

/// How long the demo admin token stays valid.
const DEMO_TOKEN_LIFETIME: SignedDuration = SignedDuration::from_hours(24);
/// Principal the demo admin token belongs to.
const DEMO_ADMIN: &str = "demo-admin";

/// Arguments of `gatehouse demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the demo's pack and database here (default: a temporary folder removed on exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub http: HttpArgs,
    /// `json` prints the URL and credential as one JSON object (for scripts).
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    logging::init(args.http.log_format);
    // The temporary folder lives until this function returns, i.e. until the server stopped.
    let (data_dir, _temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("gatehouse-demo-")
                .tempdir()
                .context("cannot create a temporary folder for the demo")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let pack_dir = data_dir.join("pack");
    if !pack_dir.exists() {
        super::init::write_example_pack(&pack_dir, false)?;
    }
    let loaded = serve::load_pack_for_serving(&pack_dir)?;

    crate::runtime::block_on(async move {
        let shutdown = ShutdownSignal::install()?;
        let listener = gatehouse_server::bind(args.http.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!("{e}; `gatehouse demo --listen 127.0.0.1:0` picks a free port")
            })?;
        let store = serve::open_store(&StoreConfig::Sqlite {
            data_dir: data_dir.clone(),
        })
        .await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let seeded = seed_releases(store.as_ref(), clock.as_ref(), &loaded.pack).await?;
        let state = gatehouse_server::prepare(
            Arc::clone(&store),
            Arc::clone(&clock),
            PackSource::new(&pack_dir),
            loaded.pack,
        )
        .await
        .context("cannot start the demo server")?;
        audit_seeded(&state, &seeded).await?;
        // The release gate, as `serve` attaches it, so the gate routes answer in the demo.
        super::gate::attach_to_server(
            &state,
            &StoreConfig::Sqlite {
                data_dir: data_dir.clone(),
            },
            &super::gate::ServeGateArgs {
                max_evidence_bytes: gatehouse_server::routes::gate::DEFAULT_MAX_EVIDENCE_BYTES,
            },
        )
        .await?;
        // Evidence sealed at rest under a key generated in the demo's data directory.
        super::keys::attach_vault(
            &state,
            &StoreConfig::Sqlite {
                data_dir: data_dir.clone(),
            },
            &data_dir,
            super::keys::keyring_for_server(
                &super::keys::KeyArgs::default(),
                &StoreConfig::Sqlite {
                    data_dir: data_dir.clone(),
                },
            )?,
        )
        .await?;
        // The audit log's signing key and tree heads, as `serve` attaches them.
        super::audit::attach_to_server(
            &state,
            &serve::StorageArgs {
                data_dir: data_dir.clone(),
                database_url: None,
            },
            &super::audit::AuditLogArgs {
                audit_signing_key: None,
                audit_head_every: gatehouse_server::audit_log::DEFAULT_HEAD_EVERY,
            },
        )
        .await?;
        // Sign-in, sessions and token management, as `serve` attaches them.
        crate::identity::attach_to_server(
            &state,
            &StoreConfig::Sqlite {
                data_dir: data_dir.clone(),
            },
            &crate::identity::IdentityArgs::default(),
        )
        .await?;
        let token = issue_admin_token(&state).await?;
        let people = issue_people_tokens(&state).await?;
        let banner = Banner {
            token,
            people,
            data_dir: data_dir.clone(),
            pack_dir: pack_dir.clone(),
            temporary: args.data_dir.is_none(),
            format: args.format,
        };
        serve::serve(
            listener,
            args.http.server_config(),
            state,
            shutdown,
            |url| banner.print(url),
        )
        .await
    })??;
    Ok(super::EXIT_OK)
}

/// A release created by the seed, for its audit entry.
struct Seeded {
    id: ReleaseId,
    submitter: String,
    service: String,
    version: String,
    release_class: String,
}

/// Creates a few releases (only into an empty store, so a reused `--data-dir` is not
/// duplicated), using ids that exist in the served pack.
async fn seed_releases(
    store: &dyn Store,
    clock: &dyn Clock,
    pack: &Pack,
) -> anyhow::Result<Vec<Seeded>> {
    let existing = store
        .list_releases(&ReleaseQuery {
            service: None,
            limit: 1,
        })
        .await
        .context("cannot read the demo store")?;
    if !existing.is_empty() {
        return Ok(Vec::new());
    }
    let class_ids: Vec<String> = pack.release_classes().map(|c| c.id.value.clone()).collect();
    let pick_class = |preferred: &str| {
        class_ids
            .iter()
            .find(|id| id.as_str() == preferred)
            .or_else(|| class_ids.first())
            .cloned()
    };
    let owner = pack
        .teams()
        .map(|t| t.id.value.clone())
        .next()
        .or_else(|| pack.people().map(|p| p.id.value.clone()).next());
    let submitter = pack
        .holders_of("submitter")
        .map(|p| p.id.value.clone())
        .next()
        .unwrap_or_else(|| DEMO_ADMIN.to_owned());
    let (Some(owner), Some(_)) = (owner, class_ids.first()) else {
        tracing::warn!("the demo pack has no release class or owner; no releases seeded");
        return Ok(Vec::new());
    };

    let samples = [
        (
            "payments",
            "2.14.0",
            "normal",
            "Rotate card tokenisation keys",
            "CHG-1042",
            'a',
        ),
        (
            "ledger",
            "1.3.1",
            "normal",
            "Upgrade TLS library to fix CVE-2026-1234",
            "CHG-1043",
            'b',
        ),
        (
            "kms-proxy",
            "0.9.2",
            "emergency",
            "Revoke compromised signing key",
            "INC-77",
            'c',
        ),
    ];
    let mut seeded = Vec::new();
    for (service, version, class, summary, ticket, digest_char) in samples {
        let Some(release_class) = pick_class(class) else {
            continue;
        };
        let now = clock.now();
        let request = NewRelease {
            service: service.into(),
            version: version.into(),
            release_class: release_class.clone(),
            artifact_digests: vec![format!("sha256:{}", digest_char.to_string().repeat(64))],
            owner: owner.clone(),
            change: ChangeContext {
                summary: summary.into(),
                ticket: Some(ticket.into()),
                pull_request: None,
            },
            target_environment: "production".into(),
        };
        let release = request
            .into_release(ReleaseId::generate(now)?, &submitter, now)
            .context("a demo release is invalid")?;
        store
            .create_release(&release)
            .await
            .context("cannot store a demo release")?;
        seeded.push(Seeded {
            id: release.id,
            submitter: submitter.clone(),
            service: service.into(),
            version: version.into(),
            release_class,
        });
    }
    Ok(seeded)
}

async fn audit_seeded(state: &AppState, seeded: &[Seeded]) -> anyhow::Result<()> {
    for release in seeded {
        gatehouse_server::audit::append(
            state,
            &release.submitter,
            "release.create",
            &format!("release:{}", release.id),
            AuditOutcome::Succeeded,
            json!({
                "service": release.service,
                "version": release.version,
                "release_class": release.release_class,
                "seeded_by": "gatehouse demo",
            }),
        )
        .await
        .context("cannot audit a demo release")?;
    }
    Ok(())
}

/// The demo admin token, and its record in the store and the audit log.
async fn issue_admin_token(state: &AppState) -> anyhow::Result<IssuedToken> {
    let now = state.clock().now();
    let expires_at = now
        .checked_add(DEMO_TOKEN_LIFETIME)
        .context("cannot compute the demo token's expiry")?;
    let issued = IssuedToken::generate(DEMO_ADMIN, vec!["admin".into()], now, Some(expires_at))?;
    state
        .store()
        .insert_api_token(issued.record())
        .await
        .context("cannot store the demo API token")?;
    gatehouse_server::audit::append(
        state,
        "system:demo",
        "token.create",
        &format!("token:{}", issued.record().id),
        AuditOutcome::Succeeded,
        json!({ "principal": DEMO_ADMIN, "roles": ["admin"], "expires_at": expires_at }),
    )
    .await
    .context("cannot audit the demo API token")?;
    Ok(issued)
}

/// Pack people whose tokens the demo prints, so the release-gate tour (submitter, approver,
/// security lead) can be walked with separation of duties.
const DEMO_PEOPLE: [&str; 3] = ["alice", "bob", "carol"];

/// A token per [`DEMO_PEOPLE`] member the pack defines, carrying that person's pack roles (the
/// gate reads the same roles from the pack), each recorded in the audit log.
async fn issue_people_tokens(state: &AppState) -> anyhow::Result<Vec<(String, IssuedToken)>> {
    let pack = state.pack();
    let now = state.clock().now();
    let expires_at = now
        .checked_add(DEMO_TOKEN_LIFETIME)
        .context("cannot compute the demo token's expiry")?;
    let mut issued = Vec::new();
    for id in DEMO_PEOPLE {
        let Some(person) = pack.pack.person(id) else {
            continue;
        };
        let roles: Vec<String> = person.roles.iter().map(|r| r.value.clone()).collect();
        let token = IssuedToken::generate(id, roles.clone(), now, Some(expires_at))?;
        state
            .store()
            .insert_api_token(token.record())
            .await
            .context("cannot store a demo API token")?;
        gatehouse_server::audit::append(
            state,
            "system:demo",
            "token.create",
            &format!("token:{}", token.record().id),
            AuditOutcome::Succeeded,
            json!({ "principal": id, "roles": roles, "expires_at": expires_at }),
        )
        .await
        .context("cannot audit a demo API token")?;
        issued.push((id.to_owned(), token));
    }
    Ok(issued)
}

/// What the demo prints once it is listening.
struct Banner {
    token: IssuedToken,
    /// (person id, token) of [`DEMO_PEOPLE`].
    people: Vec<(String, IssuedToken)>,
    data_dir: PathBuf,
    pack_dir: PathBuf,
    temporary: bool,
    format: OutputFormat,
}

impl Banner {
    fn print(&self, url: &str) {
        let record = self.token.record();
        if self.format == OutputFormat::Json {
            let value = json!({
                "url": url,
                "token": self.token.token(),
                "token_id": record.id.to_string(),
                "principal": record.principal,
                "expires_at": record.expires_at,
                "data_dir": self.data_dir.display().to_string(),
                "pack_dir": self.pack_dir.display().to_string(),
                "people": self
                    .people
                    .iter()
                    .map(|(id, t)| (id.clone(), json!(t.token())))
                    .collect::<serde_json::Map<_, _>>(),
            });
            outln!("{value}");
            return;
        }
        let exe = current_exe_for_display();
        let token = self.token.token();
        let expires = record
            .expires_at
            .map_or_else(|| "never".to_owned(), |t| t.to_string());
        outln!("gatehouse demo is running at {url}");
        outln!();
        outln!(
            "  data: {}{}",
            self.data_dir.display(),
            if self.temporary {
                " (SQLite; removed when the demo stops)"
            } else {
                " (SQLite)"
            }
        );
        outln!(
            "  pack: {} (the example pack; edit it, then reload)",
            self.pack_dir.display()
        );
        outln!();
        outln!("Demo admin API token (shown only now; expires {expires}):");
        outln!("  {token}");
        outln!();
        if !self.people.is_empty() {
            outln!("Tokens of pack people for the release-gate tour (roles from the pack):");
            for (id, token) in &self.people {
                outln!("  {id}: {}", token.token());
            }
            outln!();
        }
        outln!("Try:");
        outln!("  curl -H 'Authorization: Bearer {token}' {url}/api/v1/releases");
        outln!("  export GATEHOUSE_SERVER={url} GATEHOUSE_TOKEN={token}");
        outln!("  {exe} release list");
        outln!("  {exe} pack status");
        outln!();
        outln!("Metrics: {url}/metrics   API description: {url}/api/openapi.json");
        outln!("Press Ctrl-C to stop.");
    }
}

/// How to invoke this binary again, for the printed examples.
fn current_exe_for_display() -> String {
    std::env::current_exe()
        .ok()
        .filter(|p| p.is_absolute())
        .map_or_else(|| "gatehouse".to_owned(), |p| display_path(&p))
}

fn display_path(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains(char::is_whitespace) {
        format!("'{text}'")
    } else {
        text
    }
}
