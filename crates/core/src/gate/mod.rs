//! The release gate: may this release go to production, and why (not)?
//!
//! The security release-gate standard asks for six gate categories before a production
//! release: change context and ownership recorded; security requirements complete, deferred
//! with approval, or formally excepted; required evidence attached; findings within the
//! class's thresholds; open risks above the delegated threshold escalated; and the documented
//! approver path followed, with no implied approval. This module turns that into a pure
//! function, [`evaluate`], from a pack [`ReleaseClass`](gatehouse_pack::model::ReleaseClass),
//! its [`RiskModel`](gatehouse_pack::model::RiskModel), the recorded [`ReleaseGateState`] and
//! the time, to a [`GateVerdict`]: `pass`, `pending` or `blocked`, one [`CategoryResult`] per
//! category, and every [`Reason`] naming the rule and the evidence behind it.
//!
//! It fails closed. Whatever it cannot interpret blocks: an evidence kind it does not know,
//! facts it cannot read, risks without a model, a quorum of zero, a record that breaks
//! separation of duties. Exceptions always expire, and an expired one blocks until it is
//! renewed or withdrawn. An approval counts only for the revision of the material its
//! approver reviewed; any later evidence, requirement, exception or risk change makes it
//! stale.
//!
//! - [`model`]: the recorded state (evidence, requirement statuses, exceptions, risks,
//!   approvals, bypasses, the emergency retrospective).
//! - [`evaluate()`]: the verdict, one private module per category (`context`, `requirements`,
//!   `evidence`, `findings`, `risks`, `approvals`); `findings` documents how findings are
//!   counted, and `policy` evaluates the class's Rego policies into the findings category.
//! - [`decide`]: vetting of state changes (approve, bypass, attach evidence, except) with typed
//!   errors, used by the server before it writes.
//! - [`metrics`]: gate bypasses, emergency releases, evidence completeness, review latency and
//!   overdue retrospectives over a period.
//! - [`render`]: the Markdown summary (`gate check --format markdown`, `$GITHUB_STEP_SUMMARY`)
//!   and the security release memo in Markdown and HTML.
//!
//! ```
//! use gatehouse_core::gate::{GateCategory, GateDecision, ReleaseGateState, evaluate};
//! use gatehouse_core::release::NewRelease;
//!
//! let loaded = gatehouse_pack::load_files([(
//!     "classes.yaml",
//!     "kind: ReleaseClass\nid: normal\n\
//!      required_evidence: [{kind: sast, max_age: 7d}]\n\
//!      approver_path: [{role: security-lead}]\n",
//! )]);
//! let class = loaded.pack.release_class("normal").unwrap();
//!
//! let now: jiff::Timestamp = "2026-11-20T10:00:00Z".parse().unwrap();
//! let release = NewRelease {
//!     service: "payments".into(),
//!     version: "2.14.0".into(),
//!     release_class: "normal".into(),
//!     artifact_digests: vec![gatehouse_core::release::Digest::of_bytes(b"app").to_string()],
//!     owner: "team-payments".into(),
//!     change: gatehouse_core::release::ChangeContext {
//!         summary: "Rotate keys".into(),
//!         ..Default::default()
//!     },
//!     target_environment: "production".into(),
//! }
//! .into_release(gatehouse_core::release::ReleaseId::generate(now).unwrap(), "alice", now)
//! .unwrap();
//!
//! // Nothing attached, nobody approved: pending, and the reasons say what is missing.
//! let verdict = evaluate(class, None, &ReleaseGateState::new(release), now);
//! assert_eq!(verdict.decision, GateDecision::Pending);
//! let evidence = verdict.category(GateCategory::Evidence).unwrap();
//! assert_eq!(evidence.reasons[0].code, "evidence_missing");
//! assert_eq!(evidence.reasons[0].rule.field, "required_evidence[0]");
//! ```

mod approvals;
pub mod attestation;
mod context;
pub mod decide;
mod evaluate;
mod evidence;
mod findings;
pub mod kinds;
pub mod metrics;
pub mod model;
mod policy;
pub mod render;
mod requirements;
mod risks;
pub mod store;
mod verdict;

pub use decide::{
    ApprovalError, ApprovalRequest, AttachError, Attachment, BypassError, ExceptionError,
    NewEvidence, RequirementError, RiskError, attach_evidence, can_approve, record_approval,
    record_bypass, record_exception, record_requirement_status, record_risk,
};
pub use evaluate::{
    EXCEPTION_WARNING_WINDOW, class_missing, evaluate, evaluate_in_pack, risk_model_for,
};
pub use model::{
    Actor, Approval, ApprovalDecision, ApprovalTarget, Bypass, EmergencyRetrospective,
    EvidenceFacts, EvidenceItem, Exception, ExceptionScope, FindingScope, PrincipalKind,
    ReleaseGateState, RequirementRecord, RequirementStatus, Revision, Risk, RiskStatus,
};
pub use verdict::{
    CategoryResult, EvidenceRef, FindingTally, GateCategory, GateDecision, GateVerdict, Reason,
    ReasonLevel, RuleRef,
};
