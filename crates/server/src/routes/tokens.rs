//! `/api/v1/tokens`: API tokens created, listed and revoked by their owners.
//!
//! A token acts as its creator, scoped to roles the creator holds (an admin may grant any
//! role the pack defines), and always expires. The secret is in the creation answer only;
//! listings never contain it, nor its hash. A principal confined to some services (a workload
//! identity) cannot create tokens, since a token carries no service scope and would widen it.
//! Creation and revocation are audited with the token id, never the secret, and all three
//! routes are rate-limited per client IP and per principal.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::identity::{ApiTokenRecord, IssuedToken, Principal, TokenId};
use gatehouse_core::identity_store::LabeledToken;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody, FieldProblem};
use crate::json_body::ApiJson;
use crate::ratelimit::{self, LimitKind};
use crate::security_events::{self, Category, Outcome, SecurityEvent, action};
use crate::session::Identity;
use crate::state::AppState;

/// Lifetime of a token when the request gives none.
pub const DEFAULT_LIFETIME_SECS: u64 = 30 * 24 * 3600;
/// Longest lifetime a token may have (ten years).
pub const MAX_LIFETIME_SECS: u64 = 3650 * 24 * 3600;
/// Shortest lifetime a token may have.
pub const MIN_LIFETIME_SECS: u64 = 60;
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 200;

/// Request of `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Roles the token carries: roles the caller holds (any pack role for an admin).
    pub roles: Vec<String>,
    /// Lifetime in seconds (default 30 days, at most ten years).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    /// What the token is for, e.g. `ci payments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// An API token as listed: everything but the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub principal: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

impl TokenView {
    fn of(record: &ApiTokenRecord, label: Option<String>, now: Timestamp) -> Self {
        let state = if record.is_revoked(now) {
            "revoked"
        } else if record.is_expired(now) {
            "expired"
        } else {
            "active"
        };
        Self {
            id: record.id.to_string(),
            principal: record.principal.clone(),
            roles: record.roles.clone(),
            label,
            state: state.into(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            last_used_at: record.last_used_at,
        }
    }
}

/// Answer of `POST /api/v1/tokens`: the token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The full token (`gh_<id>_<secret>`); it cannot be shown again.
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

/// Answer of `GET /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// Filters of `GET /api/v1/tokens`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListTokens {
    /// Admins only: every principal's tokens (`true`), or one principal's (`principal=`).
    pub all: Option<bool>,
    pub principal: Option<String>,
}

/// What every token route does first: finds the identity store (503 when the server has none)
/// and applies the rate limits, per client IP, then per principal.
async fn admit<'a>(
    state: &'a AppState,
    principal: &Principal,
    extensions: &Extensions,
    headers: &HeaderMap,
    route: &str,
) -> Result<&'a Identity, Response> {
    let identity = state.identity().ok_or_else(|| {
        ApiError::Unavailable("API token management is not enabled on this server".into())
            .into_response()
    })?;
    let client_ip = ratelimit::enforce_per_client_ip(
        state,
        identity.limits(),
        LimitKind::TokensPerIp,
        extensions,
        headers,
        &principal.id,
        route,
    )
    .await?;
    ratelimit::enforce(
        state,
        &identity.limits().tokens_per_principal,
        LimitKind::TokensPerPrincipal,
        &principal.id,
        &principal.id,
        route,
        client_ip,
    )
    .await?;
    Ok(identity)
}

fn is_admin(principal: &Principal) -> bool {
    principal.has_role("admin")
}

/// Creates an API token for the caller and returns it once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity",
    security(("bearer" = []), ("session" = [])),
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created; the token is in this answer only", body = CreatedToken),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "A role the caller does not hold, or a service-scoped caller", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    extensions: Extensions,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<Response, Response> {
    let identity = admit(
        &state,
        &principal,
        &extensions,
        &headers,
        "POST /api/v1/tokens",
    )
    .await?;
    create(&state, identity, &principal, body)
        .await
        .map_err(IntoResponse::into_response)
}

async fn create(
    state: &AppState,
    identity: &Identity,
    principal: &Principal,
    body: CreateToken,
) -> Result<Response, ApiError> {
    let request = json!({
        "roles": body.roles,
        "expires_in_secs": body.expires_in_secs,
        "label": body.label,
    });
    let mut problems = Vec::new();
    let mut problem = |field: &str, text: String| {
        problems.push(FieldProblem {
            field: field.into(),
            problem: text,
        });
    };
    let mut roles: Vec<String> = Vec::new();
    for role in &body.roles {
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    if roles.is_empty() {
        problem("roles", "name at least one role".into());
    }
    let pack = state.pack();
    for (i, role) in roles.iter().enumerate() {
        if pack.pack.role(role).is_none() {
            problem(
                &format!("roles[{i}]"),
                format!("no Role `{role}` in the served pack"),
            );
        }
    }
    let lifetime = body.expires_in_secs.unwrap_or(DEFAULT_LIFETIME_SECS);
    if !(MIN_LIFETIME_SECS..=MAX_LIFETIME_SECS).contains(&lifetime) {
        problem(
            "expires_in_secs",
            format!("must be between {MIN_LIFETIME_SECS} and {MAX_LIFETIME_SECS}"),
        );
    }
    let label = body
        .label
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty());
    if let Some(label) = &label
        && (label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control))
    {
        problem(
            "label",
            format!("at most {MAX_LABEL_CHARS} characters, no control characters"),
        );
    }
    if !problems.is_empty() {
        audit::append_or_log(
            state,
            &principal.id,
            "token.create",
            "token:new",
            AuditOutcome::Failed,
            json!({ "request": request, "invalid_fields": problems.iter().map(|p| p.field.clone()).collect::<Vec<_>>() }),
        )
        .await;
        return Err(ApiError::InvalidField(problems));
    }

    let refusal = if principal.service_scope.is_some() {
        Some("a principal confined to some services cannot create API tokens".to_owned())
    } else if !is_admin(principal) {
        let missing: Vec<&str> = roles
            .iter()
            .filter(|r| !principal.has_role(r))
            .map(String::as_str)
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "{} may only grant roles it holds; it does not hold {}",
                principal.id,
                missing.join(", ")
            )
        })
    } else {
        None
    };
    if let Some(reason) = refusal {
        audit::append_or_log(
            state,
            &principal.id,
            "token.create",
            "token:new",
            AuditOutcome::Denied,
            json!({ "request": request, "reason": reason }),
        )
        .await;
        return Err(ApiError::Forbidden(reason));
    }

    let now = state.clock().now();
    let lifetime = i64::try_from(lifetime).unwrap_or(i64::MAX);
    let expires_at = now
        .checked_add(SignedDuration::from_secs(lifetime))
        .map_err(|e| ApiError::invalid_field("expires_in_secs", e.to_string()))?;
    let issued = IssuedToken::generate(&principal.id, roles, now, Some(expires_at))
        .map_err(|e| ApiError::internal("generating a token", e))?;
    identity
        .store()
        .insert_labeled_token(issued.record(), label.as_deref())
        .await
        .map_err(|e| ApiError::internal("storing a token", e))?;
    audit::append(
        state,
        &principal.id,
        "token.create",
        &format!("token:{}", issued.record().id),
        AuditOutcome::Succeeded,
        json!({
            "token_id": issued.record().id.to_string(),
            "principal": principal.id,
            "roles": issued.record().roles,
            "expires_at": expires_at,
            "label": label,
            "auth_method": principal.auth_method,
        }),
    )
    .await
    .map_err(|e| ApiError::internal("auditing a token creation", e))?;
    security_events::emit(
        state,
        SecurityEvent::new(Category::Iam, action::TOKEN_CREATED, Outcome::Success)
            .user(principal.id.clone())
            .field("gatehouse.token_id", issued.record().id.to_string())
            .field("user.roles", json!(issued.record().roles)),
    )
    .await;
    tracing::info!(token_id = %issued.record().id, principal = %principal.id, "API token created");
    let view = TokenView::of(issued.record(), label, now);
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: issued.token().to_owned(),
            view,
        }),
    )
        .into_response())
}

/// The caller's API tokens (an admin may list everyone's); never the secrets.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "identity",
    security(("bearer" = []), ("session" = [])),
    params(ListTokens),
    responses(
        (status = 200, body = TokenList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    extensions: Extensions,
    headers: HeaderMap,
    query: Result<Query<ListTokens>, QueryRejection>,
) -> Result<Json<TokenList>, Response> {
    let identity = admit(
        &state,
        &principal,
        &extensions,
        &headers,
        "GET /api/v1/tokens",
    )
    .await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()).into_response())?;
    let wants_others =
        query.all == Some(true) || query.principal.as_ref().is_some_and(|p| *p != principal.id);
    if wants_others && !is_admin(&principal) {
        audit::append_or_log(
            &state,
            &principal.id,
            "token.list",
            "tokens",
            AuditOutcome::Denied,
            json!({ "reason": "only an admin lists other principals' tokens" }),
        )
        .await;
        return Err(ApiError::Forbidden(format!(
            "{} may list only its own tokens (listing others' needs the admin role)",
            principal.id
        ))
        .into_response());
    }
    let filter = match (query.all, &query.principal) {
        (_, Some(p)) => Some(p.clone()),
        (Some(true), None) => None,
        _ => Some(principal.id.clone()),
    };
    let tokens = identity
        .store()
        .list_labeled_tokens(filter.as_deref())
        .await
        .map_err(|e| ApiError::internal("listing tokens", e).into_response())?;
    let now = state.clock().now();
    Ok(Json(TokenList {
        tokens: tokens
            .into_iter()
            .map(|LabeledToken { record, label }| TokenView::of(&record, label, now))
            .collect(),
    }))
}

/// Revokes an API token (its owner's, or any for an admin); revoking twice keeps the first time.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "identity",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Token id (24 hex digits)")),
    responses(
        (status = 200, description = "Revoked", body = TokenView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such token of the caller's", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    extensions: Extensions,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, Response> {
    let identity = admit(
        &state,
        &principal,
        &extensions,
        &headers,
        "DELETE /api/v1/tokens/{id}",
    )
    .await?;
    revoke(&state, identity, &principal, &id)
        .await
        .map(Json)
        .map_err(IntoResponse::into_response)
}

async fn revoke(
    state: &AppState,
    identity: &Identity,
    principal: &Principal,
    id: &str,
) -> Result<TokenView, ApiError> {
    let id = TokenId::parse(id).map_err(|e| ApiError::invalid_field("id", e.to_string()))?;
    let record = state
        .store()
        .find_api_token(&id)
        .await
        .map_err(|e| ApiError::internal("reading a token", e))?;
    let not_found = || ApiError::NotFound(format!("no API token {id} of {}", principal.id));
    let Some(record) = record else {
        return Err(not_found());
    };
    if record.principal != principal.id && !is_admin(principal) {
        audit::append_or_log(
            state,
            &principal.id,
            "token.revoke",
            &format!("token:{id}"),
            AuditOutcome::Denied,
            json!({ "token_id": id.to_string(), "reason": "not the token's owner" }),
        )
        .await;
        // Answer as if the token did not exist: ids of others' tokens are not disclosed.
        return Err(not_found());
    }
    let now = state.clock().now();
    let revoked = state
        .store()
        .revoke_api_token(&id, now)
        .await
        .map_err(|e| ApiError::internal("revoking a token", e))?;
    audit::append(
        state,
        &principal.id,
        "token.revoke",
        &format!("token:{id}"),
        AuditOutcome::Succeeded,
        json!({
            "token_id": id.to_string(),
            "principal": revoked.principal,
            "revoked_at": revoked.revoked_at,
            "already_revoked": record.revoked_at.is_some(),
        }),
    )
    .await
    .map_err(|e| ApiError::internal("auditing a token revocation", e))?;
    security_events::emit(
        state,
        SecurityEvent::new(Category::Iam, action::TOKEN_REVOKED, Outcome::Success)
            .user(principal.id.clone())
            .field("gatehouse.token_id", id.to_string())
            .field("gatehouse.token_principal", revoked.principal.clone()),
    )
    .await;
    tracing::info!(token_id = %id, by = %principal.id, "API token revoked");
    let label = identity
        .store()
        .token_label(&id)
        .await
        .map_err(|e| ApiError::internal("reading a token label", e))?;
    Ok(TokenView::of(&revoked, label, now))
}
