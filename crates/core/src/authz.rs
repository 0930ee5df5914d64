//! Authorization: which permissions a principal holds, decided in the domain.
//!
//! Every HTTP handler, CLI command and background job that acts for somebody asks [`authorize`]
//! before it acts, so the rule is the same whatever the entry point and can be tested without a
//! server. Roles come from the pack: a `Role` document may list its `permissions`; a role without
//! that list that is one of the default role names ([`DEFAULT_ROLES`]) keeps its default
//! permissions (so a pack need not spell them out), and any other role grants nothing. Deny is
//! the default: a principal with no role that grants the permission is refused, and a principal
//! confined to some services ([`Principal::service_scope`]) is refused release-scoped
//! permissions on any other service.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use gatehouse_pack::Pack;
use serde::{Deserialize, Serialize};

use crate::identity::Principal;

/// Something a principal may be allowed to do. The dotted names (`release.create`) are what
/// pack `Role` documents list, what the audit log records and what `docs/security.md` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Permission {
    PackRead,
    PackReload,
    ReleaseRead,
    ReleaseCreate,
    EvidenceAttach,
    GateRecord,
    GateApprove,
    GateBypass,
    AuditRead,
    EventIngest,
    SignalRead,
    TokenCreate,
    TokenRead,
    TokenRevoke,
    UserManage,
}

impl Permission {
    /// Every permission, in the order of `gatehouse_pack::model::PERMISSIONS`.
    pub const ALL: [Permission; 15] = [
        Self::PackRead,
        Self::PackReload,
        Self::ReleaseRead,
        Self::ReleaseCreate,
        Self::EvidenceAttach,
        Self::GateRecord,
        Self::GateApprove,
        Self::GateBypass,
        Self::AuditRead,
        Self::EventIngest,
        Self::SignalRead,
        Self::TokenCreate,
        Self::TokenRead,
        Self::TokenRevoke,
        Self::UserManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PackRead => "pack.read",
            Self::PackReload => "pack.reload",
            Self::ReleaseRead => "release.read",
            Self::ReleaseCreate => "release.create",
            Self::EvidenceAttach => "evidence.attach",
            Self::GateRecord => "gate.record",
            Self::GateApprove => "gate.approve",
            Self::GateBypass => "gate.bypass",
            Self::AuditRead => "audit.read",
            Self::EventIngest => "events.ingest",
            Self::SignalRead => "signal.read",
            Self::TokenCreate => "token.create",
            Self::TokenRead => "token.read",
            Self::TokenRevoke => "token.revoke",
            Self::UserManage => "user.manage",
        }
    }

    /// Reads a dotted name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Whether the permission acts on the releases of one service, so that a principal confined
    /// to some services may only use it on those.
    pub fn is_release_scoped(self) -> bool {
        matches!(
            self,
            Self::ReleaseRead
                | Self::ReleaseCreate
                | Self::EvidenceAttach
                | Self::GateRecord
                | Self::GateApprove
                | Self::GateBypass
        )
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Permission> for &'static str {
    fn from(value: Permission) -> Self {
        value.as_str()
    }
}

impl TryFrom<String> for Permission {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("unknown permission `{value}`"))
    }
}

/// The default role names, in the order the docs list them.
pub const DEFAULT_ROLES: [&str; 8] = [
    "viewer",
    "submitter",
    "approver",
    "security-lead",
    "ciso",
    "operator",
    "auditor",
    "admin",
];

/// The permissions a default role grants when its pack `Role` document lists none (or the pack
/// does not declare it). `None` for a name that is not a default role.
pub fn default_permissions(role: &str) -> Option<&'static [Permission]> {
    use Permission::*;
    Some(match role {
        "viewer" => &[PackRead, ReleaseRead],
        // Pipelines attach evidence and record requirement statuses with a submitter token.
        "submitter" => &[
            PackRead,
            ReleaseRead,
            ReleaseCreate,
            EvidenceAttach,
            GateRecord,
        ],
        // Requirement statuses, risks and exceptions; the gate's decision functions then check
        // the role each record needs (an exception's approver role, a deferral's).
        "approver" => &[PackRead, ReleaseRead, GateRecord, GateApprove],
        "security-lead" => &[
            PackRead,
            ReleaseRead,
            GateRecord,
            GateApprove,
            AuditRead,
            SignalRead,
        ],
        // Bypassing the gate is its own permission, never implied by approving.
        "ciso" => &[
            PackRead,
            ReleaseRead,
            GateRecord,
            GateApprove,
            GateBypass,
            AuditRead,
            SignalRead,
        ],
        // Log shippers run with an operator token.
        "operator" => &[PackRead, ReleaseRead, PackReload, EventIngest, SignalRead],
        "auditor" => &[PackRead, ReleaseRead, AuditRead, SignalRead, TokenRead],
        "admin" => &Permission::ALL,
        _ => return None,
    })
}

/// Which permissions each role grants: built from the pack, rebuilt on every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    roles: BTreeMap<String, BTreeSet<Permission>>,
}

impl Policy {
    /// The default roles with their default permissions (a pack that declares no role).
    pub fn defaults() -> Self {
        let roles = DEFAULT_ROLES
            .iter()
            .map(|role| {
                let granted = default_permissions(role).unwrap_or(&[]);
                ((*role).to_owned(), granted.iter().copied().collect())
            })
            .collect();
        Self { roles }
    }

    /// The roles of `pack`: a `Role` with `permissions` grants exactly those (names lint did not
    /// accept grant nothing); one without keeps the defaults of its name, if it has any. Default
    /// roles the pack does not declare keep their defaults.
    pub fn from_pack(pack: &Pack) -> Self {
        let mut policy = Self::defaults();
        for role in pack.roles() {
            let granted: BTreeSet<Permission> = match &role.permissions {
                Some(names) => names
                    .iter()
                    .filter_map(|name| Permission::parse(name.as_str()))
                    .collect(),
                None => default_permissions(role.id.as_str())
                    .unwrap_or(&[])
                    .iter()
                    .copied()
                    .collect(),
            };
            policy.roles.insert(role.id.value.clone(), granted);
        }
        policy
    }

    /// Whether `role` grants `permission`.
    pub fn grants(&self, role: &str, permission: Permission) -> bool {
        self.roles
            .get(role)
            .is_some_and(|granted| granted.contains(&permission))
    }

    /// The roles this policy knows, by name, with what each grants.
    pub fn roles(&self) -> impl Iterator<Item = (&str, &BTreeSet<Permission>)> {
        self.roles
            .iter()
            .map(|(role, granted)| (role.as_str(), granted))
    }

    /// Whether any of `principal`'s roles grants `permission` (ignoring its service scope).
    pub fn allows(&self, principal: &Principal, permission: Permission) -> bool {
        principal
            .roles
            .iter()
            .any(|role| self.grants(role, permission))
    }
}

/// What a permission is exercised on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// Nothing tied to a service: the pack, the audit log, events, tokens.
    System,
    /// A collection, or a release whose service is not known yet (before it is loaded). Only the
    /// role is checked here: the caller must authorize again with [`Resource::Service`] once it
    /// knows the service, and list handlers filter by [`Principal::may_act_on_service`].
    Unresolved,
    /// The releases of one service (a release, or a new release for that service).
    Service(&'a str),
}

/// Why [`authorize`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("{principal} may not {permission}: none of its roles ({roles}) grants it")]
    NotGranted {
        principal: String,
        permission: Permission,
        roles: String,
    },
    #[error("{principal} may not {permission} on service `{service}`: it is confined to {scope}")]
    OutOfScope {
        principal: String,
        permission: Permission,
        service: String,
        scope: String,
    },
}

impl Denial {
    /// A short machine-readable reason (`permission_not_granted`, `service_out_of_scope`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotGranted { .. } => "permission_not_granted",
            Self::OutOfScope { .. } => "service_out_of_scope",
        }
    }
}

/// Decides whether `principal` may exercise `permission` on `resource` under `policy`.
pub fn authorize(
    policy: &Policy,
    principal: &Principal,
    permission: Permission,
    resource: &Resource<'_>,
) -> Result<(), Denial> {
    if !policy.allows(principal, permission) {
        return Err(Denial::NotGranted {
            principal: principal.id.clone(),
            permission,
            roles: if principal.roles.is_empty() {
                "none".to_owned()
            } else {
                principal.roles.join(", ")
            },
        });
    }
    if !permission.is_release_scoped() {
        return Ok(());
    }
    let scope = || {
        principal
            .service_scope
            .as_ref()
            .map_or_else(String::new, |s| s.join(", "))
    };
    match resource {
        Resource::Service(service) if !principal.may_act_on_service(service) => {
            Err(Denial::OutOfScope {
                principal: principal.id.clone(),
                permission,
                service: (*service).to_owned(),
                scope: scope(),
            })
        }
        Resource::Service(_) | Resource::System | Resource::Unresolved => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::identity::AuthMethod;

    fn principal(roles: &[&str], scope: Option<&[&str]>) -> Principal {
        Principal {
            id: "p".into(),
            display: "p".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            auth_method: AuthMethod::ApiToken,
            service_scope: scope.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
        }
    }

    fn pack(yaml: &str) -> Pack {
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-authz-{}-{}",
            std::process::id(),
            yaml.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("roles.yaml"), yaml).unwrap();
        let loaded = gatehouse_pack::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.pack
    }

    #[test]
    fn permission_names_match_the_packs_list() {
        let names: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, gatehouse_pack::model::PERMISSIONS);
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("pack.delete"), None);
    }

    #[test]
    fn admin_holds_every_permission_and_nobody_holds_none() {
        let policy = Policy::defaults();
        for p in Permission::ALL {
            authorize(&policy, &principal(&["admin"], None), p, &Resource::System).unwrap();
            assert!(matches!(
                authorize(&policy, &principal(&[], None), p, &Resource::System),
                Err(Denial::NotGranted { .. })
            ));
        }
    }

    #[test]
    fn viewer_reads_but_changes_nothing() {
        let policy = Policy::defaults();
        let viewer = principal(&["viewer"], None);
        assert!(policy.allows(&viewer, Permission::ReleaseRead));
        for p in Permission::ALL {
            if !matches!(p, Permission::ReleaseRead | Permission::PackRead) {
                assert!(!policy.allows(&viewer, p), "{p}");
            }
        }
    }

    #[test]
    fn bypass_is_only_the_cisos_and_approving_is_not_submitting() {
        let policy = Policy::defaults();
        let holders: Vec<&str> = DEFAULT_ROLES
            .into_iter()
            .filter(|r| policy.grants(r, Permission::GateBypass))
            .collect();
        assert_eq!(holders, ["ciso", "admin"]);
        assert!(!policy.grants("submitter", Permission::GateApprove));
        assert!(!policy.grants("approver", Permission::ReleaseCreate));
    }

    #[test]
    fn pack_permissions_replace_defaults_and_unknown_roles_get_nothing() {
        let pack = pack(
            "kind: Role\nid: viewer\npermissions: [pack.read]\n---\n\
             kind: Role\nid: release-bot\npermissions: [release.create, evidence.attach]\n---\n\
             kind: Role\nid: submitter\n---\n\
             kind: Role\nid: intern\n",
        );
        let policy = Policy::from_pack(&pack);
        // The pack narrowed viewer.
        assert!(policy.grants("viewer", Permission::PackRead));
        assert!(!policy.grants("viewer", Permission::ReleaseRead));
        // A custom role grants what it lists, nothing else.
        assert!(policy.grants("release-bot", Permission::EvidenceAttach));
        assert!(!policy.grants("release-bot", Permission::ReleaseRead));
        // A default role without a list keeps its defaults; so does an undeclared one.
        assert!(policy.grants("submitter", Permission::ReleaseCreate));
        assert!(policy.grants("ciso", Permission::GateBypass));
        // A role that is neither listed nor a default name grants nothing.
        for p in Permission::ALL {
            assert!(!policy.grants("intern", p), "{p}");
            assert!(!policy.grants("nobody", p), "{p}");
        }
    }

    #[test]
    fn a_scoped_principal_is_confined_to_its_services() {
        let policy = Policy::defaults();
        let pipeline = principal(&["submitter"], Some(&["payments"]));
        authorize(
            &policy,
            &pipeline,
            Permission::ReleaseCreate,
            &Resource::Service("payments"),
        )
        .unwrap();
        let err = authorize(
            &policy,
            &pipeline,
            Permission::EvidenceAttach,
            &Resource::Service("billing"),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "service_out_of_scope");
        assert!(err.to_string().contains("billing"), "{err}");
        // Not release-scoped: the pack is not a service's.
        authorize(&policy, &pipeline, Permission::PackRead, &Resource::System).unwrap();
        // Unscoped principals act on any service.
        authorize(
            &policy,
            &principal(&["submitter"], None),
            Permission::ReleaseCreate,
            &Resource::Service("billing"),
        )
        .unwrap();
        // A role check still comes first.
        assert_eq!(
            authorize(
                &policy,
                &pipeline,
                Permission::GateApprove,
                &Resource::Service("payments"),
            )
            .unwrap_err()
            .reason(),
            "permission_not_granted"
        );
    }
}
