//! CycloneDX 1.2–1.7 BOMs and VEX, JSON and XML: components (nested ones included),
//! vulnerabilities with their highest rating severity and analysis state.
//!
//! Components are counted, never kept: an SBOM of a container image has tens of thousands of
//! them and the gate only needs the numbers. Vulnerabilities are kept as a short record each
//! (id, severity, analysis state, affected refs) because the gate applies VEX statements to
//! them; that list is capped by [`Limits::max_listed`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use quick_xml::events::BytesStart;
use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::Limits;
use crate::error::EvidenceError;
use crate::jsonkit::{
    Array, CountElements, Elements, ForeignMarker, LenientString, field_keys, wrong_kind,
};
use crate::kind::EvidenceKind;
use crate::xmlkit::{self, Path, XmlHandler};

/// Vulnerabilities per highest rating severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
    pub none: u64,
    /// A rating without a (known) severity.
    pub unknown: u64,
    /// A vulnerability without any rating.
    pub no_ratings: u64,
}

/// One vulnerability of a BOM/VEX.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VulnerabilityFact {
    pub id: Option<String>,
    /// Highest severity among the ratings (`no_ratings` when there is none).
    pub severity: String,
    /// `analysis.state` (e.g. `not_affected`, `exploitable`, `resolved`).
    pub analysis_state: Option<String>,
    /// `affects[].ref` (bom-refs of the affected components).
    pub affects: Vec<String>,
}

/// Facts of a CycloneDX BOM.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CycloneDxFacts {
    pub spec_version: Option<String>,
    /// `json` or `xml`.
    pub serialization: &'static str,
    /// Every component, nested ones included (`metadata.component` excluded).
    pub components: u64,
    pub components_top_level: u64,
    pub components_max_depth: u64,
    pub metadata_component_present: bool,
    pub services: u64,
    pub dependencies: u64,
    pub vulnerabilities: u64,
    /// Vulnerabilities per highest rating severity.
    pub by_severity: SeverityCounts,
    /// Vulnerabilities per `analysis.state`.
    pub by_analysis_state: BTreeMap<String, u64>,
    pub vulnerability_list: Vec<VulnerabilityFact>,
    pub vulnerability_list_truncated: bool,
    /// Schema violations that do not stop the counting (e.g. a `metadata.timestamp` that is
    /// not RFC 3339). A gate should treat evidence with problems as not trustworthy.
    pub problems: Vec<String>,
}

/// Severity rank, highest first in the CycloneDX order critical > high > medium > low > info >
/// none > unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Unknown,
    None,
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "critical" => Self::Critical,
            "high" => Self::High,
            "medium" => Self::Medium,
            "low" => Self::Low,
            "info" => Self::Info,
            "none" => Self::None,
            _ => Self::Unknown,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Info => "info",
            Self::None => "none",
            Self::Unknown => "unknown",
        }
    }
}

/// Accumulates vulnerabilities (shared by the JSON and XML readers).
#[derive(Default)]
struct VulnerabilityDraft {
    id: Option<String>,
    ratings: u64,
    highest: Option<Severity>,
    analysis_state: Option<String>,
    affects: Vec<String>,
}

impl VulnerabilityDraft {
    fn add_rating(&mut self, severity: Option<&str>) {
        self.ratings += 1;
        let severity = severity.map_or(Severity::Unknown, Severity::parse);
        self.highest = Some(
            self.highest
                .map_or(severity, |current| current.max(severity)),
        );
    }
}

impl CycloneDxFacts {
    fn add_vulnerability(&mut self, draft: VulnerabilityDraft, limits: &Limits) {
        self.vulnerabilities += 1;
        let severity = match draft.highest {
            None => {
                self.by_severity.no_ratings += 1;
                "no_ratings"
            }
            Some(severity) => {
                let counts = &mut self.by_severity;
                match severity {
                    Severity::Critical => counts.critical += 1,
                    Severity::High => counts.high += 1,
                    Severity::Medium => counts.medium += 1,
                    Severity::Low => counts.low += 1,
                    Severity::Info => counts.info += 1,
                    Severity::None => counts.none += 1,
                    Severity::Unknown => counts.unknown += 1,
                }
                severity.name()
            }
        };
        if let Some(state) = &draft.analysis_state {
            *self.by_analysis_state.entry(state.clone()).or_insert(0) += 1;
        }
        if self.vulnerability_list.len() < limits.max_listed {
            self.vulnerability_list.push(VulnerabilityFact {
                id: draft.id,
                severity: severity.to_string(),
                analysis_state: draft.analysis_state,
                affects: draft.affects,
            });
        } else {
            self.vulnerability_list_truncated = true;
        }
    }
}

pub(crate) fn parse<R: BufRead>(
    reader: &mut R,
    limits: &Limits,
) -> Result<CycloneDxFacts, EvidenceError> {
    let kind = EvidenceKind::CycloneDx;
    match crate::input::peek_first_significant(reader)? {
        Some(b'<') => parse_xml(reader, limits),
        Some(_) => parse_json(reader, limits),
        None => Err(EvidenceError::Syntax {
            kind,
            location: crate::error::Location::ByteOffset(0),
            message: "empty document".to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

fn parse_json<R: BufRead>(
    reader: &mut R,
    limits: &Limits,
) -> Result<CycloneDxFacts, EvidenceError> {
    let mut facts = CycloneDxFacts {
        serialization: "json",
        ..CycloneDxFacts::default()
    };
    crate::jsonkit::parse_document(
        &EvidenceKind::CycloneDx,
        reader,
        BomSeed {
            facts: &mut facts,
            limits,
        },
    )?;
    Ok(facts)
}

struct BomSeed<'a> {
    facts: &'a mut CycloneDxFacts,
    limits: &'a Limits,
}

impl<'de> DeserializeSeed<'de> for BomSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BomSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CycloneDX BOM object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut bom_format: Option<String> = None;
        let mut foreign = ForeignMarker::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "bomFormat" => bom_format = map.next_value_seed(LenientString)?,
                "specVersion" => self.facts.spec_version = map.next_value_seed(LenientString)?,
                "metadata" => map.next_value_seed(MetadataSeed(self.facts))?,
                "components" => {
                    let mut components = ComponentsSink {
                        facts: self.facts,
                        depth: 1,
                    };
                    map.next_value_seed(Array(&mut components))?;
                }
                "services" => {
                    let mut services = CountElements(0);
                    map.next_value_seed(Array(&mut services))?;
                    self.facts.services = services.0;
                }
                "dependencies" => {
                    let mut dependencies = CountElements(0);
                    map.next_value_seed(Array(&mut dependencies))?;
                    self.facts.dependencies = dependencies.0;
                }
                "vulnerabilities" => {
                    let mut vulnerabilities = VulnerabilitiesSink {
                        facts: self.facts,
                        limits: self.limits,
                    };
                    map.next_value_seed(Array(&mut vulnerabilities))?;
                }
                other => {
                    foreign.note(other);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match bom_format.as_deref() {
            Some("CycloneDX") => Ok(()),
            Some(other) => Err(wrong_kind(&format!(
                "bomFormat is {other:?}, not \"CycloneDX\""
            ))),
            None => Err(wrong_kind(&foreign.describe("no `bomFormat`"))),
        }
    }
}

struct MetadataSeed<'a>(&'a mut CycloneDxFacts);

field_keys!(MetadataKey { Component => "component", Timestamp => "timestamp" });

impl<'de> DeserializeSeed<'de> for MetadataSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetadataSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CycloneDX metadata object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<MetadataKey>()? {
            match key {
                MetadataKey::Component => {
                    map.next_value::<IgnoredAny>()?;
                    self.0.metadata_component_present = true;
                }
                MetadataKey::Timestamp => {
                    // The schema requires an RFC 3339 date-time, and freshness is judged from
                    // it; a malformed one is recorded as a problem rather than guessed at.
                    if let Some(timestamp) = map.next_value_seed(LenientString)?
                        && timestamp.parse::<jiff::Timestamp>().is_err()
                    {
                        self.0.problems.push(format!(
                            "metadata.timestamp {timestamp:?} is not an RFC 3339 date-time"
                        ));
                    }
                }
                MetadataKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ComponentsSink<'a> {
    facts: &'a mut CycloneDxFacts,
    depth: u64,
}

impl<'de> Elements<'de> for ComponentsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let present = seq
            .next_element_seed(ComponentSeed {
                facts: self.facts,
                depth: self.depth,
            })?
            .is_some();
        if present {
            self.facts.components += 1;
            if self.depth == 1 {
                self.facts.components_top_level += 1;
            }
            self.facts.components_max_depth = self.facts.components_max_depth.max(self.depth);
        }
        Ok(present)
    }
}

struct ComponentSeed<'a> {
    facts: &'a mut CycloneDxFacts,
    depth: u64,
}

field_keys!(ComponentKey { Components => "components" });

impl<'de> DeserializeSeed<'de> for ComponentSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ComponentSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CycloneDX component object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<ComponentKey>()? {
            match key {
                ComponentKey::Components => {
                    let mut nested = ComponentsSink {
                        facts: self.facts,
                        depth: self.depth + 1,
                    };
                    map.next_value_seed(Array(&mut nested))?;
                }
                ComponentKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct VulnerabilitiesSink<'a> {
    facts: &'a mut CycloneDxFacts,
    limits: &'a Limits,
}

impl<'de> Elements<'de> for VulnerabilitiesSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        match seq.next_element_seed(VulnerabilitySeed)? {
            Some(draft) => {
                self.facts.add_vulnerability(draft, self.limits);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

struct VulnerabilitySeed;

field_keys!(VulnerabilityKey { Id => "id", Ratings => "ratings", Analysis => "analysis", Affects => "affects" });

impl<'de> DeserializeSeed<'de> for VulnerabilitySeed {
    type Value = VulnerabilityDraft;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for VulnerabilitySeed {
    type Value = VulnerabilityDraft;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CycloneDX vulnerability object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut draft = VulnerabilityDraft::default();
        while let Some(key) = map.next_key::<VulnerabilityKey>()? {
            match key {
                VulnerabilityKey::Id => draft.id = map.next_value_seed(LenientString)?,
                VulnerabilityKey::Ratings => {
                    map.next_value_seed(Array(&mut RatingsSink(&mut draft)))?
                }
                VulnerabilityKey::Analysis => {
                    draft.analysis_state = map.next_value_seed(AnalysisSeed)?
                }
                VulnerabilityKey::Affects => {
                    map.next_value_seed(Array(&mut AffectsSink(&mut draft.affects)))?
                }
                VulnerabilityKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(draft)
    }
}

struct RatingsSink<'a>(&'a mut VulnerabilityDraft);

impl<'de> Elements<'de> for RatingsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        match seq.next_element_seed(SingleFieldSeed {
            field: "severity",
            what: "a CycloneDX rating object",
        })? {
            Some(severity) => {
                self.0.add_rating(severity.as_deref());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

struct AffectsSink<'a>(&'a mut Vec<String>);

impl<'de> Elements<'de> for AffectsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        match seq.next_element_seed(SingleFieldSeed {
            field: "ref",
            what: "a CycloneDX affects object",
        })? {
            Some(reference) => {
                self.0.extend(reference);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

struct AnalysisSeed;

impl<'de> DeserializeSeed<'de> for AnalysisSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        SingleFieldSeed {
            field: "state",
            what: "a CycloneDX analysis object",
        }
        .deserialize(deserializer)
    }
}

/// Reads an object and keeps one string field of it.
struct SingleFieldSeed {
    field: &'static str,
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for SingleFieldSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SingleFieldSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.field {
                value = map.next_value_seed(LenientString)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(value)
    }
}

// ---------------------------------------------------------------------------------------------
// XML

fn parse_xml<R: BufRead>(reader: &mut R, limits: &Limits) -> Result<CycloneDxFacts, EvidenceError> {
    let kind = EvidenceKind::CycloneDx;
    let mut handler = XmlBom {
        facts: CycloneDxFacts {
            serialization: "xml",
            ..CycloneDxFacts::default()
        },
        limits,
        vulnerability: None,
        text: String::new(),
        rating_severity: None,
    };
    let root = xmlkit::walk(&kind, reader, limits, &mut handler)?;
    if root != "bom" {
        return Err(EvidenceError::WrongKind {
            kind,
            found: format!("the root element is <{root}>, not <bom>"),
        });
    }
    Ok(handler.facts)
}

struct XmlBom<'a> {
    facts: CycloneDxFacts,
    limits: &'a Limits,
    vulnerability: Option<VulnerabilityDraft>,
    text: String,
    /// Severity of the rating being read, kept until `</rating>`.
    rating_severity: Option<String>,
}

impl XmlBom<'_> {
    /// Depth of a `component` element under `bom/components`, or None when it is elsewhere
    /// (metadata, a vulnerability, a pedigree).
    fn component_depth(path: &Path) -> Option<u64> {
        let names: Vec<&str> = path.iter().collect();
        if names.len() < 3 || names[0] != "bom" || names[1] != "components" {
            return None;
        }
        // bom/components/component(/components/component)*
        let tail = &names[2..];
        if tail.len().is_multiple_of(2) {
            return None;
        }
        for (i, name) in tail.iter().enumerate() {
            let expected = if i % 2 == 0 {
                "component"
            } else {
                "components"
            };
            if *name != expected {
                return None;
            }
        }
        Some(tail.len().div_ceil(2) as u64)
    }

    fn in_vulnerability(path: &Path) -> bool {
        let mut names = path.iter();
        names.next() == Some("bom")
            && names.next() == Some("vulnerabilities")
            && names.next() == Some("vulnerability")
    }
}

impl XmlHandler for XmlBom<'_> {
    fn start(&mut self, path: &Path, element: &BytesStart<'_>) -> Result<(), String> {
        let name = path.ancestor(0).unwrap_or_default();
        if path.depth() == 1 && name == "bom" {
            if let Some(namespace) = xmlkit::default_namespace(element) {
                // http://cyclonedx.org/schema/bom/1.6 → 1.6
                if let Some(version) = namespace.strip_prefix("http://cyclonedx.org/schema/bom/") {
                    self.facts.spec_version = Some(version.trim_end_matches('/').to_string());
                }
            }
            return Ok(());
        }
        match (path.depth(), name) {
            (3, "component") if path.ancestor(1) == Some("metadata") => {
                self.facts.metadata_component_present = true;
            }
            (5, "rating") if self.vulnerability.is_some() => self.rating_severity = None,
            (3, "service") if path.ancestor(1) == Some("services") => self.facts.services += 1,
            (3, "dependency") if path.ancestor(1) == Some("dependencies") => {
                self.facts.dependencies += 1
            }
            (3, "vulnerability") if path.ancestor(1) == Some("vulnerabilities") => {
                self.vulnerability = Some(VulnerabilityDraft::default());
            }
            (_, "component") => {
                if let Some(depth) = Self::component_depth(path) {
                    self.facts.components += 1;
                    if depth == 1 {
                        self.facts.components_top_level += 1;
                    }
                    self.facts.components_max_depth = self.facts.components_max_depth.max(depth);
                }
            }
            _ => {}
        }
        self.text.clear();
        Ok(())
    }

    fn end(&mut self, path: &Path) -> Result<(), String> {
        let name = path.ancestor(0).unwrap_or_default();
        if Self::in_vulnerability(path) {
            match (path.depth(), name) {
                (3, "vulnerability") => {
                    if let Some(draft) = self.vulnerability.take() {
                        self.facts.add_vulnerability(draft, self.limits);
                    }
                }
                (4, "id") => {
                    if let Some(draft) = self.vulnerability.as_mut() {
                        draft.id = Some(self.text.trim().to_string());
                    }
                }
                (5, "rating") if path.ancestor(1) == Some("ratings") => {
                    if let Some(draft) = self.vulnerability.as_mut() {
                        let severity = self.rating_severity.take();
                        draft.add_rating(severity.as_deref().filter(|s| !s.is_empty()));
                    }
                }
                (6, "severity") if path.ancestor(1) == Some("rating") => {
                    self.rating_severity = Some(self.text.trim().to_string());
                }
                (5, "state") if path.ancestor(1) == Some("analysis") => {
                    if let Some(draft) = self.vulnerability.as_mut() {
                        draft.analysis_state = Some(self.text.trim().to_string());
                    }
                }
                (6, "ref") if path.ancestor(1) == Some("target") => {
                    if let Some(draft) = self.vulnerability.as_mut() {
                        draft.affects.push(self.text.trim().to_string());
                    }
                }
                _ => {}
            }
        }
        self.text.clear();
        Ok(())
    }

    fn wants_text(&self, path: &Path) -> bool {
        self.vulnerability.is_some()
            && matches!(path.ancestor(0), Some("id" | "severity" | "state" | "ref"))
    }

    fn text(&mut self, _path: &Path, text: &str) -> Result<(), String> {
        // Bounded: only short leaf elements of a vulnerability reach here.
        if self.text.len() + text.len() > 64 * 1024 {
            return Err("vulnerability field longer than 64 KiB".to_string());
        }
        self.text.push_str(text);
        Ok(())
    }
}
