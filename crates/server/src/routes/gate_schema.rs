//! OpenAPI schemas of the release gate's wire types that live in `gatehouse-core`.
//!
//! The core crate is pure and does not depend on utoipa, so the verdict's JSON shape is
//! described here, once, for the OpenAPI document. These types are never built or sent: the
//! handlers serialize the core types. `tests/gate_openapi.rs` serializes a real verdict and
//! checks its keys against these schemas, so the description cannot drift from the wire.

#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// The gate's overall or per-category outcome (`pass < pending < blocked`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = GateDecision)]
pub enum GateDecisionSchema {
    Pass,
    Pending,
    Blocked,
}

/// A gate category.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = GateCategory)]
pub enum GateCategorySchema {
    ContextAndOwnership,
    Requirements,
    Evidence,
    Findings,
    Risks,
    Approvals,
}

/// How much a reason weighs: `block` makes its category blocked, `pending` pending.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReasonLevel)]
pub enum ReasonLevelSchema {
    Info,
    Warning,
    Pending,
    Block,
}

/// The rule a reason applies: a field of the release class (`required_evidence[0]`,
/// `attestation.keys`) or a built-in gate rule (`gate.…`).
#[derive(Serialize, ToSchema)]
#[schema(as = RuleRef)]
pub struct RuleRefSchema {
    /// Release class id.
    pub class: String,
    pub field: String,
}

/// Evidence a reason rests on.
#[derive(Serialize, ToSchema)]
#[schema(as = EvidenceRef)]
pub struct EvidenceRefSchema {
    /// Evidence item id, e.g. `ev-1`.
    pub id: String,
    pub kind: String,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// One thing the gate found.
#[derive(Serialize, ToSchema)]
#[schema(as = Reason)]
pub struct ReasonSchema {
    pub level: ReasonLevelSchema,
    /// Stable machine-readable code, e.g. `evidence_missing`, `attestation_unknown_key`.
    pub code: String,
    pub rule: RuleRefSchema,
    pub message: String,
    /// Absent when empty.
    pub evidence: Option<Vec<EvidenceRefSchema>>,
}

/// The outcome of one gate category.
#[derive(Serialize, ToSchema)]
#[schema(as = CategoryResult)]
pub struct CategoryResultSchema {
    pub category: GateCategorySchema,
    pub decision: GateDecisionSchema,
    pub reasons: Vec<ReasonSchema>,
}

/// Open findings per severity after suppressions, VEX statements and exceptions.
#[derive(Serialize, ToSchema)]
#[schema(as = FindingTally)]
pub struct FindingTallySchema {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

/// The gate's answer for one release at one instant: the decision, one result per category
/// (context & ownership, requirements, evidence, findings, risks, approvals) and every reason.
#[derive(Serialize, ToSchema)]
#[schema(as = GateVerdict)]
pub struct GateVerdictSchema {
    /// Release id.
    pub release: String,
    /// Release class id evaluated against.
    pub class: String,
    pub decision: GateDecisionSchema,
    /// The state revision evaluated; approvals name the revision they reviewed.
    pub revision: u64,
    #[schema(format = DateTime)]
    pub evaluated_at: String,
    pub categories: Vec<CategoryResultSchema>,
    pub findings: FindingTallySchema,
    /// Emergency classes: when the retrospective review is due.
    #[schema(format = DateTime)]
    pub retrospective_due: Option<String>,
    /// A bypass in force for this revision (`id`, `by`, `reason`, `at`, `revision`,
    /// `overridden`); it does not change `decision`.
    #[schema(value_type = Option<Object>)]
    pub bypass: Option<serde_json::Value>,
}

/// An explicit approval decision; there is no implied approval.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ApprovalDecision)]
pub enum ApprovalDecisionSchema {
    Approve,
    Reject,
}

/// Where a risk stands.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RiskStatus)]
pub enum RiskStatusSchema {
    Open,
    Mitigated,
    Closed,
}

/// The receipt of an evidence upload (mirrors `routes::gate::EvidenceReceipt`).
#[derive(Serialize, ToSchema)]
#[schema(as = EvidenceReceipt)]
pub struct EvidenceReceiptSchema {
    /// `attached`, or `already_attached` for an idempotent re-upload.
    pub status: String,
    /// Evidence item id, e.g. `ev-1`.
    pub id: String,
    pub kind: String,
    /// Lower-case hex sha256 of the uploaded bytes.
    pub sha256: String,
    pub size: u64,
    /// The release's revision after the upload.
    pub revision: u64,
}

/// The evidence upload route's description. The handler, `routes::gate::attach_evidence`, is
/// being reworked (streaming, sealed storage) by its owner; its operation is described here so
/// the OpenAPI document covers every gate route meanwhile. Move this attribute onto the
/// handler once that work has landed.
#[utoipa::path(post, path = "/api/v1/releases/{id}/evidence", tag = "gate",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Release id (UUID)"),
        ("kind" = String, Query, description = "Evidence kind: sarif, cyclonedx, spdx, openvex, junit, in-toto, or a document kind (threat-model, code-review, ci-run, rollback-plan, monitoring-plan, or one the pack declares)"),
        ("supersedes" = Option<String>, Query, description = "Id of an earlier item of the same kind this one replaces"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The evidence file, streamed; parsed as `kind` before anything is stored"),
    responses(
        (status = 201, description = "Attached", body = EvidenceReceiptSchema),
        (status = 200, description = "The same bytes were already attached (idempotent)", body = EvidenceReceiptSchema),
        (status = 400, description = "Not valid evidence of that kind (the location of the problem is named); nothing stored", body = crate::error::ErrorBody),
        (status = 401, description = "No valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "Missing permission evidence.attach", body = crate::error::ErrorBody),
        (status = 404, description = "No such release", body = crate::error::ErrorBody),
        (status = 409, description = "The gate refuses the upload on the current state", body = crate::error::ErrorBody),
        (status = 413, description = "Larger than the server's evidence size limit (named); nothing stored", body = crate::error::ErrorBody),
        (status = 503, description = "The release gate or evidence storage is not enabled", body = crate::error::ErrorBody),
    ))]
pub fn attach_evidence_operation() {}

/// The OpenAPI responses every gate write (approval, bypass, exception, requirement status,
/// risk) documents; only described, never built.
#[derive(utoipa::IntoResponses)]
pub enum GateWriteResponses {
    #[response(status = 201, description = "Recorded")]
    Recorded(crate::routes::gate::GateReceipt),
    #[response(
        status = 400,
        description = "Invalid request; `field` and `problems` name what to fix"
    )]
    BadRequest(crate::error::ErrorBody),
    #[response(status = 401, description = "No valid credential")]
    Unauthorized(crate::error::ErrorBody),
    #[response(
        status = 403,
        description = "Missing permission, or a gate rule refuses the caller (audited)"
    )]
    Forbidden(crate::error::ErrorBody),
    #[response(status = 404, description = "No such release")]
    NotFound(crate::error::ErrorBody),
    #[response(
        status = 409,
        description = "The gate refuses the change on the current state, or the release kept changing (audited)"
    )]
    Conflict(crate::error::ErrorBody),
    #[response(
        status = 503,
        description = "The release gate is not enabled on this server"
    )]
    Unavailable(crate::error::ErrorBody),
}
