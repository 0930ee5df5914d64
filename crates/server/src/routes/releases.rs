//! `/api/v1/releases`: recording and reading releases.
//!
//! Core validates the request (every problem at once); this handler adds the checks that need
//! the served pack — the release class and the owner must exist in it — so a release can never
//! name policy that is not in force.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::release::{NewRelease, ReleaseId};
use gatehouse_core::store::{MAX_PAGE_SIZE, ReleaseQuery};
use gatehouse_pack::Pack;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::api::{CreateRelease, ReleaseList, ReleaseView};
use crate::audit;
use crate::auth::Authenticated;
use crate::authz::{self, Permission};
use crate::error::{ApiError, ErrorBody, FieldProblem};
use crate::json_body::ApiJson;
use crate::state::AppState;

/// Page size when the client gives none.
const DEFAULT_LIMIT: u32 = 50;

/// Filters of `GET /api/v1/releases`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListReleases {
    /// Only releases of this service.
    pub service: Option<String>,
    /// At most this many releases (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// Releases, newest first.
#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", security(("bearer" = [])),
    params(ListReleases),
    responses(
        (status = 200, body = ReleaseList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn list_releases(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    query: Result<Query<ListReleases>, QueryRejection>,
) -> Result<Json<ReleaseList>, ApiError> {
    authz::require(&state, &principal, Permission::ReleaseRead, "releases").await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let releases = state
        .store()
        .list_releases(&ReleaseQuery {
            service: query.service,
            limit,
        })
        .await
        .map_err(|e| ApiError::internal("listing releases", e))?;
    // A principal confined to some services sees only their releases.
    Ok(Json(ReleaseList {
        releases: releases
            .into_iter()
            .filter(|r| principal.may_act_on_service(&r.service))
            .map(ReleaseView::from)
            .collect(),
    }))
}

/// One release.
#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases", security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id (UUID)")),
    responses(
        (status = 200, body = ReleaseView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn get_release(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ReleaseView>, ApiError> {
    authz::require(
        &state,
        &principal,
        Permission::ReleaseRead,
        &format!("release:{id}"),
    )
    .await?;
    let id: ReleaseId = id
        .parse()
        .map_err(|e: gatehouse_core::release::InvalidReleaseId| {
            ApiError::invalid_field("id", e.to_string())
        })?;
    let release = state
        .store()
        .get_release(id)
        .await
        .map_err(|e| ApiError::internal("reading a release", e))?
        .ok_or_else(|| ApiError::NotFound(format!("release {id} not found")))?;
    authz::require_service(
        &state,
        &principal,
        Permission::ReleaseRead,
        &release.service,
        &format!("release:{id}"),
    )
    .await?;
    Ok(Json(ReleaseView::from(release)))
}

/// Records a new release submitted by the caller.
#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", security(("bearer" = [])),
    request_body = CreateRelease,
    responses(
        (status = 201, description = "Recorded", body = ReleaseView),
        (status = 400, description = "Invalid request; `field` and `problems` name what to fix", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody),
    ))]
pub async fn create_release(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<CreateRelease>,
) -> Result<Response, ApiError> {
    authz::require(&state, &principal, Permission::ReleaseCreate, "release:new").await?;
    let request = NewRelease::from(body);
    let summary = json!({
        "service": request.service,
        "version": request.version,
        "release_class": request.release_class,
    });
    // A workload confined to some services (an OIDC claim rule's `services`) may not submit
    // releases of any other.
    if !principal.may_act_on_service(&request.service) {
        audit::append_or_log(
            &state,
            &principal.id,
            "release.create",
            "release:new",
            AuditOutcome::Denied,
            json!({ "request": summary, "reason": "service outside the principal's scope", "service_scope": principal.service_scope }),
        )
        .await;
        return Err(ApiError::Forbidden(format!(
            "{} may act only on services {:?}, not `{}`",
            principal.id,
            principal.service_scope.as_deref().unwrap_or_default(),
            request.service
        )));
    }
    let pack = state.pack();
    let mut problems = pack_reference_problems(&pack.pack, &request);

    let now = state.clock().now();
    let id = ReleaseId::generate(now).map_err(|e| ApiError::internal("release id", e))?;
    let release = match request.into_release(id, &principal.id, now) {
        Ok(release) if problems.is_empty() => release,
        Ok(_) => return Err(refuse(&state, &principal.id, summary, problems).await),
        Err(invalid) => {
            let mut all: Vec<FieldProblem> = invalid
                .problems
                .into_iter()
                .map(|p| FieldProblem {
                    field: p.field,
                    problem: p.problem,
                })
                .collect();
            all.append(&mut problems);
            return Err(refuse(&state, &principal.id, summary, all).await);
        }
    };

    state
        .store()
        .create_release(&release)
        .await
        .map_err(|e| ApiError::internal("storing a release", e))?;
    audit::append(
        &state,
        &principal.id,
        "release.create",
        &format!("release:{}", release.id),
        AuditOutcome::Succeeded,
        json!({
            "service": release.service,
            "version": release.version,
            "release_class": release.release_class,
            "pack_digest": pack.digest,
        }),
    )
    .await
    .map_err(|e| ApiError::internal("auditing a release creation", e))?;
    tracing::info!(release = %release.id, service = %release.service, version = %release.version, "release recorded");

    let location = format!("/api/v1/releases/{}", release.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ReleaseView::from(release)),
    )
        .into_response())
}

/// Fields that name policy absent from the served pack.
fn pack_reference_problems(pack: &Pack, request: &NewRelease) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if !request.release_class.trim().is_empty()
        && pack.release_class(&request.release_class).is_none()
    {
        let known: Vec<&str> = pack
            .release_classes()
            .map(|c| c.id.value.as_str())
            .collect();
        problems.push(FieldProblem {
            field: "release_class".into(),
            problem: format!(
                "no ReleaseClass `{}` in the served pack (known: {})",
                request.release_class,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        });
    }
    if !request.owner.trim().is_empty()
        && pack.team(&request.owner).is_none()
        && pack.person(&request.owner).is_none()
    {
        problems.push(FieldProblem {
            field: "owner".into(),
            problem: format!("no Team or Person `{}` in the served pack", request.owner),
        });
    }
    problems
}

/// Audits a refused creation and builds the 400 answer.
async fn refuse(
    state: &AppState,
    actor: &str,
    summary: serde_json::Value,
    problems: Vec<FieldProblem>,
) -> ApiError {
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    audit::append_or_log(
        state,
        actor,
        "release.create",
        "release:new",
        AuditOutcome::Failed,
        json!({ "request": summary, "invalid_fields": fields }),
    )
    .await;
    ApiError::InvalidField(problems)
}
