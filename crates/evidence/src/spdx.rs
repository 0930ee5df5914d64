//! SPDX 2.2–2.3 (JSON and tag-value) and SPDX 3.0 (JSON-LD): packages, relationships and
//! licenses.
//!
//! The serialization is recognised from the bytes (`{` → JSON, else tag-value), and JSON 2.x
//! from 3.0 by its keys (`spdxVersion` vs `@context`/`@graph`). Counting follows the reference
//! conventions: JSON 2.x counts the explicit `relationships` array only (implied DESCRIBES /
//! CONTAINS from `documentDescribes` / `hasFiles` are reported separately); SPDX 3 counts
//! `software_Package` elements and elements whose type ends with `Relationship`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};

use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::Limits;
use crate::error::{EvidenceError, Location};
use crate::jsonkit::{
    Array, CountElements, Elements, ForeignMarker, LenientString, field_keys, wrong_kind,
};
use crate::kind::EvidenceKind;

/// Facts of an SPDX document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpdxFacts {
    /// `SPDX-2.3`, `SPDX-3.0.1`, …
    pub spdx_version: Option<String>,
    /// `json`, `tag-value` or `json-ld`.
    pub serialization: &'static str,
    pub packages: u64,
    pub relationships: u64,
    pub files: u64,
    pub relationship_types: BTreeMap<String, u64>,
    /// JSON 2.x `documentDescribes` entries (implied DESCRIBES relationships).
    pub document_describes: u64,
    /// JSON 2.x `hasFiles` entries over all packages (implied CONTAINS relationships).
    pub package_has_files: u64,
    /// Packages per declared license expression (2.x `licenseDeclared` / tag-value
    /// `PackageLicenseDeclared`; 3.0: every `simplelicensing_LicenseExpression`).
    pub licenses_declared: BTreeMap<String, u64>,
    /// Packages per concluded license expression (2.x only).
    pub licenses_concluded: BTreeMap<String, u64>,
    /// SPDX 3: elements per type.
    pub element_types: BTreeMap<String, u64>,
    /// True when a license or type map hit [`Limits::max_listed`] distinct entries.
    pub listing_truncated: bool,
}

impl SpdxFacts {
    fn count(map: &mut BTreeMap<String, u64>, key: &str, limits: &Limits, truncated: &mut bool) {
        if let Some(count) = map.get_mut(key) {
            *count += 1;
        } else if map.len() < limits.max_listed {
            map.insert(key.to_string(), 1);
        } else {
            *truncated = true;
        }
    }
}

pub(crate) fn parse<R: BufRead>(
    reader: &mut R,
    limits: &Limits,
) -> Result<SpdxFacts, EvidenceError> {
    match crate::input::peek_first_significant(reader)? {
        Some(b'{') => parse_json(reader, limits),
        Some(b'<') => Err(EvidenceError::WrongKind {
            kind: EvidenceKind::Spdx,
            found: "an XML document (SPDX is JSON, JSON-LD or tag-value)".to_string(),
        }),
        Some(_) => parse_tag_value(reader, limits),
        None => Err(EvidenceError::Syntax {
            kind: EvidenceKind::Spdx,
            location: Location::ByteOffset(0),
            message: "empty document".to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON (2.x) and JSON-LD (3.0)

fn parse_json<R: BufRead>(reader: &mut R, limits: &Limits) -> Result<SpdxFacts, EvidenceError> {
    let mut facts = SpdxFacts {
        serialization: "json",
        ..SpdxFacts::default()
    };
    crate::jsonkit::parse_document(
        &EvidenceKind::Spdx,
        reader,
        DocumentSeed {
            facts: &mut facts,
            limits,
        },
    )?;
    Ok(facts)
}

struct DocumentSeed<'a> {
    facts: &'a mut SpdxFacts,
    limits: &'a Limits,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an SPDX document object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let facts = self.facts;
        let mut context: Option<String> = None;
        let mut graph_seen = false;
        let mut foreign = ForeignMarker::default();
        let mut graph_version: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "spdxVersion" => facts.spdx_version = map.next_value_seed(LenientString)?,
                "packages" => {
                    let mut packages = PackagesSink {
                        facts,
                        limits: self.limits,
                    };
                    map.next_value_seed(Array(&mut packages))?;
                }
                "relationships" => {
                    let mut relationships = RelationshipsSink {
                        facts,
                        limits: self.limits,
                    };
                    map.next_value_seed(Array(&mut relationships))?;
                }
                "files" => {
                    let mut files = CountElements(0);
                    map.next_value_seed(Array(&mut files))?;
                    facts.files = files.0;
                }
                "documentDescribes" => {
                    let mut describes = CountElements(0);
                    map.next_value_seed(Array(&mut describes))?;
                    facts.document_describes = describes.0;
                }
                "@context" => context = map.next_value_seed(LenientString)?,
                "@graph" => {
                    graph_seen = true;
                    let mut graph = GraphSink {
                        facts,
                        limits: self.limits,
                        spec_version: &mut graph_version,
                    };
                    map.next_value_seed(Array(&mut graph))?;
                }
                other => {
                    foreign.note(other);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if graph_seen {
            let spdx_context = context
                .as_deref()
                .is_some_and(|c| c.contains("spdx.org/rdf/3"));
            if !spdx_context && graph_version.is_none() {
                return Err(wrong_kind("a JSON-LD `@graph` without the SPDX 3 context"));
            }
            facts.serialization = "json-ld";
            // https://spdx.org/rdf/3.0.1/spdx-context.jsonld → SPDX-3.0.1
            let from_context = context.as_deref().and_then(|c| {
                let rest = c.split("spdx.org/rdf/").nth(1)?;
                Some(rest.split('/').next()?.to_string())
            });
            facts.spdx_version = graph_version.or(from_context).map(|v| format!("SPDX-{v}"));
            return Ok(());
        }
        match facts.spdx_version.as_deref() {
            Some(version) if version.starts_with("SPDX-") => Ok(()),
            Some(version) => Err(wrong_kind(&format!(
                "spdxVersion {version:?} does not start with \"SPDX-\""
            ))),
            None => Err(wrong_kind(
                &foreign.describe("no `spdxVersion` and no SPDX 3 `@graph`"),
            )),
        }
    }
}

struct PackagesSink<'a> {
    facts: &'a mut SpdxFacts,
    limits: &'a Limits,
}

impl<'de> Elements<'de> for PackagesSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        match seq.next_element_seed(PackageSeed)? {
            Some(package) => {
                let facts = &mut *self.facts;
                facts.packages += 1;
                facts.package_has_files += package.has_files;
                if let Some(license) = package.declared {
                    SpdxFacts::count(
                        &mut facts.licenses_declared,
                        &license,
                        self.limits,
                        &mut facts.listing_truncated,
                    );
                }
                if let Some(license) = package.concluded {
                    SpdxFacts::count(
                        &mut facts.licenses_concluded,
                        &license,
                        self.limits,
                        &mut facts.listing_truncated,
                    );
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[derive(Default)]
struct Package {
    declared: Option<String>,
    concluded: Option<String>,
    has_files: u64,
}

struct PackageSeed;

field_keys!(PackageKey {
    LicenseDeclared => "licenseDeclared",
    LicenseConcluded => "licenseConcluded",
    HasFiles => "hasFiles",
});

impl<'de> DeserializeSeed<'de> for PackageSeed {
    type Value = Package;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Package, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PackageSeed {
    type Value = Package;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an SPDX package object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Package, A::Error> {
        let mut package = Package::default();
        while let Some(key) = map.next_key::<PackageKey>()? {
            match key {
                PackageKey::LicenseDeclared => {
                    package.declared = map.next_value_seed(LenientString)?
                }
                PackageKey::LicenseConcluded => {
                    package.concluded = map.next_value_seed(LenientString)?
                }
                PackageKey::HasFiles => {
                    let mut files = CountElements(0);
                    map.next_value_seed(Array(&mut files))?;
                    package.has_files = files.0;
                }
                PackageKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(package)
    }
}

struct RelationshipsSink<'a> {
    facts: &'a mut SpdxFacts,
    limits: &'a Limits,
}

impl<'de> Elements<'de> for RelationshipsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        match seq.next_element_seed(RelationshipSeed)? {
            Some(relationship_type) => {
                let facts = &mut *self.facts;
                facts.relationships += 1;
                let name = relationship_type.as_deref().unwrap_or("<absent>");
                SpdxFacts::count(
                    &mut facts.relationship_types,
                    name,
                    self.limits,
                    &mut facts.listing_truncated,
                );
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

struct RelationshipSeed;

field_keys!(RelationshipKey { RelationshipType => "relationshipType" });

impl<'de> DeserializeSeed<'de> for RelationshipSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RelationshipSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an SPDX relationship object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut relationship_type = None;
        while let Some(key) = map.next_key::<RelationshipKey>()? {
            match key {
                RelationshipKey::RelationshipType => {
                    relationship_type = map.next_value_seed(LenientString)?
                }
                RelationshipKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(relationship_type)
    }
}

struct GraphSink<'a> {
    facts: &'a mut SpdxFacts,
    limits: &'a Limits,
    spec_version: &'a mut Option<String>,
}

impl<'de> Elements<'de> for GraphSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let Some(element) = seq.next_element_seed(ElementSeed)? else {
            return Ok(false);
        };
        let facts = &mut *self.facts;
        let element_type = element.element_type.as_deref().unwrap_or("<untyped>");
        // Types may be compact ("software_Package") or IRIs ending in the name.
        let short = element_type
            .rsplit(['/', '#'])
            .next()
            .unwrap_or(element_type);
        SpdxFacts::count(
            &mut facts.element_types,
            short,
            self.limits,
            &mut facts.listing_truncated,
        );
        if short == "software_Package" {
            facts.packages += 1;
        } else if short.ends_with("Relationship") {
            facts.relationships += 1;
            if let Some(name) = &element.relationship_type {
                SpdxFacts::count(
                    &mut facts.relationship_types,
                    name,
                    self.limits,
                    &mut facts.listing_truncated,
                );
            }
        } else if short == "software_File" {
            facts.files += 1;
        } else if short == "simplelicensing_LicenseExpression"
            && let Some(expression) = &element.license_expression
        {
            SpdxFacts::count(
                &mut facts.licenses_declared,
                expression,
                self.limits,
                &mut facts.listing_truncated,
            );
        }
        if self.spec_version.is_none() && element.spec_version.is_some() {
            *self.spec_version = element.spec_version;
        }
        Ok(true)
    }
}

#[derive(Default)]
struct GraphElement {
    element_type: Option<String>,
    relationship_type: Option<String>,
    license_expression: Option<String>,
    spec_version: Option<String>,
}

struct ElementSeed;

field_keys!(ElementKey {
    Type => "type",
    AtType => "@type",
    RelationshipType => "relationshipType",
    LicenseExpression => "simplelicensing_licenseExpression",
    SpecVersion => "specVersion",
});

impl<'de> DeserializeSeed<'de> for ElementSeed {
    type Value = GraphElement;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<GraphElement, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed {
    type Value = GraphElement;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an SPDX 3 element object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GraphElement, A::Error> {
        let mut element = GraphElement::default();
        while let Some(key) = map.next_key::<ElementKey>()? {
            match key {
                ElementKey::Type | ElementKey::AtType => {
                    element.element_type = map.next_value_seed(LenientString)?
                }
                ElementKey::RelationshipType => {
                    element.relationship_type = map.next_value_seed(LenientString)?
                }
                ElementKey::LicenseExpression => {
                    element.license_expression = map.next_value_seed(LenientString)?
                }
                ElementKey::SpecVersion => {
                    element.spec_version = map.next_value_seed(LenientString)?
                }
                ElementKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(element)
    }
}

// ---------------------------------------------------------------------------------------------
// Tag-value

/// Longest accepted tag-value line; a longer one is not SPDX and would otherwise be buffered
/// whole.
const MAX_LINE_BYTES: u64 = 1024 * 1024;

fn parse_tag_value<R: BufRead>(
    reader: &mut R,
    limits: &Limits,
) -> Result<SpdxFacts, EvidenceError> {
    let kind = EvidenceKind::Spdx;
    let mut facts = SpdxFacts {
        serialization: "tag-value",
        ..SpdxFacts::default()
    };
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let mut in_text = false;
    loop {
        line.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        line_number += 1;
        if read as u64 > MAX_LINE_BYTES {
            return Err(EvidenceError::LimitExceeded {
                kind,
                limit: format!("tag-value line length {MAX_LINE_BYTES} bytes"),
                location: Location::Line(line_number),
            });
        }
        let text = std::str::from_utf8(&line).map_err(|err| EvidenceError::Syntax {
            kind: kind.clone(),
            location: Location::LineColumn {
                line: line_number,
                column: err.valid_up_to() as u64 + 1,
            },
            message: "not UTF-8".to_string(),
        })?;
        let text = text.trim_end_matches(['\n', '\r']);
        if in_text {
            // Multi-line values run from <text> to </text>; tags inside them are content.
            if text.contains("</text>") {
                in_text = false;
            }
            continue;
        }
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((tag, value)) = trimmed.split_once(':') else {
            return Err(EvidenceError::Syntax {
                kind,
                location: Location::Line(line_number),
                message: format!("expected `Tag: value`, found {:?}", truncate(trimmed)),
            });
        };
        let value = value.trim();
        if value.starts_with("<text>") && !value.contains("</text>") {
            in_text = true;
        }
        match tag.trim() {
            "SPDXVersion" => facts.spdx_version = Some(value.to_string()),
            "PackageName" => facts.packages += 1,
            "FileName" => facts.files += 1,
            "Relationship" => {
                facts.relationships += 1;
                let relationship_type = value.split_whitespace().nth(1).unwrap_or("<absent>");
                SpdxFacts::count(
                    &mut facts.relationship_types,
                    relationship_type,
                    limits,
                    &mut facts.listing_truncated,
                );
            }
            "PackageLicenseDeclared" => SpdxFacts::count(
                &mut facts.licenses_declared,
                value,
                limits,
                &mut facts.listing_truncated,
            ),
            "PackageLicenseConcluded" => SpdxFacts::count(
                &mut facts.licenses_concluded,
                value,
                limits,
                &mut facts.listing_truncated,
            ),
            _ => {}
        }
        if line_number == 1 && tag.trim() != "SPDXVersion" && facts.spdx_version.is_none() {
            // Tag-value documents start with SPDXVersion; anything else is not SPDX.
            return Err(EvidenceError::WrongKind {
                kind,
                found: format!(
                    "line 1 is {:?}, not `SPDXVersion: SPDX-2.x`",
                    truncate(trimmed)
                ),
            });
        }
    }
    if in_text {
        return Err(EvidenceError::Syntax {
            kind,
            location: Location::Line(line_number),
            message: "unterminated <text> block".to_string(),
        });
    }
    if facts.spdx_version.is_none() {
        return Err(EvidenceError::WrongKind {
            kind,
            found: "no SPDXVersion tag".to_string(),
        });
    }
    Ok(facts)
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(60) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}
