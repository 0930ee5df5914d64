//! `/api/v1/releases/{id}/…`: the release gate over HTTP — evidence upload, verdict, approvals,
//! exceptions, requirement statuses, risks, bypass and the security release memo.
//!
//! Handlers stay thin: they authenticate and authorize (deny by default), load the release's
//! gate state, call the pure decision function in `gatehouse_core::gate` with the pack snapshot
//! in force and the server clock, write the record through the `GateStore` port and append the
//! outcome to the audit log. Every write names the revision it was decided on; when another
//! write got in first the store refuses it and the handler decides again on the new state (up
//! to [`WRITE_ATTEMPTS`] times), so an approval racing an evidence upload is judged on the
//! state that really includes the upload.
//!
//! Whom the gate sees: the caller's id, and — when that id is a `Person` of the pack — the
//! roles the pack gives that person. Token roles (e.g. `admin`) open the API, but only the
//! pack says who is an approver or a security lead, so an API token cannot make anyone an
//! approver the policy does not name.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::blobs::PutOutcome;
use gatehouse_core::gate::store::{
    GateRecord, GateStore, GateWrite, GateWriteError, StoredEvidence,
};
use gatehouse_core::gate::{
    self, Actor, ApprovalDecision, ApprovalRequest, ApprovalTarget, Attachment, EvidenceFacts,
    Exception, ExceptionScope, GateVerdict, NewEvidence, PrincipalKind, ReleaseGateState,
    RequirementStatus, Risk, RiskStatus,
};
use gatehouse_core::identity::Principal;
use gatehouse_core::release::{Release, ReleaseId};
use gatehouse_evidence::{EvidenceKind, Limits};
use gatehouse_pack::model::{ReleaseClass, RiskModel};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::auth::Authenticated;
use crate::authz::{self, Permission};
use crate::error::ApiError;
use crate::json_body::ApiJson;
use crate::pack_state::PackSnapshot;
use crate::state::AppState;
use crate::vault::{SealedSpool, SpoolWriter, Vault, VaultError};

/// How often a write is decided again after another write moved the release.
pub const WRITE_ATTEMPTS: usize = 3;
/// Default largest evidence upload. Uploads stream through a sealed spool file and the
/// database in chunks, so this bounds disk use and upload time, not memory; the binary may set
/// another (`Gate::new`, `serve --max-evidence-bytes`).
pub const DEFAULT_MAX_EVIDENCE_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Body frames buffered between the request and the spool writer thread.
const SPOOL_QUEUE_FRAMES: usize = 16;
/// Most parsed facts kept in memory; the cache is emptied when it is full.
const FACTS_CACHE_ENTRIES: usize = 4096;

/// The release gate's handle in the server: its store, the evidence vault (sealed blobs), the
/// upload limit and a cache of the facts parsed from stored evidence (facts are a function of
/// kind and bytes, so a cached entry never goes stale).
pub struct Gate {
    store: Arc<dyn GateStore>,
    /// Attached once by the binary, when it has a keyring ([`Gate::attach_vault`]).
    vault: std::sync::OnceLock<Arc<Vault>>,
    max_evidence_bytes: u64,
    facts: Mutex<HashMap<(String, String), EvidenceFacts>>,
}

impl Gate {
    /// A gate without evidence storage (uploads answer 503) until [`Gate::attach_vault`].
    pub fn new(store: Arc<dyn GateStore>, max_evidence_bytes: u64) -> Self {
        Self {
            store,
            vault: std::sync::OnceLock::new(),
            max_evidence_bytes,
            facts: Mutex::new(HashMap::new()),
        }
    }

    /// Stores evidence sealed in `vault` from now on; only the first call has an effect.
    pub fn attach_vault(&self, vault: Arc<Vault>) {
        let _ = self.vault.set(vault);
    }

    fn vault(&self) -> Result<&Arc<Vault>, ApiError> {
        self.vault.get().ok_or_else(|| {
            ApiError::Unavailable(
                "evidence storage is not enabled on this server (no key-encryption key)".into(),
            )
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            max_bytes: self.max_evidence_bytes,
            ..Limits::default()
        }
    }

    fn cached(&self, key: &(String, String)) -> Option<EvidenceFacts> {
        self.facts.lock().ok().and_then(|m| m.get(key).cloned())
    }

    fn remember(&self, key: (String, String), facts: EvidenceFacts) {
        if let Ok(mut map) = self.facts.lock() {
            if map.len() >= FACTS_CACHE_ENTRIES {
                map.clear();
            }
            map.insert(key, facts);
        }
    }

    /// The store port, for walks over many releases (the gate metrics).
    pub(crate) fn store(&self) -> &dyn GateStore {
        self.store.as_ref()
    }

    /// The gate state of `release` as stored. Without `with_facts` no evidence is opened and
    /// every item's facts are `Unreadable`: for callers that never evaluate the state (the
    /// metrics of a release submitted outside their period).
    pub(crate) async fn state_of(
        &self,
        release: Release,
        with_facts: bool,
    ) -> Result<ReleaseGateState, ApiError> {
        let records = self
            .store
            .load_gate_records(release.id)
            .await
            .map_err(|e| ApiError::internal("reading the gate state", e))?;
        let mut facts = HashMap::new();
        if with_facts {
            for item in &records.evidence {
                facts.insert(item.id.clone(), self.facts_of(item).await?);
            }
        }
        Ok(records.into_state(release, |item| {
            facts
                .remove(&item.id)
                .unwrap_or_else(|| EvidenceFacts::Unreadable {
                    reason: "facts were not loaded".into(),
                })
        }))
    }

    /// The facts of a stored item: cached, or parsed again from its stored bytes. A blob that
    /// is missing or no longer parses gives `Unreadable`, which the gate blocks on by name.
    async fn facts_of(&self, item: &StoredEvidence) -> Result<EvidenceFacts, ApiError> {
        let key = (item.sha256.clone(), item.kind.to_string());
        if let Some(facts) = self.cached(&key) {
            return Ok(facts);
        }
        // A key missing from the keyring (or any other failure to open the sealed bytes) is
        // not cached: it names the key id, and adding the key back must fix it.
        let opened = match self.vault() {
            Ok(vault) => vault.open(&item.sha256).await,
            Err(e) => {
                return Ok(EvidenceFacts::Unreadable {
                    reason: e.to_string(),
                });
            }
        };
        let reader = match opened {
            Ok(Some(reader)) => reader,
            Ok(None) => {
                return Ok(EvidenceFacts::Unreadable {
                    reason: format!("the stored bytes sha256:{} are missing", item.sha256),
                });
            }
            Err(VaultError::Store(e)) => return Err(ApiError::internal("reading evidence", e)),
            Err(e) => {
                tracing::warn!(sha256 = %item.sha256, error = %e, "cannot open stored evidence");
                return Ok(EvidenceFacts::Unreadable {
                    reason: format!(
                        "the stored bytes sha256:{} cannot be opened: {e}",
                        item.sha256
                    ),
                });
            }
        };
        let kind = item.kind.clone();
        let limits = self.limits();
        let parsed =
            tokio::task::spawn_blocking(move || gatehouse_evidence::parse(&kind, reader, &limits))
                .await
                .map_err(|e| ApiError::internal("parsing evidence", e))?;
        let facts = match parsed {
            Ok(p) => EvidenceFacts::Parsed(p.facts),
            Err(e) => EvidenceFacts::Unreadable {
                reason: e.to_string(),
            },
        };
        self.remember(key, facts.clone());
        Ok(facts)
    }
}

/// The gate of the running server, or 503 when the binary did not attach one.
pub(crate) fn gate_of(state: &AppState) -> Result<Arc<Gate>, ApiError> {
    state.gate().cloned().ok_or_else(|| {
        ApiError::Unavailable("the release gate is not enabled on this server".into())
    })
}

fn parse_release_id(id: &str) -> Result<ReleaseId, ApiError> {
    id.parse()
        .map_err(|e: gatehouse_core::release::InvalidReleaseId| {
            ApiError::invalid_field("id", e.to_string())
        })
}

/// The release and its gate state.
/// [`load`], then refuses (403, audited) a principal confined to other services: the service
/// is known only once the release is loaded, so every handler that acts on a release loads it
/// through here.
pub(crate) async fn load_in_scope(
    state: &AppState,
    gate: &Gate,
    id: ReleaseId,
    principal: &Principal,
    permission: Permission,
) -> Result<ReleaseGateState, ApiError> {
    let current = load(state, gate, id).await?;
    authz::require_service(
        state,
        principal,
        permission,
        &current.release.service,
        &format!("release:{id}"),
    )
    .await?;
    Ok(current)
}

pub(crate) async fn load(
    state: &AppState,
    gate: &Gate,
    id: ReleaseId,
) -> Result<ReleaseGateState, ApiError> {
    let release: Release = state
        .store()
        .get_release(id)
        .await
        .map_err(|e| ApiError::internal("reading a release", e))?
        .ok_or_else(|| ApiError::NotFound(format!("release {id} not found")))?;
    gate.state_of(release, true).await
}

/// The caller as the gate sees it: the pack's roles when the caller is a pack `Person`.
fn gate_principal(pack: &PackSnapshot, principal: &Principal) -> (Principal, PrincipalKind) {
    match pack.pack.person(&principal.id) {
        Some(person) => {
            let gate_principal = Principal {
                id: principal.id.clone(),
                display: person.name.clone(),
                roles: person.roles.iter().map(|r| r.value.clone()).collect(),
                auth_method: principal.auth_method,
                service_scope: principal.service_scope.clone(),
            };
            let kind = PrincipalKind::of(&gate_principal, true);
            (gate_principal, kind)
        }
        None => (principal.clone(), PrincipalKind::Pipeline),
    }
}

fn class_of<'p>(
    pack: &'p PackSnapshot,
    state: &ReleaseGateState,
) -> Result<(&'p ReleaseClass, Option<&'p RiskModel>), ApiError> {
    let class = pack
        .pack
        .release_class(&state.release.release_class)
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "release class `{}` is not in the pack in force; the gate blocks this release",
                state.release.release_class
            ))
        })?;
    Ok((class, gate::risk_model_for(&pack.pack, class)))
}

/// Writes `record` decided on `based_on`; `Ok(false)` when another write moved the release
/// first (decide again).
async fn try_write(
    gate: &Gate,
    release: ReleaseId,
    based_on: u64,
    record: GateRecord,
) -> Result<bool, ApiError> {
    let write = GateWrite {
        release,
        based_on,
        record,
    };
    match gate.store.write_gate_record(&write).await {
        Ok(()) => Ok(true),
        Err(GateWriteError::Moved { .. }) => Ok(false),
        Err(GateWriteError::Store(gatehouse_core::store::StoreError::Conflict { what })) => {
            Err(ApiError::Conflict(format!(
                "{what} already exists; check the release and try again"
            )))
        }
        Err(GateWriteError::Store(e)) => Err(ApiError::internal("writing the gate state", e)),
    }
}

fn moved_too_often(id: ReleaseId) -> ApiError {
    ApiError::Conflict(format!(
        "release {id} kept changing while this request was decided ({WRITE_ATTEMPTS} attempts); \
         try again"
    ))
}

/// Records a denial of a gate rule in the audit log and returns it as 403/409.
async fn refuse(
    state: &AppState,
    principal: &Principal,
    action: &str,
    target: &str,
    reason: String,
    status: StatusCode,
) -> ApiError {
    audit::append_or_log(
        state,
        &principal.id,
        action,
        target,
        AuditOutcome::Denied,
        json!({ "reason": reason }),
    )
    .await;
    if status == StatusCode::FORBIDDEN {
        ApiError::Forbidden(reason)
    } else {
        ApiError::Conflict(reason)
    }
}

async fn succeeded(
    state: &AppState,
    principal: &Principal,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    audit::append(
        state,
        &principal.id,
        action,
        target,
        AuditOutcome::Succeeded,
        detail,
    )
    .await
    .map(|_| ())
    .map_err(|e| ApiError::internal("appending to the audit log", e))
}

/// A gate record decided on the release's current state, with the handler's answer and the
/// audit entry's detail.
struct Decided {
    record: GateRecord,
    receipt: GateReceipt,
    detail: serde_json::Value,
}

/// Why a write handler does not record anything on the current state.
enum Refusal {
    /// A gate rule refuses the caller: audited as denied, answered 403 or 409.
    Rule { reason: String, status: StatusCode },
    /// Not a rule decision (bad request, no such class): answered as is, not audited.
    Error(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Error(e)
    }
}

/// The loop every gate write shares: load the release in the caller's scope, `decide` on it
/// with the pack in force and the clock, write the record only if nobody moved the release
/// meanwhile (else decide again, up to [`WRITE_ATTEMPTS`] times), and audit the outcome.
#[allow(clippy::too_many_arguments)]
async fn decide_and_write(
    state: &AppState,
    gate: &Gate,
    release: ReleaseId,
    principal: &Principal,
    permission: Permission,
    action: &str,
    target: &str,
    mut decide: impl FnMut(&ReleaseGateState, &PackSnapshot, Timestamp) -> Result<Decided, Refusal>,
) -> Result<GateReceipt, ApiError> {
    for _ in 0..WRITE_ATTEMPTS {
        let current = load_in_scope(state, gate, release, principal, permission).await?;
        let pack = state.pack();
        let decided = match decide(&current, &pack, state.clock().now()) {
            Ok(decided) => decided,
            Err(Refusal::Rule { reason, status }) => {
                return Err(refuse(state, principal, action, target, reason, status).await);
            }
            Err(Refusal::Error(e)) => return Err(e),
        };
        if try_write(gate, release, current.revision(), decided.record).await? {
            succeeded(state, principal, action, target, decided.detail).await?;
            return Ok(decided.receipt);
        }
    }
    Err(moved_too_often(release))
}

// ---------------------------------------------------------------------------------------------
// Evidence

/// Query of `POST /api/v1/releases/{id}/evidence`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// Evidence kind: sarif, cyclonedx, spdx, openvex, junit, in-toto, or a document kind.
    pub kind: String,
    /// Id of an earlier item of the same kind this one replaces.
    pub supersedes: Option<String>,
}

/// Answer to an evidence upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceReceipt {
    /// `attached`, or `already_attached` for an idempotent re-upload.
    pub status: String,
    pub id: String,
    pub kind: String,
    pub sha256: String,
    pub size: u64,
    /// The release's revision after the upload.
    pub revision: u64,
}

/// Attaches evidence: the body is the file, parsed as `kind` before anything is stored.
pub async fn attach_evidence(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    query: Result<Query<EvidenceQuery>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let target = format!("release:{id}");
    authz::require(&state, &principal, Permission::EvidenceAttach, &target).await?;
    let gate = gate_of(&state)?;
    let release = parse_release_id(&id)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let kind = EvidenceKind::from_str(&query.kind)
        .map_err(|e| ApiError::invalid_field("kind", e.to_string()))?;
    // Refuse an unknown release, and a principal confined to other services, before reading
    // a possibly large body.
    load_in_scope(
        &state,
        &gate,
        release,
        &principal,
        Permission::EvidenceAttach,
    )
    .await?;

    let vault = Arc::clone(gate.vault()?);
    let limit = gate.max_evidence_bytes;
    let failed = |reason: String| {
        let state = state.clone();
        let actor = principal.id.clone();
        let target = target.clone();
        let kind = kind.to_string();
        async move {
            audit::append_or_log(
                &state,
                &actor,
                "evidence.attach",
                &target,
                AuditOutcome::Failed,
                json!({ "kind": kind, "reason": reason }),
            )
            .await;
        }
    };

    // 1. Spool: the body is sealed into a file in the data directory as it arrives, while its
    //    SHA-256 and size are counted; nothing is kept in memory and the file is deleted when
    //    `spool` is dropped, on every path.
    let spool = match spool_body(&vault, body, limit).await {
        Ok(spool) => spool,
        Err(SpoolFailure::TooLarge) => {
            let reason = format!(
                "the evidence is larger than the server's evidence size limit \
                 (max_evidence_bytes = {limit} bytes); nothing was stored"
            );
            failed(reason.clone()).await;
            return Err(ApiError::PayloadTooLarge(reason));
        }
        Err(SpoolFailure::Body(e)) => {
            let reason = format!("the upload was cut off: {e}; nothing was stored");
            failed(reason.clone()).await;
            return Err(ApiError::BadRequest(reason));
        }
        Err(SpoolFailure::Vault(e)) => return Err(ApiError::internal("spooling evidence", e)),
    };

    // 2. Parse the spooled plaintext (read back through the opening reader) before storing.
    let limits = gate.limits();
    let parse_kind = kind.clone();
    let parse_vault = Arc::clone(&vault);
    let (spool, parsed) = tokio::task::spawn_blocking(move || {
        let parsed = parse_vault
            .spool_reader(&spool)
            .map_err(|e| e.to_string())
            .map(|reader| gatehouse_evidence::parse(&parse_kind, reader, &limits));
        (spool, parsed)
    })
    .await
    .map_err(|e| ApiError::internal("parsing evidence", e))?;
    let parsed = match parsed {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(e)) => {
            let reason = format!("{e}; nothing was stored");
            failed(reason.clone()).await;
            return Err(match e {
                gatehouse_evidence::EvidenceError::TooLarge { .. } => {
                    ApiError::PayloadTooLarge(reason)
                }
                _ => ApiError::invalid_field("body", reason),
            });
        }
        Err(e) => return Err(ApiError::internal("reading the evidence spool", e)),
    };
    gate.remember(
        (spool.sha256.clone(), kind.to_string()),
        EvidenceFacts::Parsed(parsed.facts.clone()),
    );

    // 3. Decide, store the sealed blob (once per digest), write the evidence row. A blob this
    //    request stored is removed again if no evidence row ends up referring to it.
    let mut stored_here = false;
    let outcome = attach_spooled(
        &state,
        &gate,
        &vault,
        &principal,
        &target,
        release,
        &kind,
        query.supersedes.as_deref(),
        &spool,
        parsed.facts,
        &mut stored_here,
    )
    .await;
    if outcome.is_err()
        && stored_here
        && let Err(e) = vault.discard_unreferenced(&spool.sha256).await
    {
        tracing::error!(sha256 = %spool.sha256, error = %e,
            "cannot remove the blob of a failed evidence upload");
    }
    outcome
}

/// Why an upload could not be spooled.
enum SpoolFailure {
    TooLarge,
    Body(axum::Error),
    Vault(VaultError),
}

/// Streams `body` into a sealed spool file on a blocking thread (hashing, counting and
/// sealing are CPU and file work), refusing more than `limit` bytes as soon as they arrive.
async fn spool_body(
    vault: &Arc<Vault>,
    body: Body,
    limit: u64,
) -> Result<SealedSpool, SpoolFailure> {
    use http_body_util::BodyExt as _;
    let mut writer = vault.spool(limit).map_err(SpoolFailure::Vault)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(SPOOL_QUEUE_FRAMES);
    let worker = tokio::task::spawn_blocking(move || {
        while let Some(bytes) = rx.blocking_recv() {
            writer.write(&bytes)?;
        }
        Ok::<SpoolWriter, VaultError>(writer)
    });
    let mut body = body;
    let mut received: u64 = 0;
    let mut body_error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                let Ok(bytes) = frame.into_data() else {
                    continue;
                };
                received = received.saturating_add(bytes.len() as u64);
                if received > limit {
                    break;
                }
                if tx.send(bytes).await.is_err() {
                    // The writer stopped (its error is reported below).
                    break;
                }
            }
            Err(e) => {
                body_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = worker
        .await
        .map_err(|e| SpoolFailure::Vault(VaultError::Io(std::io::Error::other(e))))?;
    if received > limit {
        return Err(SpoolFailure::TooLarge);
    }
    if let Some(e) = body_error {
        return Err(SpoolFailure::Body(e));
    }
    match written {
        Ok(writer) => writer.finish().map_err(SpoolFailure::Vault),
        Err(VaultError::TooLarge { .. }) => Err(SpoolFailure::TooLarge),
        Err(e) => Err(SpoolFailure::Vault(e)),
    }
}

/// The decide–store–write loop of an upload whose bytes are spooled and parsed. Sets
/// `stored_here` once this request has stored the blob (so the caller can remove it if no
/// evidence row ends up referring to it).
#[allow(clippy::too_many_arguments)]
async fn attach_spooled(
    state: &AppState,
    gate: &Gate,
    vault: &Vault,
    principal: &Principal,
    target: &str,
    release: ReleaseId,
    kind: &EvidenceKind,
    supersedes: Option<&str>,
    spool: &SealedSpool,
    facts: gatehouse_evidence::Facts,
    stored_here: &mut bool,
) -> Result<Response, ApiError> {
    let mut blob_stored = false;
    for _ in 0..WRITE_ATTEMPTS {
        let current = load(state, gate, release).await?;
        let now = state.clock().now();
        let new = NewEvidence {
            kind: kind.clone(),
            sha256: spool.sha256.clone(),
            size: spool.size,
            facts: EvidenceFacts::Parsed(facts.clone()),
            supersedes: supersedes.map(str::to_owned),
        };
        let item_id = format!("ev-{}", current.evidence.len() + 1);
        let attachment = match gate::attach_evidence(&current, new, item_id, &principal.id, now) {
            Ok(a) => a,
            Err(e) => {
                return Err(refuse(
                    state,
                    principal,
                    "evidence.attach",
                    target,
                    e.to_string(),
                    StatusCode::CONFLICT,
                )
                .await);
            }
        };
        let item = match attachment {
            Attachment::AlreadyAttached { existing } => {
                succeeded(
                    state,
                    principal,
                    "evidence.attach",
                    target,
                    json!({ "status": "already_attached", "evidence": existing,
                            "sha256": spool.sha256, "kind": kind.to_string() }),
                )
                .await?;
                let receipt = EvidenceReceipt {
                    status: "already_attached".into(),
                    id: existing,
                    kind: kind.to_string(),
                    sha256: spool.sha256.clone(),
                    size: spool.size,
                    revision: current.revision(),
                };
                return Ok((StatusCode::OK, Json(receipt)).into_response());
            }
            Attachment::New(item) => item,
        };
        if !blob_stored {
            // Content-addressed: bytes another release already attached are not stored again.
            let put = vault
                .put(spool, now)
                .await
                .map_err(|e| ApiError::internal("storing evidence", e))?;
            *stored_here = put == PutOutcome::Stored;
            blob_stored = true;
        }
        let stored = StoredEvidence {
            id: item.id.clone(),
            kind: item.kind.clone(),
            sha256: item.sha256.clone(),
            size: item.size,
            attached_at: item.attached_at,
            attached_by: item.attached_by.clone(),
            supersedes: item.supersedes.clone(),
            revision: item.revision,
        };
        let record = GateRecord::Evidence { item: stored };
        if try_write(gate, release, current.revision(), record).await? {
            succeeded(
                state,
                principal,
                "evidence.attach",
                target,
                json!({ "evidence": item.id, "kind": kind.to_string(),
                        "sha256": item.sha256, "size": item.size, "revision": item.revision,
                        "kek_id": vault.keyring().active().map(|k| k.id().to_string()) }),
            )
            .await?;
            let receipt = EvidenceReceipt {
                status: "attached".into(),
                id: item.id.clone(),
                kind: kind.to_string(),
                sha256: item.sha256.clone(),
                size: item.size,
                revision: item.revision,
            };
            return Ok((StatusCode::CREATED, Json(receipt)).into_response());
        }
    }
    Err(moved_too_often(release))
}

// ---------------------------------------------------------------------------------------------
// Verdict and memo

/// The gate's verdict now, with the pack in force and the server clock.
#[utoipa::path(get, path = "/api/v1/releases/{id}/verdict", tag = "gate",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id (UUID)")),
    responses(
        (status = 200, description = "pass, pending or blocked, one result per category, every reason naming its rule and evidence", body = crate::routes::gate_schema::GateVerdictSchema),
        (status = 400, description = "Invalid request; `field` and `problems` name what to fix", body = crate::error::ErrorBody),
        (status = 401, description = "No valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "Missing permission, or a gate rule refuses the caller (audited)", body = crate::error::ErrorBody),
        (status = 404, description = "No such release", body = crate::error::ErrorBody),
        (status = 409, description = "The gate refuses the change on the current state, or the release kept changing (audited)", body = crate::error::ErrorBody),
        (status = 503, description = "The release gate is not enabled on this server", body = crate::error::ErrorBody),
    ))]
pub async fn get_verdict(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<GateVerdict>, ApiError> {
    authz::require(
        &state,
        &principal,
        Permission::ReleaseRead,
        &format!("release:{id}"),
    )
    .await?;
    let gate = gate_of(&state)?;
    let release = parse_release_id(&id)?;
    let current =
        load_in_scope(&state, &gate, release, &principal, Permission::ReleaseRead).await?;
    let pack = state.pack();
    let verdict = gate::evaluate_in_pack(&pack.pack, &current, state.clock().now());
    state.metrics().record_gate_verdict(verdict.decision);
    Ok(Json(verdict))
}

/// Query of `GET /api/v1/releases/{id}/memo`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemoQuery {
    /// `md` (default) or `html`.
    pub format: Option<String>,
    /// When set, the answer is a readiness log entry with this tag (e.g. `SEC-PH5`).
    pub log_tag: Option<String>,
}

/// The security release memo (Markdown or HTML), or a readiness log entry.
#[utoipa::path(get, path = "/api/v1/releases/{id}/memo", tag = "gate",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id (UUID)"), MemoQuery),
    responses(
        (status = 200, description = "The memo: validation status, residual risks, compensating controls, exceptions with expiry, approvals with who and when, evidence with digests", content_type = "text/markdown", body = String),
        (status = 400, description = "Invalid request; `field` and `problems` name what to fix", body = crate::error::ErrorBody),
        (status = 401, description = "No valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "Missing permission, or a gate rule refuses the caller (audited)", body = crate::error::ErrorBody),
        (status = 404, description = "No such release", body = crate::error::ErrorBody),
        (status = 409, description = "The gate refuses the change on the current state, or the release kept changing (audited)", body = crate::error::ErrorBody),
        (status = 503, description = "The release gate is not enabled on this server", body = crate::error::ErrorBody),
    ))]
pub async fn get_memo(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    query: Result<Query<MemoQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authz::require(
        &state,
        &principal,
        Permission::ReleaseRead,
        &format!("release:{id}"),
    )
    .await?;
    let gate = gate_of(&state)?;
    let release = parse_release_id(&id)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let current =
        load_in_scope(&state, &gate, release, &principal, Permission::ReleaseRead).await?;
    let pack = state.pack();
    let (class, model) = class_of(&pack, &current)?;
    let verdict = gate::evaluate(class, model, &current, state.clock().now());
    if let Some(tag) = query.log_tag {
        if tag.trim().is_empty() || tag.len() > 64 {
            return Err(ApiError::invalid_field(
                "log_tag",
                "must be 1 to 64 characters",
            ));
        }
        let entry = gate::render::readiness_log_entry(&current, &verdict, &tag);
        return Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            entry,
        )
            .into_response());
    }
    match query.format.as_deref().unwrap_or("md") {
        "md" | "markdown" => Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            gate::render::memo_markdown(class, model, &current, &verdict),
        )
            .into_response()),
        "html" => Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            gate::render::memo_html(class, model, &current, &verdict),
        )
            .into_response()),
        other => Err(ApiError::invalid_field(
            "format",
            format!("unknown memo format {other:?}; use md or html"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Approvals and bypass

/// Body of `POST /api/v1/releases/{id}/approvals`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// Step of the class's approver path (0-based); or `risk` for an escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// Risk id whose escalation is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    #[schema(value_type = crate::routes::gate_schema::ApprovalDecisionSchema)]
    pub decision: ApprovalDecision,
    #[serde(default)]
    pub comment: String,
    /// The revision the approver reviewed (from the verdict): no implied approval of changes
    /// the approver did not see.
    pub seen_revision: u64,
}

/// Answer to a recorded approval, exception, requirement status, risk or bypass.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateReceipt {
    pub id: String,
    /// The release's revision after the write.
    pub revision: u64,
}

/// Approve or reject a step of the class's approver path (or accept a risk escalation) for
/// the revision the approver reviewed. The submitter and pipelines are refused.
#[utoipa::path(post, path = "/api/v1/releases/{id}/approvals", tag = "gate",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id (UUID)")),
    request_body = ApprovalBody,
    responses(crate::routes::gate_schema::GateWriteResponses))]
pub async fn record_approval(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApprovalBody>,
) -> Result<(StatusCode, Json<GateReceipt>), ApiError> {
    let target = format!("release:{id}");
    authz::require(&state, &principal, Permission::GateApprove, &target).await?;
    let gate = gate_of(&state)?;
    let release = parse_release_id(&id)?;
    let approval_target = match (body.step, &body.risk) {
        (Some(index), None) => ApprovalTarget::Step { index },
        (None, Some(risk)) => ApprovalTarget::RiskEscalation { risk: risk.clone() },
        _ => {
            return Err(ApiError::invalid_field(
                "step",
                "give exactly one of `step` (approver path step) or `risk` (escalation)",
            ));
        }
    };
    let request = ApprovalRequest {
        target: approval_target,
        decision: body.decision,
        comment: body.comment.clone(),
        seen_revision: body.seen_revision,
    };
    let action = format!("gate.{}", body.decision.as_str());
    let receipt = decide_and_write(
        &state,
        &gate,
        release,
        &principal,
        Permission::GateApprove,
        &action,
        &target,
        |current, pack, now| {
            let (class, model) = class_of(pack, current)?;
            let (who, kind) = gate_principal(pack, &principal);
            let approval_id = format!("ap-{}", current.approvals.len() + 1);
            let approval = gate::record_approval(
                class,
                model,
                current,
                &who,
                kind,
                &request,
                approval_id,
                now,
            )
            .map_err(|e| {
                let status = match e {
                    gate::ApprovalError::StaleReview { .. }
                    | gate::ApprovalError::AlreadyDecided { .. }
                    | gate::ApprovalError::SlotTaken { .. }
                    | gate::ApprovalError::PreviousStepIncomplete { .. }
                    | gate::ApprovalError::EscalationOutstanding { .. } => StatusCode::CONFLICT,
                    _ => StatusCode::FORBIDDEN,
                };
                Refusal::Rule {
                    reason: e.to_string(),
                    status,
                }
            })?;
            Ok(Decided {
                receipt: GateReceipt {
                    id: approval.id.clone(),
                    revision: current.revision(),
                },
                detail: json!({ "approval": approval.id, "target": approval.target,
                                "role": approval.role, "comment": approval.comment,
                                "revision": approval.revision }),
                record: GateRecord::Approval(approval),
            })
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Body of `POST /api/v1/releases/{id}/bypass`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BypassBody {
    pub reason: String,
}

/// Release despite the gate: needs the gate.bypass permission; recorded, audited and counted.
#[utoipa::path(post, path = "/api/v1/releases/{id}/bypass", tag = "gate",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id (UUID)")),
    request_body = BypassBody,
    responses(crate::routes::gate_schema::GateWriteResponses))]
pub async fn record_bypass(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BypassBody>,
) -> Result<(StatusCode, Json<GateReceipt>), ApiError> {
    let target = format!("release:{id}");
    // Reading is enough to reach the domain rule, which refuses (and the audit log records)
    // anyone without the bypass permission.
    authz::require(&state, &principal, Permission::ReleaseRead, &target).await?;
    let holds = authz::allows(&state, &principal, Permission::GateBypass);
    let gate = gate_of(&state)?;
    let release = parse_release_id(&id)?;
    let receipt = decide_and_write(
        &state,
        &gate,
        release,
        &principal,
        Permission::ReleaseRead,
        "gate.bypass",
        &target,
        |current, pack, now| {
            let verdict = gate::evaluate_in_pack(&pack.pack, current, now);
            let (who, kind) = gate_principal(pack, &principal);
            let bypass_id = format!("by-{}", current.bypasses.len() + 1);
            let bypass = gate::record_bypass(
                current,
                &who,
                kind,
                holds,
                &body.reason,
                &verdict,
                bypass_id,
                now,
            )
            .map_err(|e| {
                let status = match e {
                    gate::BypassError::PermissionDenied { .. }
                    | gate::BypassError::NotAPerson { .. }
                    | gate::BypassError::Submitter { .. } => StatusCode::FORBIDDEN,
                    _ => StatusCode::CONFLICT,
                };
                Refusal::Rule {
                    reason: e.to_string(),
                    status,
                }
            })?;
            Ok(Decided {
                receipt: GateReceipt {
                    id: bypass.id.clone(),
                    revision: current.revision(),
                },
                detail: json!({ "bypass": bypass.id, "reason": bypass.reason,
                                "overridden": bypass.overridden.as_str() }),
                record: GateRecord::Bypass(bypass),
            })
        },
    )
    .await?;
    state.metrics().record_gate_bypass();
    Ok((StatusCode::CREATED, Json(receipt)))
}

// ---------------------------------------------------------------------------------------------
// Exceptions, requirement statuses, risks

/// Body of `POST /api/v1/releases/{id}/exceptions`. The caller is the approver.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionBody {
    /// What is excepted: `{"scope": "requirement", "id": …}`, `{"scope": "evidence", "kind":
    /// …}` or `{"scope": "finding", "finding": {"type": "sarif_rule", "rule_id": …}}` (finding
    /// types: `sarif_rule`, `vulnerability` {id}, `test_case` {classname?, name}, …).
    #[schema(value_type = Object)]
    pub scope: ExceptionScope,
    pub justification: String,
    #[serde(default)]
    pub compensating_controls: Vec<String>,
    /// The role the caller approves in (must approve this release class).
    pub approver_role: String,
    /// Every exception expires.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// Record an exception (the caller is its approver, in a role that approves the class).
#[utoipa::path(post, path = "/api/v1/releases/{id}/exceptions", tag = "gate",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id (UUID)")),
    request_body = ExceptionBody,
    responses(crate::routes::gate_schema::GateWriteResponses))]
pub async fn record_exception(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExceptionBody>,
) -> Result<(StatusCode, Json<GateReceipt>), ApiError> {
    let target = format!("release:{id}");
    authz::require(&state, &principal, Permission::GateRecord, &target).await?;
    let gate = gate_of(&state)?;
    let release = parse_release_id(&id)?;
    let receipt = decide_and_write(
        &state,
        &gate,
        release,
        &principal,
        Permission::GateRecord,
        "gate.exception",
        &target,
        |current, pack, now| {
            let (class, _) = class_of(pack, current)?;
            let (who, kind) = gate_principal(pack, &principal);
            let exception = Exception {
                id: format!("ex-{}", current.exceptions.len() + 1),
                scope: body.scope.clone(),
                justification: body.justification.clone(),
                compensating_controls: body.compensating_controls.clone(),
                approver: Actor {
                    id: who.id.clone(),
                    display: who.display.clone(),
                    kind,
                },
                approver_role: body.approver_role.clone(),
                approved_at: now,
                expires_at: body.expires_at,
                withdrawn_at: None,
                revision: current.next_revision(),
            };
            let exception =
                gate::record_exception(class, current, &who, exception).map_err(|e| {
                    let status = match e {
                        gate::ExceptionError::MissingRole { .. } => StatusCode::FORBIDDEN,
                        _ => StatusCode::CONFLICT,
                    };
                    Refusal::Rule {
                        reason: e.to_string(),
                        status,
                    }
                })?;
            Ok(Decided {
                receipt: GateReceipt {
                    id: exception.id.clone(),
                    revision: exception.revision,
                },
                detail: json!({ "exception": exception.id, "scope": exception.scope,
                                "expires_at": exception.expires_at,
                                "compensating_controls": exception.compensating_controls }),
                record: GateRecord::Exception(exception),
            })
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Body of `POST /api/v1/releases/{id}/requirements/{requirement}`: where a security
/// requirement of the class stands. A deferral is approved by the caller, in `role`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequirementBody {
    /// Done; these evidence items show it: ids like `ev-1`, or the sha256 of an attached
    /// file (`sha256:<hex>` or bare hex).
    Complete { evidence: Vec<String> },
    /// Not done yet; the caller, holding `role`, accepts finishing it by `due`.
    Deferred {
        role: String,
        #[schema(value_type = String, format = DateTime)]
        due: Timestamp,
    },
    /// Not done; exception `exception` accepts that.
    Excepted { exception: String },
}

impl RequirementBody {
    /// The status to decide on; a deferral's approver is the caller (the core decision
    /// function sets it from the caller again, so a body cannot name someone else).
    fn into_status(
        self,
        caller: &Principal,
        kind: PrincipalKind,
        current: &ReleaseGateState,
    ) -> RequirementStatus {
        match self {
            Self::Complete { evidence } => RequirementStatus::Complete {
                evidence: evidence
                    .into_iter()
                    .map(|e| evidence_id_of(current, e))
                    .collect(),
            },
            Self::Deferred { role, due } => RequirementStatus::Deferred {
                approved_by: Actor {
                    id: caller.id.clone(),
                    display: caller.display.clone(),
                    kind,
                },
                role,
                due,
            },
            Self::Excepted { exception } => RequirementStatus::Excepted { exception },
        }
    }
}

/// The item id `reference` names: itself when it is an id, or the id of the newest item with
/// that sha256 (`sha256:<hex>` or bare hex). An unknown reference is returned as given, and
/// the decision function refuses it by name.
fn evidence_id_of(current: &ReleaseGateState, reference: String) -> String {
    let hex = reference
        .strip_prefix("sha256:")
        .unwrap_or(&reference)
        .to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return reference;
    }
    current
        .evidence
        .iter()
        .filter(|e| e.sha256 == hex)
        .max_by_key(|e| e.revision)
        .map_or(reference, |e| e.id.clone())
}

/// Record where a security requirement of the class stands.
#[utoipa::path(post, path = "/api/v1/releases/{id}/requirements/{requirement}", tag = "gate",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id (UUID)"), ("requirement" = String, Path, description = "Security requirement id of the class")),
    request_body = RequirementBody,
    responses(crate::routes::gate_schema::GateWriteResponses))]
pub async fn record_requirement(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((id, requirement)): Path<(String, String)>,
    ApiJson(body): ApiJson<RequirementBody>,
) -> Result<(StatusCode, Json<GateReceipt>), ApiError> {
    let target = format!("release:{id}");
    authz::require(&state, &principal, Permission::GateRecord, &target).await?;
    let gate = gate_of(&state)?;
    let release = parse_release_id(&id)?;
    let receipt = decide_and_write(
        &state,
        &gate,
        release,
        &principal,
        Permission::GateRecord,
        "gate.requirement",
        &target,
        |current, pack, now| {
            let (class, _) = class_of(pack, current)?;
            let (who, kind) = gate_principal(pack, &principal);
            let record = gate::record_requirement_status(
                class,
                current,
                &who,
                kind,
                &requirement,
                body.clone().into_status(&who, kind, current),
                now,
            )
            .map_err(|e| Refusal::Rule {
                reason: e.to_string(),
                status: StatusCode::CONFLICT,
            })?;
            Ok(Decided {
                receipt: GateReceipt {
                    id: record.requirement.clone(),
                    revision: record.revision,
                },
                detail: json!({ "requirement": record.requirement, "status": record.status }),
                record: GateRecord::Requirement(record),
            })
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Body of `POST /api/v1/releases/{id}/risks`: a new risk, or a new version of risk `id`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub title: String,
    pub likelihood: u32,
    pub impact: u32,
    #[serde(default = "open_status")]
    #[schema(value_type = crate::routes::gate_schema::RiskStatusSchema)]
    pub status: RiskStatus,
    pub owner: String,
}

fn open_status() -> RiskStatus {
    RiskStatus::Open
}

/// Add a risk to the release's risk register (scored by the pack's RiskModel), or a new
/// version of one.
#[utoipa::path(post, path = "/api/v1/releases/{id}/risks", tag = "gate",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id (UUID)")),
    request_body = RiskBody,
    responses(crate::routes::gate_schema::GateWriteResponses))]
pub async fn record_risk(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RiskBody>,
) -> Result<(StatusCode, Json<GateReceipt>), ApiError> {
    let target = format!("release:{id}");
    authz::require(&state, &principal, Permission::GateRecord, &target).await?;
    let gate = gate_of(&state)?;
    let release = parse_release_id(&id)?;
    let receipt = decide_and_write(
        &state,
        &gate,
        release,
        &principal,
        Permission::GateRecord,
        "gate.risk",
        &target,
        |current, pack, _now| {
            let (_, model) = class_of(pack, current)?;
            let Some(model) = model else {
                return Err(Refusal::Error(ApiError::Conflict(format!(
                    "release class `{}` has no risk model in the pack; risks cannot be scored",
                    current.release.release_class
                ))));
            };
            let risk = Risk {
                id: body
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("rk-{}", current.risks.len() + 1)),
                title: body.title.clone(),
                likelihood: body.likelihood,
                impact: body.impact,
                status: body.status,
                owner: body.owner.clone(),
                revision: 0,
            };
            let risk = gate::record_risk(model, current, risk)
                .map_err(|e| Refusal::Error(ApiError::invalid_field("risk", e.to_string())))?;
            Ok(Decided {
                receipt: GateReceipt {
                    id: risk.id.clone(),
                    revision: risk.revision,
                },
                detail: json!({ "risk": risk.id, "likelihood": risk.likelihood,
                                "impact": risk.impact, "status": risk.status.as_str() }),
                record: GateRecord::Risk(risk),
            })
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}
