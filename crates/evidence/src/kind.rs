//! The kinds of evidence a release can carry, with the names users type on the command line
//! and packs use in YAML.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A document kind (evidence that is a file or link, not a machine-readable report).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    ThreatModel,
    CodeReview,
    CiRun,
    RollbackPlan,
    MonitoringPlan,
    /// A kind declared by the policy pack.
    Declared(String),
}

impl DocumentKind {
    pub fn as_str(&self) -> &str {
        match self {
            Self::ThreatModel => "threat-model",
            Self::CodeReview => "code-review",
            Self::CiRun => "ci-run",
            Self::RollbackPlan => "rollback-plan",
            Self::MonitoringPlan => "monitoring-plan",
            Self::Declared(name) => name,
        }
    }
}

/// What an evidence file is, which decides the parser.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EvidenceKind {
    Sarif,
    CycloneDx,
    Spdx,
    OpenVex,
    Junit,
    /// in-toto Statement, plain or in a DSSE envelope / Sigstore bundle / npm or gcloud wrapper.
    InToto,
    Document(DocumentKind),
}

impl EvidenceKind {
    /// The built-in kind names accepted by [`FromStr`].
    pub const NAMES: &'static [&'static str] = &[
        "sarif",
        "cyclonedx",
        "spdx",
        "openvex",
        "junit",
        "in-toto",
        "threat-model",
        "code-review",
        "ci-run",
        "rollback-plan",
        "monitoring-plan",
    ];

    /// A document kind declared by a policy pack (e.g. `pentest-report`). Built-in names keep
    /// their own parser.
    pub fn declared_document(name: &str) -> Self {
        name.parse()
            .unwrap_or_else(|_| Self::Document(DocumentKind::Declared(name.to_string())))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Sarif => "sarif",
            Self::CycloneDx => "cyclonedx",
            Self::Spdx => "spdx",
            Self::OpenVex => "openvex",
            Self::Junit => "junit",
            Self::InToto => "in-toto",
            Self::Document(kind) => kind.as_str(),
        }
    }
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EvidenceKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An evidence kind name that is not built in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown evidence kind {0:?} (known: {known})", known = EvidenceKind::NAMES.join(", "))]
pub struct UnknownKind(pub String);

impl FromStr for EvidenceKind {
    type Err = UnknownKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "sarif" => Self::Sarif,
            "cyclonedx" | "cdx" => Self::CycloneDx,
            "spdx" => Self::Spdx,
            "openvex" | "vex" => Self::OpenVex,
            "junit" => Self::Junit,
            "in-toto" | "intoto" | "dsse" | "slsa-provenance" | "attestation" => Self::InToto,
            "threat-model" => Self::Document(DocumentKind::ThreatModel),
            "code-review" => Self::Document(DocumentKind::CodeReview),
            "ci-run" => Self::Document(DocumentKind::CiRun),
            "rollback-plan" => Self::Document(DocumentKind::RollbackPlan),
            "monitoring-plan" => Self::Document(DocumentKind::MonitoringPlan),
            _ => return Err(UnknownKind(name.to_string())),
        })
    }
}
