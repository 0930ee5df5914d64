//! The SABSA Layer 6 (Operational) document as `003_*` specifies it: six sections keyed
//! `6-1`…`6-6`, each with a title, Markdown content and two rationale fields, plus traceability
//! arrays keyed by section id. Export writes this shape and validation checks documents
//! against it, so the section table lives here once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One of the six operational sections, in document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectionId {
    Monitoring,
    Runbooks,
    Playbooks,
    Maintenance,
    Metrics,
    Improvement,
}

impl SectionId {
    pub const ALL: [SectionId; 6] = [
        SectionId::Monitoring,
        SectionId::Runbooks,
        SectionId::Playbooks,
        SectionId::Maintenance,
        SectionId::Metrics,
        SectionId::Improvement,
    ];

    /// The key of the section in `sections`, e.g. `6-1`.
    pub fn key(self) -> &'static str {
        match self {
            SectionId::Monitoring => "6-1",
            SectionId::Runbooks => "6-2",
            SectionId::Playbooks => "6-3",
            SectionId::Maintenance => "6-4",
            SectionId::Metrics => "6-5",
            SectionId::Improvement => "6-6",
        }
    }

    /// The dotted number used in Markdown headings, e.g. `6.1`.
    pub fn number(self) -> &'static str {
        match self {
            SectionId::Monitoring => "6.1",
            SectionId::Runbooks => "6.2",
            SectionId::Playbooks => "6.3",
            SectionId::Maintenance => "6.4",
            SectionId::Metrics => "6.5",
            SectionId::Improvement => "6.6",
        }
    }

    /// The exact title `003_*` prescribes.
    pub fn title(self) -> &'static str {
        match self {
            SectionId::Monitoring => "Monitoring & Alerting",
            SectionId::Runbooks => "Operational Runbooks",
            SectionId::Playbooks => "Incident Response Playbooks",
            SectionId::Maintenance => "Maintenance Procedures",
            SectionId::Metrics => "Metrics & Reporting",
            SectionId::Improvement => "Continuous Improvement",
        }
    }

    pub fn from_key(key: &str) -> Option<SectionId> {
        SectionId::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// The upstream sections the quality checklist requires the layer to trace to.
pub const REQUIRED_UPSTREAM: [&str; 4] = ["5-1", "5-3", "5-4", "4-5"];

/// A whole Layer 6 document. Maps are ordered so serialisation is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L6Document {
    pub sections: BTreeMap<String, Section>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub traceability: BTreeMap<String, Vec<TraceLink>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub content: String,
    pub rationale_why: String,
    pub rationale_condition: String,
}

/// One traceability reference: `source` is `POL-YYYY-NNN.component.<section>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceLink {
    pub source: String,
    pub relationship: String,
    pub description: String,
}

/// The upstream section a trace `source` names: its last `.`-separated segment
/// (`POL-2026-001.component.5-1` → `5-1`).
pub fn source_section(source: &str) -> &str {
    source.rsplit('.').next().unwrap_or(source).trim()
}
