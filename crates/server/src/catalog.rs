//! The route catalog: every HTTP route, its method, and who may call it — one table.
//!
//! The router is built from [`ROUTES`] ([`router`]), so a route cannot exist without an entry,
//! and each entry's [`Access`] is enforced by a layer on that route *before* its handler and
//! extractors run (deny by default: an authenticated route without a permission must say
//! [`Access::AuthenticatedOnly`] explicitly). The same table drives the authorization matrix
//! test (`tests/authz_matrix.rs`, every route × every role) and the permission matrix in
//! `docs/security.md` ([`permission_matrix_markdown`]). Adding a route is one line here.
//!
//! Body limits are per route too ([`BodyLimit`]): JSON routes get a small default; routes that
//! stream or bound their own bodies (evidence upload, event ingestion) keep the server-wide
//! limit and their own checks.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use tower_http::timeout::TimeoutLayer;

use crate::auth::Authenticated;
use crate::authz::{self, Permission, Policy};
use crate::state::AppState;
use crate::{openapi, routes};

/// Largest body of a JSON API route (a release, an approval, a risk): 64 KiB.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a credential (liveness, metrics, the OpenAPI document, login).
    Public,
    /// Any authenticated principal, whatever its roles (e.g. `whoami`).
    AuthenticatedOnly,
    /// An authenticated principal holding this permission.
    Permission(Permission),
}

/// How large a request body a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// [`JSON_BODY_LIMIT`].
    Json,
    /// The route bounds its own body (streaming uploads, NDJSON ingestion with its own option):
    /// only the server-wide `--max-body-bytes` applies to extractors.
    Own,
}

/// One route of the catalog.
pub struct ApiRoute {
    pub method: Method,
    /// The full path, axum syntax (`/api/v1/releases/{id}`).
    pub path: &'static str,
    pub access: Access,
    pub body_limit: BodyLimit,
    /// The handler, wrapped in its method router.
    pub handler: fn() -> MethodRouter<AppState>,
}

use Access::{AuthenticatedOnly, Public};
use BodyLimit::{Json, Own};
use Permission as P;

const fn perm(p: Permission) -> Access {
    Access::Permission(p)
}

macro_rules! routes {
    ($( $method:ident $path:literal $access:expr, $limit:expr => $handler:expr; )*) => {
        /// Every route of the server.
        pub static ROUTES: &[ApiRoute] = &[
            $( ApiRoute {
                method: Method::$method,
                path: $path,
                access: $access,
                body_limit: $limit,
                handler: || $handler,
            }, )*
        ];
    };
}

routes! {
    GET  "/healthz" Public, Json => get(routes::health::healthz);
    GET  "/readyz" Public, Json => get(routes::health::readyz);
    GET  "/metrics" Public, Json => get(routes::health::metrics);
    GET  "/api/openapi.json" Public, Json => get(|| async { axum::Json(openapi::document()) });
    GET  "/api/v1/pack" perm(P::PackRead), Json => get(routes::pack::get_pack);
    POST "/api/v1/pack/reload" perm(P::PackReload), Json => post(routes::pack::reload_pack);
    GET  "/api/v1/releases" perm(P::ReleaseRead), Json => get(routes::releases::list_releases);
    POST "/api/v1/releases" perm(P::ReleaseCreate), Json => post(routes::releases::create_release);
    GET  "/api/v1/releases/{id}" perm(P::ReleaseRead), Json => get(routes::releases::get_release);
    POST "/api/v1/releases/{id}/evidence" perm(P::EvidenceAttach), Own => post(routes::gate::attach_evidence);
    GET  "/api/v1/releases/{id}/verdict" perm(P::ReleaseRead), Json => get(routes::gate::get_verdict);
    GET  "/api/v1/releases/{id}/memo" perm(P::ReleaseRead), Json => get(routes::gate::get_memo);
    POST "/api/v1/releases/{id}/approvals" perm(P::GateApprove), Json => post(routes::gate::record_approval);
    POST "/api/v1/releases/{id}/exceptions" perm(P::GateRecord), Json => post(routes::gate::record_exception);
    POST "/api/v1/releases/{id}/requirements/{requirement}" perm(P::GateRecord), Json => post(routes::gate::record_requirement);
    POST "/api/v1/releases/{id}/risks" perm(P::GateRecord), Json => post(routes::gate::record_risk);
    // The handler checks gate.bypass itself, after release.read, so a denied bypass is recorded
    // against the release it targeted.
    POST "/api/v1/releases/{id}/bypass" perm(P::ReleaseRead), Json => post(routes::gate::record_bypass);
    GET  "/api/v1/metrics/gate" perm(P::ReleaseRead), Json => get(routes::gate_metrics::get_gate_metrics);
    GET  "/api/v1/audit" perm(P::AuditRead), Json => get(routes::audit::list_audit);
    GET  "/api/v1/audit/tree-head" perm(P::AuditRead), Json => get(routes::audit::get_tree_head);
    POST "/api/v1/audit/tree-head" perm(P::AuditRead), Json => post(routes::audit::sign_tree_head);
    GET  "/api/v1/audit/public-key" perm(P::AuditRead), Json => get(routes::audit::get_public_key);
    GET  "/api/v1/audit/proof/inclusion" perm(P::AuditRead), Json => get(routes::audit::inclusion_proof);
    GET  "/api/v1/audit/proof/consistency" perm(P::AuditRead), Json => get(routes::audit::consistency_proof);
    POST "/api/v1/events" perm(P::EventIngest), Own => post(routes::events::ingest_events);
    GET  "/api/v1/signals" perm(P::SignalRead), Json => get(routes::events::list_signals);
    // Identities: sign-in is public (rate-limited); the rest act on the caller's own session or
    // tokens, so any authenticated principal may call them (the handlers check role subsets).
    POST   "/api/v1/session" Public, Json => post(routes::session::sign_in);
    GET    "/api/v1/session" AuthenticatedOnly, Json => get(routes::session::current_session);
    DELETE "/api/v1/session" AuthenticatedOnly, Json => delete(routes::session::sign_out);
    GET    "/api/v1/whoami" AuthenticatedOnly, Json => get(routes::session::whoami);
    POST   "/api/v1/tokens" AuthenticatedOnly, Json => post(routes::tokens::create_token);
    GET    "/api/v1/tokens" AuthenticatedOnly, Json => get(routes::tokens::list_tokens);
    DELETE "/api/v1/tokens/{id}" AuthenticatedOnly, Json => delete(routes::tokens::revoke_token);
    // OIDC sign-in for people (crate::oidc): public, the identity provider authenticates.
    GET    "/api/v1/auth/oidc/{provider}/login" Public, Json => get(crate::oidc::login);
    GET    "/api/v1/auth/oidc/{provider}/callback" Public, Json => get(crate::oidc::callback);
}

/// Prefix of the authenticated API; unknown paths under it answer a JSON 404.
pub const API_PREFIX: &str = "/api/v1";

/// The router of every catalog route, each behind its access check and body limit. Unknown
/// paths under [`API_PREFIX`] answer with the API's JSON 404.
pub fn router(
    state: &AppState,
    request_timeout: Duration,
    upload_timeout: Duration,
) -> Router<AppState> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for route in ROUTES {
        let access = route.access;
        let mut handler = (route.handler)();
        // Routes that stream their own bodies get the long upload timeout (408 either way).
        let timeout = if route.body_limit == BodyLimit::Json {
            handler = handler.layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
            request_timeout
        } else {
            upload_timeout
        };
        handler = handler.layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ));
        let handler = handler.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |state: State<AppState>, request: Request, next: Next| {
                enforce(state, access, request, next)
            },
        ));
        let merged = match by_path.remove(route.path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        by_path.insert(route.path, merged);
    }
    let mut api = Router::new();
    let mut top = Router::new();
    for (path, handler) in by_path {
        match path.strip_prefix(API_PREFIX) {
            Some(rest) if rest.starts_with('/') => api = api.route(rest, handler),
            _ => top = top.route(path, handler),
        }
    }
    top.nest(API_PREFIX, api.fallback(api_not_found))
}

async fn api_not_found() -> crate::error::ApiError {
    crate::error::ApiError::NotFound("no such API route".into())
}

/// Authenticates (unless public) and checks the route's permission before the handler and its
/// extractors run, so a denied caller learns nothing from body validation. The principal is
/// handed to the handler's `Authenticated` extractor, which then does not check it again.
async fn enforce(
    State(state): State<AppState>,
    access: Access,
    request: Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let principal = match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(Authenticated(principal)) => principal,
        Err(refusal) => return refused_by_access_check(refusal),
    };
    if let Access::Permission(permission) = access {
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        let target = format!("route:{} {route}", parts.method);
        if let Err(denied) = authz::require(&state, &principal, permission, &target).await {
            return refused_by_access_check(denied);
        }
    }
    parts.extensions.insert(Authenticated(principal));
    next.run(Request::from_parts(parts, body)).await
}

/// Header on a 401 or 403 given by the access check itself (value `access-check`), so clients
/// and the matrix test can tell it from a handler's own refusal (e.g. a failed OIDC callback).
pub const REFUSED_BY_HEADER: &str = "gatehouse-refused-by";

fn refused_by_access_check(error: crate::error::ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        HeaderName::from_static(REFUSED_BY_HEADER),
        HeaderValue::from_static("access-check"),
    );
    response
}

/// Whether `policy` lets a principal holding only `role` call a route with `access`.
pub fn role_may(policy: &Policy, role: &str, access: Access) -> bool {
    match access {
        Access::Public | Access::AuthenticatedOnly => true,
        Access::Permission(p) => policy.grants(role, p),
    }
}

/// Start and end markers of the generated section of `docs/security.md`.
pub const MATRIX_BEGIN: &str = "<!-- permission-matrix:begin -->";
pub const MATRIX_END: &str = "<!-- permission-matrix:end -->";

/// The permission matrix of the default roles, as Markdown: which role holds which permission,
/// and which permission each route needs. `docs/security.md` holds it between [`MATRIX_BEGIN`]
/// and [`MATRIX_END`]; a test keeps the file current.
pub fn permission_matrix_markdown() -> String {
    use gatehouse_core::authz::DEFAULT_ROLES;
    use std::fmt::Write as _;
    let policy = Policy::defaults();
    let mut out = String::new();
    out.push_str(
        "Generated from `crates/core/src/authz.rs` (default roles) and \
         `crates/server/src/catalog.rs` (routes) by\n\
         `cargo test -p gatehouse-server --test authz_matrix` \
         (set `GATEHOUSE_UPDATE_DOCS=1` to rewrite it).\n\n\
         ### Permissions of the default roles\n\n",
    );
    let _ = writeln!(out, "| permission | {} |", DEFAULT_ROLES.join(" | "));
    let _ = writeln!(out, "| --- |{}", " :-: |".repeat(DEFAULT_ROLES.len()));
    for p in Permission::ALL {
        let cells: Vec<&str> = DEFAULT_ROLES
            .iter()
            .map(|r| if policy.grants(r, p) { "✓" } else { "" })
            .collect();
        let _ = writeln!(out, "| `{}` | {} |", p.as_str(), cells.join(" | "));
    }
    out.push_str("\n### Routes\n\n");
    let _ = writeln!(
        out,
        "| method | path | needs | {} |",
        DEFAULT_ROLES.join(" | ")
    );
    let _ = writeln!(
        out,
        "| --- | --- | --- |{}",
        " :-: |".repeat(DEFAULT_ROLES.len())
    );
    for route in ROUTES {
        let needs = match route.access {
            Access::Public => "public".to_owned(),
            Access::AuthenticatedOnly => "authenticated".to_owned(),
            Access::Permission(p) => format!("`{}`", p.as_str()),
        };
        let cells: Vec<&str> = DEFAULT_ROLES
            .iter()
            .map(|r| {
                if role_may(&policy, r, route.access) {
                    "✓"
                } else {
                    ""
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            route.method,
            route.path,
            needs,
            cells.join(" | ")
        );
    }
    out
}
