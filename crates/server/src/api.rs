//! JSON bodies of the HTTP API, with their OpenAPI schemas.
//!
//! These are the wire format, kept apart from the core domain types so the domain can change
//! shape without silently changing the API. The CLI's client commands deserialize the same
//! types, so client and server cannot drift apart.

use gatehouse_core::audit::AuditEntry;
use gatehouse_core::release::{ChangeContext, NewRelease, Release};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The pack being served.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackStatus {
    /// Hex SHA-256 over the pack's files.
    pub digest: String,
    pub document_count: usize,
    #[schema(value_type = String, format = DateTime)]
    pub loaded_at: Timestamp,
    /// The pack folder, as the server sees it.
    pub source: String,
}

/// Answer to `POST /api/v1/pack/reload`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReloadResult {
    /// `swapped` (the new pack is served) or `rejected` (the previous pack is still served).
    pub outcome: String,
    /// The pack served after the reload.
    pub pack: PackStatus,
    /// Digest of the pack served before the reload.
    pub previous_digest: String,
    /// Why the new pack was refused, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Findings in the refused pack (`{"diagnostics": [...], "errors": N, "warnings": N}`), as
    /// `gatehouse lint --format json` prints them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub diagnostics: Option<serde_json::Value>,
}

/// Why the change is being made.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeContextBody {
    /// One or a few sentences: what changes and why.
    pub summary: String,
    /// Ticket reference or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Pull-request reference or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
}

/// Body of `POST /api/v1/releases`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    /// The service being released, e.g. `payments`.
    pub service: String,
    /// The version being released, e.g. `2.14.0`.
    pub version: String,
    /// Id of a `ReleaseClass` in the served pack, e.g. `normal`.
    pub release_class: String,
    /// `sha256:<64 lowercase hex>` digests of the artifacts to deploy.
    #[serde(default)]
    pub artifact_digests: Vec<String>,
    /// Accountable owner: a `Team` or `Person` id in the served pack.
    pub owner: String,
    #[serde(default)]
    pub change: ChangeContextBody,
    /// Where the release is going, e.g. `production`.
    pub target_environment: String,
}

impl From<CreateRelease> for NewRelease {
    fn from(body: CreateRelease) -> Self {
        Self {
            service: body.service,
            version: body.version,
            release_class: body.release_class,
            artifact_digests: body.artifact_digests,
            owner: body.owner,
            change: ChangeContext {
                summary: body.change.summary,
                ticket: body.change.ticket,
                pull_request: body.change.pull_request,
            },
            target_environment: body.target_environment,
        }
    }
}

/// A recorded release.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseView {
    /// UUIDv7 of the release.
    pub id: String,
    pub service: String,
    pub version: String,
    pub release_class: String,
    pub artifact_digests: Vec<String>,
    pub owner: String,
    pub change: ChangeContextBody,
    pub target_environment: String,
    /// Principal that submitted the release.
    pub submitter: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<Release> for ReleaseView {
    fn from(release: Release) -> Self {
        Self {
            id: release.id.to_string(),
            service: release.service,
            version: release.version,
            release_class: release.release_class,
            artifact_digests: release
                .artifact_digests
                .into_iter()
                .map(String::from)
                .collect(),
            owner: release.owner,
            change: ChangeContextBody {
                summary: release.change.summary,
                ticket: release.change.ticket,
                pull_request: release.change.pull_request,
            },
            target_environment: release.target_environment,
            submitter: release.submitter,
            created_at: release.created_at,
        }
    }
}

/// Releases, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseList {
    pub releases: Vec<ReleaseView>,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: String,
    /// Dotted verb, e.g. `release.create`.
    pub action: String,
    /// The object acted on, e.g. `release:0190…`.
    pub target: String,
    /// `succeeded`, `denied` or `failed`.
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(entry: AuditEntry) -> Self {
        Self {
            seq: entry.seq,
            at: entry.record.at,
            actor: entry.record.actor,
            action: entry.record.action,
            target: entry.record.target,
            outcome: entry.record.outcome.as_str().to_owned(),
            detail: entry.record.detail,
        }
    }
}

/// A page of the audit log in sequence order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after` to get the next page; absent when this page is the end of the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// Answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    /// `ok`, `ready` or `not_ready`.
    pub status: String,
    /// Per-dependency checks (readiness only), e.g. `{"store": "ok", "pack": "ok"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checks: Option<serde_json::Value>,
}
