//! Authentication: `Authorization: Bearer <API token>` → a core [`Principal`].
//!
//! Every `/api/v1` handler takes an [`Authenticated`] argument, so a route cannot be added
//! without authentication by accident (deny by default). Tokens are checked by
//! `gatehouse_core::identity` (hash compared in constant time, then revocation and expiry);
//! every refusal is answered with a 401 JSON error and appended to the audit log.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::identity::{self, AuthMethod, PresentedToken, Principal};
use jiff::SignedDuration;
use serde_json::json;

use crate::audit;
use crate::error::ApiError;
use crate::state::AppState;

/// A token's last-used time is written at most this often, so authenticated reads do not each
/// cost a database write.
const LAST_USED_RESOLUTION: SignedDuration = SignedDuration::from_secs(60);

/// The principal that made this request, proven by its credential.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Already authenticated by the route catalog's access check (crate::catalog).
        if let Some(done) = parts.extensions.get::<Self>() {
            return Ok(done.clone());
        }
        match authenticate(parts, state).await {
            Ok(principal) => Ok(Self(principal)),
            Err(Refusal { reason, token_id }) => {
                let route = parts
                    .extensions
                    .get::<MatchedPath>()
                    .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
                audit::append_or_log(
                    state,
                    audit::ANONYMOUS,
                    "auth.authenticate",
                    &format!("route:{} {route}", parts.method),
                    AuditOutcome::Denied,
                    json!({ "reason": reason, "token_id": token_id }),
                )
                .await;
                crate::security_events::emit(
                    state,
                    crate::security_events::SecurityEvent::new(
                        crate::security_events::Category::Authentication,
                        crate::security_events::action::AUTHENTICATION_FAILED,
                        crate::security_events::Outcome::Failure,
                    )
                    .reason(reason.clone())
                    .field("gatehouse.token_id", json!(token_id)),
                )
                .await;
                tracing::info!(%reason, route, "authentication refused");
                Err(ApiError::Unauthorized(reason))
            }
        }
    }
}

struct Refusal {
    reason: String,
    token_id: Option<String>,
}

impl Refusal {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            token_id: None,
        }
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, Refusal> {
    // No Authorization header but a session cookie: a browser session (crate::session).
    if !parts.headers.contains_key(AUTHORIZATION)
        && let Some(outcome) = crate::session::authenticate_cookie(parts, state).await
    {
        return outcome.map_err(Refusal::new);
    }
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| Refusal::new("no credential: send `Authorization: Bearer <API token>`"))?;
    let value = header
        .to_str()
        .map_err(|_| Refusal::new("the Authorization header is not valid text"))?;
    let (scheme, presented) = value
        .split_once(' ')
        .ok_or_else(|| Refusal::new("the Authorization header must be `Bearer <API token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::new(
            "unsupported authorization scheme: use `Bearer <API token>`",
        ));
    }
    // Anything but an API token is taken for an OIDC JWT from an issuer in the pack.
    if !presented.trim().starts_with("gh_") {
        let principal = state.oidc().authenticate_bearer(state, presented).await;
        return principal.map_err(Refusal::new);
    }
    let presented =
        PresentedToken::parse(presented.trim()).map_err(|e| Refusal::new(e.to_string()))?;
    let token_id = presented.id().to_string();
    let refuse = |reason: String| Refusal {
        reason,
        token_id: Some(token_id.clone()),
    };

    let record = state
        .store()
        .find_api_token(presented.id())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot look up an API token");
            refuse("the credential could not be checked (store unavailable)".to_owned())
        })?
        .ok_or_else(|| refuse(format!("API token {token_id} is not valid")))?;
    let now = state.clock().now();
    identity::verify_presented(&presented, &record, now).map_err(|e| refuse(e.to_string()))?;

    let stale = record
        .last_used_at
        .is_none_or(|at| now.duration_since(at) >= LAST_USED_RESOLUTION);
    // Last-used time is informational; failing the request for it would turn a store hiccup
    // into an outage, so a failure is only logged.
    if stale && let Err(err) = state.store().touch_api_token(&record.id, now).await {
        tracing::warn!(error = %err, token_id, "cannot record API token use");
    }
    // At most one `token-used` event per token per LAST_USED_RESOLUTION, like the last-used
    // time, so busy pipelines do not flood the event store.
    if stale {
        use crate::security_events::{Category, Outcome, SecurityEvent, action};
        crate::security_events::emit(
            state,
            SecurityEvent::new(Category::Iam, action::TOKEN_USED, Outcome::Success)
                .user(record.principal.clone())
                .field("gatehouse.token_id", token_id.clone())
                .field("user.roles", json!(record.roles)),
        )
        .await;
    }

    Ok(Principal {
        id: record.principal.clone(),
        display: record.principal.clone(),
        roles: record.roles.clone(),
        auth_method: AuthMethod::ApiToken,
        service_scope: None,
    })
}
