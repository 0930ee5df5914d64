//! The `GateStore` port: how the recorded gate state of a release is persisted.
//!
//! It is a port of its own, beside [`crate::store::Store`], so the release gate's tables can be
//! added without touching the control plane's trait; the adapters (`gatehouse-store`) implement
//! both over the same database.
//!
//! Concurrency is decided here, not in handlers: every write names the revision of the state
//! its decision was made on ([`GateWrite::based_on`]), and the store checks it inside the write
//! transaction against the release's current revision. A material change (evidence, a
//! requirement status, an exception, a risk) must be at exactly `based_on + 1` and moves the
//! release to it; an approval or bypass must have been decided on the current revision and
//! moves nothing. So an approval racing an evidence upload cannot both win: whichever commits
//! second fails with [`GateWriteError::Moved`] and is decided again on the new state (where the
//! approval is then stale).
//!
//! Evidence bytes are not stored through this port but through [`crate::blobs::BlobStore`]
//! (sealed, chunked, content-addressed). Evidence facts are not stored as JSON: they are a
//! function of the stored bytes and the kind, so the loader re-derives them (see [`StoredEvidence`]) and a parser fix applies to
//! evidence already attached.

use async_trait::async_trait;
pub use gatehouse_evidence::EvidenceKind;
use jiff::Timestamp;

use super::model::{
    Approval, Bypass, EmergencyRetrospective, EvidenceFacts, EvidenceItem, Exception,
    ReleaseGateState, RequirementRecord, Revision, Risk,
};
use crate::release::{Release, ReleaseId};
use crate::store::StoreError;

/// An evidence row as stored: everything of an [`EvidenceItem`] except its facts, which are
/// derived again from the stored bytes (`sha256`) when the state is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvidence {
    pub id: String,
    pub kind: EvidenceKind,
    pub sha256: String,
    pub size: u64,
    pub attached_at: Timestamp,
    pub attached_by: String,
    pub supersedes: Option<String>,
    pub revision: Revision,
}

impl StoredEvidence {
    /// The item with its facts.
    pub fn with_facts(self, facts: EvidenceFacts) -> EvidenceItem {
        EvidenceItem {
            id: self.id,
            kind: self.kind,
            sha256: self.sha256,
            size: self.size,
            attached_at: self.attached_at,
            attached_by: self.attached_by,
            facts,
            supersedes: self.supersedes,
            revision: self.revision,
        }
    }
}

/// The gate records of one release as the store holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGateRecords {
    /// The release's current revision (0 before the first material change).
    pub revision: Revision,
    pub evidence: Vec<StoredEvidence>,
    /// Every requirement status ever recorded (the current one has the highest revision).
    pub requirements: Vec<RequirementRecord>,
    /// The latest version of each exception.
    pub exceptions: Vec<Exception>,
    /// The latest version of each risk.
    pub risks: Vec<Risk>,
    pub approvals: Vec<Approval>,
    pub bypasses: Vec<Bypass>,
    pub retrospective: Option<EmergencyRetrospective>,
}

impl StoredGateRecords {
    /// The state the gate evaluates, with `facts` giving each evidence item its facts.
    pub fn into_state(
        self,
        release: Release,
        mut facts: impl FnMut(&StoredEvidence) -> EvidenceFacts,
    ) -> ReleaseGateState {
        let mut state = ReleaseGateState::new(release);
        state.evidence = self
            .evidence
            .into_iter()
            .map(|e| {
                let f = facts(&e);
                e.with_facts(f)
            })
            .collect();
        state.requirements = self.requirements;
        state.exceptions = self.exceptions;
        state.risks = self.risks;
        state.approvals = self.approvals;
        state.bypasses = self.bypasses;
        state.retrospective = self.retrospective;
        state
    }
}

/// One record to write, as returned by a decision function in [`super::decide`].
#[derive(Debug, Clone, PartialEq)]
pub enum GateRecord {
    /// A new evidence item. Its bytes are already stored, sealed, through the
    /// [`crate::blobs::BlobStore`] port (once per digest, shared by releases).
    Evidence {
        item: StoredEvidence,
    },
    Requirement(RequirementRecord),
    /// A new exception or a new version of one (e.g. withdrawn).
    Exception(Exception),
    /// A new risk or a new version of one.
    Risk(Risk),
    Approval(Approval),
    Bypass(Bypass),
    Retrospective(EmergencyRetrospective),
}

impl GateRecord {
    /// The revision a material record carries; `None` for approvals, bypasses and the
    /// retrospective, which do not change what an approver reviews.
    pub fn material_revision(&self) -> Option<Revision> {
        match self {
            Self::Evidence { item, .. } => Some(item.revision),
            Self::Requirement(r) => Some(r.revision),
            Self::Exception(x) => Some(x.revision),
            Self::Risk(r) => Some(r.revision),
            Self::Approval(_) | Self::Bypass(_) | Self::Retrospective(_) => None,
        }
    }

    /// What the record is, for messages (`evidence ev-…`, `approval ap-…`).
    pub fn describe(&self) -> String {
        match self {
            Self::Evidence { item, .. } => format!("evidence {}", item.id),
            Self::Requirement(r) => format!("requirement {} status", r.requirement),
            Self::Exception(x) => format!("exception {}", x.id),
            Self::Risk(r) => format!("risk {}", r.id),
            Self::Approval(a) => format!("approval {}", a.id),
            Self::Bypass(b) => format!("bypass {}", b.id),
            Self::Retrospective(_) => "retrospective".to_owned(),
        }
    }
}

/// A write of `record`, decided on the state at revision `based_on`.
#[derive(Debug, Clone, PartialEq)]
pub struct GateWrite {
    pub release: ReleaseId,
    pub based_on: Revision,
    pub record: GateRecord,
}

impl GateWrite {
    /// Checks the revision rule of the module docs before anything is written: a material
    /// record must be at `based_on + 1`; an approval or bypass at `based_on`.
    pub fn revision_problem(&self) -> Option<String> {
        let expected_material = self.based_on.saturating_add(1);
        match &self.record {
            r @ (GateRecord::Evidence { .. }
            | GateRecord::Requirement(_)
            | GateRecord::Exception(_)
            | GateRecord::Risk(_)) => {
                let rev = r.material_revision().unwrap_or(0);
                (rev != expected_material).then(|| {
                    format!(
                        "{} carries revision {rev}, but a change decided on revision {} must \
                         carry {expected_material}",
                        r.describe(),
                        self.based_on
                    )
                })
            }
            GateRecord::Approval(a) => (a.revision != self.based_on).then(|| {
                format!(
                    "approval {} was given at revision {}, not the decided-on revision {}",
                    a.id, a.revision, self.based_on
                )
            }),
            GateRecord::Bypass(b) => (b.revision != self.based_on).then(|| {
                format!(
                    "bypass {} was granted at revision {}, not the decided-on revision {}",
                    b.id, b.revision, self.based_on
                )
            }),
            GateRecord::Retrospective(_) => None,
        }
    }
}

/// Why a gate write was not made.
#[derive(Debug, thiserror::Error)]
pub enum GateWriteError {
    /// Someone else changed the release after the decision was made; decide again.
    #[error(
        "release {release} moved to revision {current} while this change was decided on \
         revision {based_on}"
    )]
    Moved {
        release: ReleaseId,
        based_on: Revision,
        current: Revision,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a walk over the releases stands: the submission time and id of the last release of
/// the previous page ([`GateStore::releases_before`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseCursor {
    pub created_at: Timestamp,
    pub id: ReleaseId,
}

impl ReleaseCursor {
    /// The position just after `release` in the walk.
    pub fn after(release: &Release) -> Self {
        Self {
            created_at: release.created_at,
            id: release.id,
        }
    }
}

/// Persistence of the release gate, implemented by `gatehouse-store` for SQLite and PostgreSQL.
#[async_trait]
pub trait GateStore: Send + Sync {
    /// One page of the releases submitted before `before`, newest first (by submission time,
    /// then id), starting after `after`: at most `limit` of them (capped at
    /// [`crate::store::MAX_PAGE_SIZE`]). Passing the last release of each page as the next
    /// `after` visits every release once, however many there are, one page in memory at a
    /// time; the gate metrics walk the store this way. A release submitted while a walk runs
    /// is newer than its cursor and is not visited.
    async fn releases_before(
        &self,
        before: Timestamp,
        after: Option<&ReleaseCursor>,
        limit: u32,
    ) -> Result<Vec<Release>, StoreError>;

    /// The gate records of `release` (empty records for a release with none). Does not check
    /// that the release exists; the caller has loaded it through [`crate::store::Store`].
    async fn load_gate_records(&self, release: ReleaseId) -> Result<StoredGateRecords, StoreError>;

    /// Writes `write` in one transaction, checking its revision there (see the module docs).
    /// An evidence item's blob must already be stored (`BlobStore::put`); a second write of
    /// the same item id or the same digest on the same release is a [`StoreError::Conflict`].
    async fn write_gate_record(&self, write: &GateWrite) -> Result<(), GateWriteError>;
}
