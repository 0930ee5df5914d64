//! `/api/v1/session` (sign-in, current session, sign-out) and `/api/v1/whoami`.
//!
//! Sign-in checks a local person's password (Argon2id, rate-limited per client IP and per
//! username before any hashing) and answers with the session cookie and the session's CSRF
//! token. Every refusal gives the same message whether the username exists or not; the audit
//! log keeps the real reason.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::identity::{AuthMethod, PresentedToken, Principal};
use gatehouse_core::password;
use gatehouse_core::session::{NewSession, SessionRecord};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::audit;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};
use crate::json_body::ApiJson;
use crate::ratelimit::{self, LimitKind};
use crate::security_events::{self, Category, Outcome, SecurityEvent, action};
use crate::session::{self, CookiePolicy, Identity};
use crate::state::AppState;

/// Longest username accepted at sign-in.
const MAX_USERNAME_LEN: usize = 128;
/// The one answer to a failed sign-in, whatever the reason.
const SIGN_IN_REFUSED: &str = "wrong username or password";

/// Sign-in request (`application/json` or `application/x-www-form-urlencoded`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The current browser session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub principal: String,
    pub display: String,
    pub roles: Vec<String>,
    /// Always `session`.
    #[schema(value_type = String)]
    pub auth_method: AuthMethod,
    /// How the person proved its identity at sign-in (`password`).
    #[schema(value_type = String)]
    pub established_by: AuthMethod,
    pub session_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The absolute end of the session.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// When the session ends if no request comes before.
    #[schema(value_type = String, format = DateTime)]
    pub idle_expires_at: Timestamp,
    /// Send this in `X-CSRF-Token` on every state-changing request made with the cookie.
    pub csrf_token: String,
}

/// The credential a request authenticated with, as `whoami` shows it (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialView {
    /// `api_token` or `session`.
    pub kind: String,
    /// Token id or session id.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// Sessions only: when the session ends if no request comes before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub idle_expires_at: Option<Timestamp>,
    /// API tokens only: the label given at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Who is calling.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub principal: String,
    pub display: String,
    /// How the request authenticated: `api_token`, `session`, `oidc_workload`, …
    #[schema(value_type = String)]
    pub auth_method: AuthMethod,
    pub roles: Vec<String>,
    /// Services the principal may act on; absent means any service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_scope: Option<Vec<String>>,
    /// The credential used, when it is a gatehouse token or session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialView>,
}

fn identity(state: &AppState) -> Result<&std::sync::Arc<Identity>, ApiError> {
    state.identity().ok_or_else(|| {
        ApiError::Unavailable("sign-in and browser sessions are not enabled on this server".into())
    })
}

/// Signs a local person in: sets the session cookie and returns the session with its CSRF token.
#[utoipa::path(post, path = "/api/v1/session", tag = "identity",
    request_body(content = SignIn, content_type = "application/json",
        description = "Also accepted as application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Signed in; `Set-Cookie` carries the session", body = SessionView),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 403, description = "Cross-origin sign-in", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    match sign_in_inner(&state, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn sign_in_inner(state: &AppState, request: Request) -> Result<Response, Response> {
    let identity = identity(state).map_err(IntoResponse::into_response)?;
    let cookie_policy = request
        .extensions()
        .get::<CookiePolicy>()
        .copied()
        .unwrap_or_default();
    const ROUTE: &str = "POST /api/v1/session";
    let client_ip = ratelimit::enforce_per_client_ip(
        state,
        identity.limits(),
        LimitKind::LoginPerIp,
        request.extensions(),
        request.headers(),
        audit::ANONYMOUS,
        ROUTE,
    )
    .await?;

    let body = read_sign_in(request)
        .await
        .map_err(IntoResponse::into_response)?;
    let username = body.username.trim().to_owned();
    let password = Zeroizing::new(body.password);
    if username.is_empty()
        || username.len() > MAX_USERNAME_LEN
        || username.chars().any(char::is_control)
    {
        return Err(ApiError::invalid_field(
            "username",
            format!("must be 1 to {MAX_USERNAME_LEN} characters without control characters"),
        )
        .into_response());
    }
    ratelimit::enforce(
        state,
        &identity.limits().login_per_user,
        LimitKind::LoginPerUser,
        &username.to_lowercase(),
        &username,
        ROUTE,
        client_ip,
    )
    .await?;

    let now = state.clock().now();
    let user = identity
        .store()
        .find_user(&username)
        .await
        .map_err(|e| ApiError::internal("looking up a person", e).into_response())?;
    let (stored, refusal) = match &user {
        None => (None, "unknown username"),
        Some(u) if u.is_disabled(now) => (None, "person is disabled"),
        Some(u) => match &u.password_hash {
            None => (None, "person has no password"),
            Some(hash) => (Some(hash.clone()), "wrong password"),
        },
    };
    let permit = identity
        .password_checks()
        .acquire()
        .await
        .map_err(|e| ApiError::internal("password check queue", e).into_response())?;
    let matched =
        tokio::task::spawn_blocking(move || password::verify_sign_in(&password, stored.as_deref()))
            .await
            .map_err(|e| ApiError::internal("password check", e).into_response())?;
    drop(permit);
    let matched = match matched {
        Ok(matched) => matched,
        Err(e) => {
            // A corrupt stored hash: refuse like a wrong password, but say why in the log.
            tracing::error!(error = %e, person = %username, "cannot verify a password");
            false
        }
    };
    if !matched {
        audit::append_or_log(
            state,
            &username,
            "auth.login",
            &format!("person:{username}"),
            AuditOutcome::Denied,
            json!({ "reason": refusal, "client_ip": client_ip.map(|ip| ip.to_string()) }),
        )
        .await;
        security_events::emit(
            state,
            SecurityEvent::new(
                Category::Authentication,
                action::AUTHENTICATION_FAILED,
                Outcome::Failure,
            )
            .user(username.clone())
            .reason(format!("password sign-in refused: {refusal}")),
        )
        .await;
        return Err(ApiError::Unauthorized(SIGN_IN_REFUSED.into()).into_response());
    }

    start_session(
        state,
        &username,
        AuthMethod::Password,
        cookie_policy,
        json!({ "client_ip": client_ip.map(|ip| ip.to_string()) }),
    )
    .await
    .map_err(IntoResponse::into_response)
}

/// Starts a browser session for `principal_id`, who has just proven their identity by
/// `established_by` (a password here; an OIDC sign-in for a pack `Person` too): stores the
/// session, audits `auth.login` (with `detail`), and answers with the `Set-Cookie` and the
/// session view carrying the CSRF token.
pub async fn start_session(
    state: &AppState,
    principal_id: &str,
    established_by: AuthMethod,
    cookie_policy: CookiePolicy,
    detail: serde_json::Value,
) -> Result<Response, ApiError> {
    let identity = identity(state)?;
    let now = state.clock().now();
    let principal = session::principal_for(state, identity, principal_id, established_by, now)
        .await
        .map_err(|reason| {
            tracing::warn!(%reason, "sign-in refused after the identity was proven");
            ApiError::Unauthorized(SIGN_IN_REFUSED.into())
        })?;
    let new = NewSession::generate(principal_id, established_by, now, identity.policy())
        .map_err(|e| ApiError::internal("starting a session", e))?;
    identity
        .store()
        .insert_session(new.record())
        .await
        .map_err(|e| ApiError::internal("storing a session", e))?;
    let mut audit_detail = json!({
        "method": established_by,
        "expires_at": new.record().expires_at,
    });
    if let (Some(target), serde_json::Value::Object(extra)) = (audit_detail.as_object_mut(), detail)
    {
        target.extend(extra);
    }
    audit::append(
        state,
        principal_id,
        "auth.login",
        &format!("session:{}", new.record().id),
        AuditOutcome::Succeeded,
        audit_detail,
    )
    .await
    .map_err(|e| ApiError::internal("auditing a sign-in", e))?;
    if identity.purge_due(now) {
        match identity.store().purge_sessions(now).await {
            Ok(n) if n > 0 => tracing::info!(sessions = n, "purged ended and expired sessions"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot purge ended sessions"),
        }
    }
    security_events::emit(
        state,
        SecurityEvent::new(Category::Authentication, action::LOGIN, Outcome::Success)
            .user(principal_id.to_owned())
            .field("gatehouse.session_id", new.record().id.to_string())
            .field("gatehouse.auth_method", json!(established_by)),
    )
    .await;
    tracing::info!(person = %principal_id, session = %new.record().id, "signed in");

    let view = session_view(&principal, new.record(), new.csrf_token(), identity);
    let cookie = cookie_policy.set_cookie(new.cookie_value(), identity.policy().absolute_timeout);
    Ok(session::with_cookie(
        (StatusCode::OK, Json(view)).into_response(),
        &cookie,
    ))
}

/// Reads the sign-in body as JSON or as an HTML form.
async fn read_sign_in(request: Request) -> Result<SignIn, ApiError> {
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if is_form {
        let axum::Form(body) = axum::Form::<SignIn>::from_request(request, &())
            .await
            .map_err(|e| {
                ApiError::BadRequest(format!("invalid sign-in form: {}", e.body_text()))
            })?;
        Ok(body)
    } else {
        let ApiJson(body) = ApiJson::<SignIn>::from_request(request, &()).await?;
        Ok(body)
    }
}

fn session_view(
    principal: &Principal,
    record: &SessionRecord,
    csrf_token: &str,
    identity: &Identity,
) -> SessionView {
    SessionView {
        principal: principal.id.clone(),
        display: principal.display.clone(),
        roles: principal.roles.clone(),
        auth_method: AuthMethod::Session,
        established_by: record.established_by,
        session_id: record.id.to_string(),
        created_at: record.created_at,
        expires_at: record.expires_at,
        idle_expires_at: record.idle_expires_at(identity.policy()),
        csrf_token: csrf_token.to_owned(),
    }
}

/// The session cookie of a request that authenticated by session (not by bearer token).
fn request_session_cookie(parts: &Parts, principal: &Principal) -> Result<String, ApiError> {
    if principal.auth_method != AuthMethod::Session || parts.headers.contains_key(AUTHORIZATION) {
        return Err(ApiError::NotFound(
            "no browser session: this request authenticated with a bearer token".into(),
        ));
    }
    session::session_cookie(&parts.headers, CookiePolicy::of(parts))
        .ok_or_else(|| ApiError::NotFound("no browser session cookie".into()))
}

/// The current browser session and its CSRF token.
#[utoipa::path(get, path = "/api/v1/session", tag = "identity", security(("session" = [])),
    responses(
        (status = 200, body = SessionView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The request did not authenticate with a session", body = ErrorBody),
    ))]
pub async fn current_session(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    parts: Parts,
) -> Result<Json<SessionView>, ApiError> {
    let cookie = request_session_cookie(&parts, &principal)?;
    let identity = identity(&state)?;
    let (principal, presented, record) = session::resolve(&state, &cookie)
        .await
        .map_err(ApiError::Unauthorized)?;
    Ok(Json(session_view(
        &principal,
        &record,
        &presented.csrf_token(),
        identity,
    )))
}

/// Signs out: ends the session and removes the cookie. Needs `X-CSRF-Token`.
#[utoipa::path(delete, path = "/api/v1/session", tag = "identity", security(("session" = [])),
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Missing or wrong CSRF token", body = ErrorBody),
        (status = 404, description = "The request did not authenticate with a session", body = ErrorBody),
    ))]
pub async fn sign_out(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    parts: Parts,
) -> Result<Response, ApiError> {
    let cookie = request_session_cookie(&parts, &principal)?;
    let identity = identity(&state)?;
    let (_, _, record) = session::resolve(&state, &cookie)
        .await
        .map_err(ApiError::Unauthorized)?;
    let now = state.clock().now();
    identity
        .store()
        .end_session(&record.id, now)
        .await
        .map_err(|e| ApiError::internal("ending a session", e))?;
    audit::append(
        &state,
        &principal.id,
        "auth.logout",
        &format!("session:{}", record.id),
        AuditOutcome::Succeeded,
        json!({}),
    )
    .await
    .map_err(|e| ApiError::internal("auditing a sign-out", e))?;
    let policy = CookiePolicy::of(&parts);
    Ok(session::with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &policy.clear_cookie(),
    ))
}

/// The calling principal, how it authenticated, its roles, service scope and credential expiry.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "identity",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, body = WhoAmI),
        (status = 401, body = ErrorBody),
    ))]
pub async fn whoami(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    parts: Parts,
) -> Result<Json<WhoAmI>, ApiError> {
    let headers = &parts.headers;
    let credential = match principal.auth_method {
        AuthMethod::ApiToken => token_credential(&state, headers).await?,
        AuthMethod::Session => match session::session_cookie(headers, CookiePolicy::of(&parts)) {
            Some(cookie) => {
                let identity = identity(&state)?;
                let (_, _, record) = session::resolve(&state, &cookie)
                    .await
                    .map_err(ApiError::Unauthorized)?;
                Some(CredentialView {
                    kind: "session".into(),
                    id: record.id.to_string(),
                    expires_at: Some(record.expires_at),
                    idle_expires_at: Some(record.idle_expires_at(identity.policy())),
                    label: None,
                })
            }
            None => None,
        },
        _ => None,
    };
    Ok(Json(WhoAmI {
        principal: principal.id,
        display: principal.display,
        auth_method: principal.auth_method,
        roles: principal.roles,
        service_scope: principal.service_scope,
        credential,
    }))
}

async fn token_credential(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<CredentialView>, ApiError> {
    let Some(presented) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .and_then(|(_, token)| PresentedToken::parse(token.trim()).ok())
    else {
        return Ok(None);
    };
    let Some(record) = state
        .store()
        .find_api_token(presented.id())
        .await
        .map_err(|e| ApiError::internal("reading an API token", e))?
    else {
        return Ok(None);
    };
    let label = match state.identity() {
        Some(identity) => identity
            .store()
            .token_label(&record.id)
            .await
            .map_err(|e| ApiError::internal("reading a token label", e))?,
        None => None,
    };
    Ok(Some(CredentialView {
        kind: "api_token".into(),
        id: record.id.to_string(),
        expires_at: record.expires_at,
        idle_expires_at: None,
        label,
    }))
}
