//! Authorization adapter: asks core's [`gatehouse_core::authz::authorize`] with the policy of the
//! pack in force, and turns a refusal into a 403 that is audited and emitted as a security event.
//!
//! The decision itself lives in core (roles and permissions from the pack, service scope), so the
//! same rule holds for every entry point. The route catalog ([`crate::catalog`]) checks each
//! route's permission before the handler runs; handlers call [`require`] again for the exact
//! target and [`require_service`] once they know a release's service.

use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::authz::{self, Denial};
use gatehouse_core::identity::Principal;
use serde_json::json;

pub use gatehouse_core::authz::{Permission, Policy, Resource};

use crate::audit;
use crate::error::ApiError;
use crate::security_events::{self, Category, Outcome, SecurityEvent};
use crate::state::AppState;

/// Whether `principal` holds `permission` under the pack in force (no audit, no service check).
pub fn allows(state: &AppState, principal: &Principal, permission: Permission) -> bool {
    state.pack().policy.allows(principal, permission)
}

/// Refuses (403) and audits the attempt unless `principal` holds `permission`. For a
/// release-scoped permission the service is not known yet; call [`require_service`] once it is.
pub async fn require(
    state: &AppState,
    principal: &Principal,
    permission: Permission,
    target: &str,
) -> Result<(), ApiError> {
    check(state, principal, permission, &Resource::Unresolved, target).await
}

/// [`require`] on the releases of `service`: also refuses a principal confined to other services.
pub async fn require_service(
    state: &AppState,
    principal: &Principal,
    permission: Permission,
    service: &str,
    target: &str,
) -> Result<(), ApiError> {
    check(
        state,
        principal,
        permission,
        &Resource::Service(service),
        target,
    )
    .await
}

async fn check(
    state: &AppState,
    principal: &Principal,
    permission: Permission,
    resource: &Resource<'_>,
    target: &str,
) -> Result<(), ApiError> {
    let policy = &state.pack().policy;
    match authz::authorize(policy, principal, permission, resource) {
        Ok(()) => Ok(()),
        Err(denial) => {
            deny(state, principal, permission, target, &denial).await;
            Err(ApiError::Forbidden(denial.to_string()))
        }
    }
}

/// Records a denial in the audit log and as a security event.
async fn deny(
    state: &AppState,
    principal: &Principal,
    permission: Permission,
    target: &str,
    denial: &Denial,
) {
    audit::append_or_log(
        state,
        &principal.id,
        permission.as_str(),
        target,
        AuditOutcome::Denied,
        json!({ "roles": principal.roles, "reason": denial.reason() }),
    )
    .await;
    security_events::emit(
        state,
        SecurityEvent::new(
            Category::Iam,
            security_events::action::PERMISSION_DENIED,
            Outcome::Failure,
        )
        .user(principal.id.clone())
        .reason(denial.reason())
        .field("user.roles", json!(principal.roles))
        .field("gatehouse.permission", permission.as_str())
        .field("gatehouse.target", target)
        .field("gatehouse.auth_method", json!(principal.auth_method)),
    )
    .await;
}
