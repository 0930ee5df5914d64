//! The OpenAPI document served at `/api/openapi.json`, generated from the handlers' annotations
//! so it cannot drift from the routes. No Swagger UI is bundled: builds must not download
//! assets, and any OpenAPI viewer can read the JSON.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{api, error, routes};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "gatehouse",
        description = "Security release gate and security-operations control plane. Every /api/v1 route needs `Authorization: Bearer <API token>`."
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        routes::pack::get_pack,
        routes::pack::reload_pack,
        routes::releases::list_releases,
        routes::releases::get_release,
        routes::releases::create_release,
        routes::audit::list_audit,
        routes::audit::get_tree_head,
        routes::audit::sign_tree_head,
        routes::audit::get_public_key,
        routes::audit::inclusion_proof,
        routes::audit::consistency_proof,
        routes::events::ingest_events,
        routes::events::list_signals,
        routes::gate_schema::attach_evidence_operation,
        routes::gate::get_verdict,
        routes::gate::get_memo,
        routes::gate::record_approval,
        routes::gate::record_exception,
        routes::gate::record_requirement,
        routes::gate::record_risk,
        routes::gate::record_bypass,
        routes::gate_metrics::get_gate_metrics,
        crate::oidc::login,
        crate::oidc::callback,
        routes::session::sign_in,
        routes::session::current_session,
        routes::session::sign_out,
        routes::session::whoami,
        routes::tokens::create_token,
        routes::tokens::list_tokens,
        routes::tokens::revoke_token,
    ),
    components(schemas(
        api::PackStatus,
        api::ReloadResult,
        api::CreateRelease,
        api::ChangeContextBody,
        api::ReleaseView,
        api::ReleaseList,
        api::AuditEntryView,
        api::AuditPage,
        routes::audit::TreeHeadBody,
        routes::audit::PublicKeyBody,
        routes::audit::PublicKeys,
        routes::audit::InclusionProofBody,
        routes::audit::ConsistencyProofBody,
        api::HealthStatus,
        routes::events::IngestResult,
        routes::events::RejectedLine,
        routes::events::SignalList,
        routes::gate::ApprovalBody,
        routes::gate::BypassBody,
        routes::gate::ExceptionBody,
        routes::gate::RequirementBody,
        routes::gate::RiskBody,
        routes::gate::GateReceipt,
        routes::gate_metrics::GateMetricsReport,
        routes::gate_schema::GateVerdictSchema,
        crate::oidc::SignedIn,
        routes::session::SignIn,
        routes::session::SessionView,
        routes::session::CredentialView,
        routes::session::WhoAmI,
        routes::tokens::CreateToken,
        routes::tokens::CreatedToken,
        routes::tokens::TokenView,
        routes::tokens::TokenList,
        error::ErrorBody,
        error::ErrorDetail,
        error::FieldProblem,
    )),
    modifiers(&BearerToken, &SessionCookie),
    tags(
        (name = "operations", description = "Liveness, readiness and metrics (no credential needed)"),
        (name = "pack", description = "The policy pack in force"),
        (name = "releases", description = "Release records"),
        (name = "audit", description = "The audit log"),
        (name = "events", description = "Event ingestion and the signals Sigma rules raise over it"),
        (name = "gate", description = "The release gate: evidence, verdict, approvals, exceptions, requirement statuses, risks, bypass, memo and metrics"),
        (name = "identity", description = "Sign-in, browser sessions, whoami and API tokens"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the annotated routes refer to.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("gatehouse API token (gh_<id>_<secret>)")
                    .build(),
            ),
        );
    }
}

/// Declares the `session` security scheme: the browser session cookie (state-changing
/// requests made with it also need `X-CSRF-Token`).
struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::session::COOKIE_NAME,
                "Browser session from POST /api/v1/session (`__Host-` prefixed under TLS)",
            ))),
        );
    }
}

/// The document as a JSON value.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| {
        // Serializing a document built from static annotations cannot fail in practice; if
        // it ever does, answer with the reason rather than crash the server.
        serde_json::json!({ "error": format!("cannot render the OpenAPI document: {e}") })
    })
}
