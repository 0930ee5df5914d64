//! The recorded gate state of one release: evidence, requirement statuses, exceptions, risks,
//! approvals, bypasses and the emergency retrospective.
//!
//! These are plain records as the store keeps them. Nothing here decides anything; the verdict
//! is computed from them by [`super::evaluate`], and new records are vetted by the decision
//! functions in [`super::decide`].
//!
//! Every record that can change what an approver looked at (evidence, requirement statuses,
//! exceptions, risks) carries the [`Revision`] at which it was last written. The state's
//! revision is the highest of them, and an approval remembers the revision it was given at: an
//! approval older than the state is stale. Revisions rather than timestamps decide staleness
//! because two writes in the same millisecond (an approval racing an evidence upload) still get
//! distinct, ordered revisions from the store.

use gatehouse_evidence::{EvidenceKind, Facts};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::identity::{AuthMethod, Principal};
use crate::release::Release;

/// A number that grows by one with every change to a release's reviewable material.
pub type Revision = u64;

/// Whether an identity is a person (who may approve) or an automated pipeline (who may not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Person,
    Pipeline,
}

impl PrincipalKind {
    /// Classifies `principal`. Only a principal that the pack lists as a `Person`
    /// (`is_pack_person`) and that did not authenticate with a workload token is a person;
    /// anything else (a CI token, an unknown subject) counts as a pipeline, so an approval can
    /// never come from an identity nobody vouched for as human.
    pub fn of(principal: &Principal, is_pack_person: bool) -> Self {
        if is_pack_person && principal.auth_method != AuthMethod::OidcWorkload {
            Self::Person
        } else {
            Self::Pipeline
        }
    }
}

/// Who did something, as recorded with the act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Principal id (a pack `Person` id, or a workload subject).
    pub id: String,
    /// Name shown in memos and summaries.
    pub display: String,
    pub kind: PrincipalKind,
}

impl Actor {
    /// The actor for `principal`; see [`PrincipalKind::of`] for `is_pack_person`.
    pub fn from_principal(principal: &Principal, is_pack_person: bool) -> Self {
        Self {
            id: principal.id.clone(),
            display: principal.display.clone(),
            kind: PrincipalKind::of(principal, is_pack_person),
        }
    }
}

/// The normalized facts of an evidence item, or why they could not be read back.
///
/// Facts come from `gatehouse-evidence` at upload time. If the stored facts cannot be turned
/// back into [`Facts`] (a format change, a corrupt row), the item is kept as `Unreadable` so
/// the gate can block on it by name instead of silently dropping it.
// Nearly every item holds parsed facts, so boxing them would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", content = "facts", rename_all = "snake_case")]
pub enum EvidenceFacts {
    Parsed(Facts),
    Unreadable { reason: String },
}

/// One piece of evidence attached to a release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceItem {
    /// Store-assigned id, unique within the release.
    pub id: String,
    /// The format the file was parsed as (`sarif`, `cyclonedx`, `threat-model`, …).
    pub kind: EvidenceKind,
    /// Lower-case hex SHA-256 of the stored bytes (the content address).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    pub attached_at: Timestamp,
    /// Principal id of the uploader.
    pub attached_by: String,
    pub facts: EvidenceFacts,
    /// Id of an earlier item this one replaces (e.g. a re-run scan). A superseded item no
    /// longer satisfies requirements nor contributes findings; replacing is explicit so that
    /// an old report is never dropped by guesswork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    pub revision: Revision,
}

impl EvidenceItem {
    /// The digest in `sha256:<hex>` form, as shown to people.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.sha256)
    }
}

/// Where a security requirement of the release class stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RequirementStatus {
    /// Done, and these evidence items show it.
    Complete { evidence: Vec<String> },
    /// Not done yet; a holder of `role` accepted finishing it by `due`.
    Deferred {
        approved_by: Actor,
        role: String,
        due: Timestamp,
    },
    /// Not done; an [`Exception`] accepts that.
    Excepted { exception: String },
}

/// The recorded status of one security requirement of the release class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementRecord {
    /// `SecurityRequirement.id` in the release class.
    pub requirement: String,
    pub status: RequirementStatus,
    /// Principal id of whoever recorded the status.
    pub recorded_by: String,
    pub at: Timestamp,
    pub revision: Revision,
}

/// Which findings an exception covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FindingScope {
    /// One vulnerability (CVE, GHSA, … id; aliases match too).
    Vulnerability { id: String },
    /// All results of one SARIF rule.
    SarifRule { rule_id: String },
    /// One failing test case (`classname` matches any when absent).
    TestCase {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        classname: Option<String>,
        name: String,
    },
    /// Every finding of one evidence item: tied to that exact file, so a new upload is not
    /// covered.
    EvidenceItem { evidence: String },
}

/// What an exception excepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum ExceptionScope {
    /// A `security_requirements[].id` of the class.
    Requirement { id: String },
    /// A `required_evidence[].kind` of the class.
    Evidence { kind: String },
    /// Findings that would otherwise count against the class's thresholds.
    Finding { finding: FindingScope },
}

/// A documented, approved, expiring acceptance of an unmet requirement or of findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    pub id: String,
    pub scope: ExceptionScope,
    pub justification: String,
    /// What reduces the risk meanwhile; listed in the release memo.
    pub compensating_controls: Vec<String>,
    pub approver: Actor,
    /// The role the approver acted in; must be a role that approves this class.
    pub approver_role: String,
    pub approved_at: Timestamp,
    /// Mandatory: exceptions that never expire are what gatehouse exists to prevent.
    pub expires_at: Timestamp,
    /// Set when the exception was withdrawn; a withdrawn exception is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<Timestamp>,
    pub revision: Revision,
}

/// Where a risk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskStatus {
    Open,
    /// Reduced by controls; still listed as residual risk.
    Mitigated,
    Closed,
}

impl RiskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Mitigated => "mitigated",
            Self::Closed => "closed",
        }
    }
}

/// An entry of the release's risk register, scored by the pack's `RiskModel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    pub id: String,
    pub title: String,
    /// A `value` of the risk model's likelihood scale.
    pub likelihood: u32,
    /// A `value` of the risk model's impact scale.
    pub impact: u32,
    pub status: RiskStatus,
    /// Person or team accountable for the risk.
    pub owner: String,
    pub revision: Revision,
}

/// What an approval is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApprovalTarget {
    /// Step `index` (0-based) of the class's `approver_path`.
    Step { index: usize },
    /// Acceptance of one risk above the class's delegated threshold, by its escalation role.
    RiskEscalation { risk: String },
}

/// An explicit decision; there is no implied approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approve,
    Reject,
}

impl ApprovalDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

/// One recorded approve/reject decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub target: ApprovalTarget,
    pub approver: Actor,
    /// The role the approver acted in (must be the step's or the escalation role).
    pub role: String,
    pub decision: ApprovalDecision,
    pub comment: String,
    pub at: Timestamp,
    /// The state revision the approver reviewed.
    pub revision: Revision,
}

/// A recorded decision to release despite the gate. Needs its own permission; it is never
/// silent: it stays on the release, in the verdict and in the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bypass {
    pub id: String,
    pub by: Actor,
    pub reason: String,
    pub at: Timestamp,
    /// The state revision the bypass was granted for; a later change voids it.
    pub revision: Revision,
    /// What the gate said when it was bypassed.
    pub overridden: super::GateDecision,
}

/// The retrospective review an emergency release owes after it shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyRetrospective {
    pub reviewer: Actor,
    /// The role the reviewer acted in (the class's `emergency.retrospective_role` when set).
    pub role: String,
    pub completed_at: Timestamp,
    pub summary: String,
}

/// Everything recorded about a release that the gate reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseGateState {
    pub release: Release,
    pub evidence: Vec<EvidenceItem>,
    pub requirements: Vec<RequirementRecord>,
    pub exceptions: Vec<Exception>,
    pub risks: Vec<Risk>,
    pub approvals: Vec<Approval>,
    pub bypasses: Vec<Bypass>,
    pub retrospective: Option<EmergencyRetrospective>,
    /// When the release reached its target environment, if it did. An emergency
    /// retrospective is due within the class's window from here (from `created_at` while
    /// unknown, which is never later).
    pub deployed_at: Option<Timestamp>,
}

impl ReleaseGateState {
    /// A state with nothing attached yet.
    pub fn new(release: Release) -> Self {
        Self {
            release,
            evidence: Vec::new(),
            requirements: Vec::new(),
            exceptions: Vec::new(),
            risks: Vec::new(),
            approvals: Vec::new(),
            bypasses: Vec::new(),
            retrospective: None,
            deployed_at: None,
        }
    }

    /// The revision of the reviewable material: the highest revision of any evidence item,
    /// requirement record, exception or risk (0 when there is none).
    pub fn revision(&self) -> Revision {
        let evidence = self.evidence.iter().map(|e| e.revision);
        let requirements = self.requirements.iter().map(|r| r.revision);
        let exceptions = self.exceptions.iter().map(|e| e.revision);
        let risks = self.risks.iter().map(|r| r.revision);
        evidence
            .chain(requirements)
            .chain(exceptions)
            .chain(risks)
            .max()
            .unwrap_or(0)
    }

    /// The revision the next material change gets.
    pub fn next_revision(&self) -> Revision {
        self.revision().saturating_add(1)
    }

    pub fn evidence_item(&self, id: &str) -> Option<&EvidenceItem> {
        self.evidence.iter().find(|e| e.id == id)
    }

    pub fn exception(&self, id: &str) -> Option<&Exception> {
        self.exceptions.iter().find(|e| e.id == id)
    }

    pub fn risk(&self, id: &str) -> Option<&Risk> {
        self.risks.iter().find(|r| r.id == id)
    }

    /// The current status record of requirement `id` (the one with the highest revision).
    pub fn requirement_record(&self, id: &str) -> Option<&RequirementRecord> {
        self.requirements
            .iter()
            .filter(|r| r.requirement == id)
            .max_by_key(|r| r.revision)
    }

    /// Material changes after `revision`, described for people, for explaining stale
    /// approvals ("evidence ev-7 (sha256:…) attached at revision 4").
    pub fn changes_after(&self, revision: Revision) -> Vec<String> {
        let mut changes: Vec<(Revision, String)> = Vec::new();
        for e in self.evidence.iter().filter(|e| e.revision > revision) {
            changes.push((
                e.revision,
                format!(
                    "evidence {} ({} {}) attached at revision {}",
                    e.id,
                    e.kind,
                    e.digest(),
                    e.revision
                ),
            ));
        }
        for r in self.requirements.iter().filter(|r| r.revision > revision) {
            changes.push((
                r.revision,
                format!(
                    "requirement {} status changed at revision {}",
                    r.requirement, r.revision
                ),
            ));
        }
        for x in self.exceptions.iter().filter(|x| x.revision > revision) {
            changes.push((
                x.revision,
                format!("exception {} changed at revision {}", x.id, x.revision),
            ));
        }
        for r in self.risks.iter().filter(|r| r.revision > revision) {
            changes.push((
                r.revision,
                format!("risk {} changed at revision {}", r.id, r.revision),
            ));
        }
        changes.sort();
        changes.into_iter().map(|(_, text)| text).collect()
    }
}

impl Exception {
    /// Whether the exception has been withdrawn at `now`.
    pub fn is_withdrawn(&self, now: Timestamp) -> bool {
        self.withdrawn_at.is_some_and(|at| at <= now)
    }

    /// Whether the exception has expired at `now` (the expiry instant itself is expired).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }
}
