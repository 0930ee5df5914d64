//! Authorization: which roles may do what, denying anything not granted.
//!
//! This is the foundation's fixed role → permission table over the default roles; the security
//! issue moves the table into the pack and the check into core. Each handler names the one
//! [`Permission`] it needs, and [`require`] audits every denial.

use gatehouse_core::audit::AuditOutcome;
use gatehouse_core::identity::Principal;
use serde_json::json;

use crate::audit;
use crate::error::ApiError;
use crate::state::AppState;

/// Something a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    PackRead,
    PackReload,
    ReleaseRead,
    ReleaseCreate,
    AuditRead,
    EventIngest,
    SignalRead,
    EvidenceAttach,
    GateRecord,
    GateApprove,
    GateBypass,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PackRead => "pack.read",
            Self::PackReload => "pack.reload",
            Self::ReleaseRead => "release.read",
            Self::ReleaseCreate => "release.create",
            Self::AuditRead => "audit.read",
            Self::EventIngest => "events.ingest",
            Self::SignalRead => "signal.read",
            Self::EvidenceAttach => "evidence.attach",
            Self::GateRecord => "gate.record",
            Self::GateApprove => "gate.approve",
            Self::GateBypass => "gate.bypass",
        }
    }

    /// Roles that hold this permission (`admin` holds every permission).
    fn granted_to(self) -> &'static [&'static str] {
        const READERS: &[&str] = &[
            "viewer",
            "submitter",
            "approver",
            "security-lead",
            "ciso",
            "operator",
            "auditor",
        ];
        match self {
            Self::PackRead | Self::ReleaseRead => READERS,
            Self::PackReload => &["operator"],
            Self::ReleaseCreate => &["submitter"],
            Self::AuditRead => &["auditor", "security-lead", "ciso"],
            // Log shippers run with an operator token; signals are for the security team.
            Self::EventIngest => &["operator"],
            Self::SignalRead => &["security-lead", "ciso", "operator", "auditor"],
            // Pipelines attach evidence with a submitter token.
            Self::EvidenceAttach => &["submitter"],
            // Requirement statuses, risks and exceptions; the gate's decision functions then
            // check the role each record needs (an exception's approver role, a deferral's).
            Self::GateRecord => &["submitter", "approver", "security-lead", "ciso"],
            Self::GateApprove => &["approver", "security-lead", "ciso"],
            // Bypassing the gate is its own permission, never implied by approving.
            Self::GateBypass => &["ciso"],
        }
    }
}

/// Whether `principal` holds `permission`.
pub fn allows(principal: &Principal, permission: Permission) -> bool {
    principal.has_role("admin")
        || permission
            .granted_to()
            .iter()
            .any(|role| principal.has_role(role))
}

/// Refuses (403) and audits the attempt unless `principal` holds `permission`.
pub async fn require(
    state: &AppState,
    principal: &Principal,
    permission: Permission,
    target: &str,
) -> Result<(), ApiError> {
    if allows(principal, permission) {
        return Ok(());
    }
    audit::append_or_log(
        state,
        &principal.id,
        permission.as_str(),
        target,
        AuditOutcome::Denied,
        json!({ "roles": principal.roles, "reason": "permission not granted" }),
    )
    .await;
    Err(ApiError::Forbidden(format!(
        "{} may not {}: none of its roles ({}) grants it",
        principal.id,
        permission.as_str(),
        if principal.roles.is_empty() {
            "none".to_owned()
        } else {
            principal.roles.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use gatehouse_core::identity::AuthMethod;

    use super::*;

    fn with_roles(roles: &[&str]) -> Principal {
        Principal {
            id: "p".into(),
            display: "p".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            auth_method: AuthMethod::ApiToken,
            service_scope: None,
        }
    }

    #[test]
    fn admin_holds_every_permission() {
        let admin = with_roles(&["admin"]);
        for p in [
            Permission::PackRead,
            Permission::PackReload,
            Permission::ReleaseRead,
            Permission::ReleaseCreate,
            Permission::AuditRead,
            Permission::EventIngest,
            Permission::SignalRead,
            Permission::EvidenceAttach,
            Permission::GateRecord,
            Permission::GateApprove,
            Permission::GateBypass,
        ] {
            assert!(allows(&admin, p), "{}", p.as_str());
        }
    }

    #[test]
    fn viewer_reads_but_cannot_change_anything() {
        let viewer = with_roles(&["viewer"]);
        assert!(allows(&viewer, Permission::ReleaseRead));
        assert!(!allows(&viewer, Permission::ReleaseCreate));
        assert!(!allows(&viewer, Permission::PackReload));
        assert!(!allows(&viewer, Permission::AuditRead));
        assert!(!allows(&viewer, Permission::EventIngest));
        assert!(!allows(&viewer, Permission::SignalRead));
        assert!(!allows(&viewer, Permission::GateApprove));
        assert!(!allows(&viewer, Permission::GateBypass));
    }

    #[test]
    fn no_roles_means_no_permissions() {
        let nobody = with_roles(&[]);
        assert!(!allows(&nobody, Permission::PackRead));
        assert!(!allows(&nobody, Permission::ReleaseRead));
    }
}
