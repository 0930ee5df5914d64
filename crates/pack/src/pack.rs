//! The in-memory pack: documents in load order with lookup by id and typed accessors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::{
    Alert, Control, Document, EscalationPolicy, HealthCheck, IdentityProvider, Improvement, Kind,
    Kpi, Maintenance, Person, Playbook, ReleaseClass, RiskModel, Role, Runbook, Schedule,
    SupportTier, Team,
};
use crate::model::{DetectionRules, EventSource};

/// One document and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub file: PathBuf,
    pub document: Document,
}

/// A parsed policy pack. Ids are unique: the loader drops (and reports) duplicates.
#[derive(Debug, Clone, Default)]
pub struct Pack {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    digest: String,
}

macro_rules! accessors {
    ($( $plural:ident, $single:ident: $kind:ident; )*) => {
        impl Pack {
            $(
                #[doc = concat!("All `", stringify!($kind), "` documents, in load order.")]
                pub fn $plural(&self) -> impl Iterator<Item = &$kind> {
                    self.entries.iter().filter_map(|e| match &e.document {
                        Document::$kind(d) => Some(d),
                        _ => None,
                    })
                }

                #[doc = concat!("The `", stringify!($kind), "` with this id, if any.")]
                pub fn $single(&self, id: &str) -> Option<&$kind> {
                    match self.get(id) {
                        Some(Document::$kind(d)) => Some(d),
                        _ => None,
                    }
                }
            )*
        }
    };
}

accessors! {
    roles, role: Role;
    people, person: Person;
    teams, team: Team;
    release_classes, release_class: ReleaseClass;
    controls, control: Control;
    risk_models, risk_model: RiskModel;
    alerts, alert: Alert;
    schedules, schedule: Schedule;
    escalation_policies, escalation_policy: EscalationPolicy;
    support_tiers, support_tier: SupportTier;
    health_checks, health_check: HealthCheck;
    runbooks, runbook: Runbook;
    playbooks, playbook: Playbook;
    maintenance_tasks, maintenance: Maintenance;
    kpis, kpi: Kpi;
    improvements, improvement: Improvement;
    identity_providers, identity_provider: IdentityProvider;
    event_sources, event_source: EventSource;
    detection_rules, detection_rule_set: DetectionRules;
}

impl Pack {
    pub(crate) fn new(entries: Vec<Entry>, digest: String) -> Self {
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.document.id().value.clone(), i))
            .collect();
        Self {
            entries,
            index,
            digest,
        }
    }

    /// Every release class's Rego policies with the file the class came from, for the loader
    /// to fill in their sources.
    pub(crate) fn rego_policies_mut(
        &mut self,
    ) -> impl Iterator<Item = (&Path, &mut crate::model::RegoPolicy)> {
        self.entries
            .iter_mut()
            .filter_map(|e| match &mut e.document {
                Document::ReleaseClass(c) => Some((e.file.as_path(), &mut c.policies)),
                _ => None,
            })
            .flat_map(|(file, policies)| policies.iter_mut().map(move |p| (file, p)))
    }

    /// Folds files read after the YAML documents (Rego policies) into the digest, so editing
    /// one changes the pack's identity and a reload picks it up.
    pub(crate) fn fold_into_digest(&mut self, files: &[(PathBuf, String)]) {
        use sha2::{Digest as _, Sha256};
        if files.is_empty() {
            return;
        }
        let mut hasher = Sha256::new();
        hasher.update(self.digest.as_bytes());
        for (path, text) in files {
            let name = path.to_string_lossy();
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
        self.digest = format!("{:x}", hasher.finalize());
    }

    /// Hex SHA-256 over every file read (relative path, length and bytes, in sorted path
    /// order): identifies exactly which pack a decision was made under.
    pub fn digest(&self) -> String {
        self.digest.clone()
    }

    pub fn document_count(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.entries.iter().map(|e| &e.document)
    }

    /// Any document by id.
    pub fn get(&self, id: &str) -> Option<&Document> {
        self.index.get(id).map(|&i| &self.entries[i].document)
    }

    /// The document with this id and the file it was loaded from.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.index.get(id).map(|&i| &self.entries[i])
    }

    /// The file a document was loaded from.
    pub fn file_of(&self, id: &str) -> Option<&Path> {
        self.entry(id).map(|e| e.file.as_path())
    }

    pub fn kind_of(&self, id: &str) -> Option<Kind> {
        self.get(id).map(Document::kind)
    }

    /// People who hold the role with this id.
    pub fn holders_of<'a>(
        &'a self,
        role_id: &'a str,
    ) -> impl Iterator<Item = &'a crate::model::Person> {
        self.people()
            .filter(move |p| p.roles.iter().any(|r| r.value == role_id))
    }
}
