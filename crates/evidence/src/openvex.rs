//! OpenVEX (v0.2.0 and the legacy v0.0.1 / unversioned contexts): statements by status, with
//! the vulnerability and products each one applies to, so the gate can apply them to a
//! release's vulnerability findings.
//!
//! Legacy documents spell the vulnerability and products as plain strings; v0.2.0 uses
//! objects (`{"name": …}`, `{"@id": …}`). Both are read into the same [`VexStatement`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::Limits;
use crate::error::EvidenceError;
use crate::jsonkit::{Array, Elements, ForeignMarker, LenientString, field_keys, wrong_kind};
use crate::kind::EvidenceKind;

/// One VEX statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VexStatement {
    /// Vulnerability name (CVE/GHSA id), or its `@id` when unnamed.
    pub vulnerability: Option<String>,
    /// Aliases of the vulnerability (v0.2.0 `vulnerability.aliases`).
    pub aliases: Vec<String>,
    /// `not_affected`, `affected`, `fixed`, `under_investigation` (or what the file says).
    pub status: Option<String>,
    pub justification: Option<String>,
    /// Product identifiers (`@id`, or the legacy string form).
    pub products: Vec<String>,
}

/// Facts of an OpenVEX document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpenVexFacts {
    /// `v0.2.0`, `v0.0.1`, `unversioned (legacy)`, or None without an OpenVEX context.
    pub openvex_version: Option<String>,
    pub context: Option<String>,
    pub document_version: Option<String>,
    pub statements: u64,
    pub by_status: BTreeMap<String, u64>,
    pub product_entries: u64,
    pub statement_list: Vec<VexStatement>,
    pub statement_list_truncated: bool,
}

pub(crate) fn parse<R: BufRead>(
    reader: &mut R,
    limits: &Limits,
) -> Result<OpenVexFacts, EvidenceError> {
    let mut facts = OpenVexFacts::default();
    for status in ["not_affected", "affected", "fixed", "under_investigation"] {
        facts.by_status.insert(status.to_string(), 0);
    }
    crate::jsonkit::parse_document(
        &EvidenceKind::OpenVex,
        reader,
        VexSeed {
            facts: &mut facts,
            limits,
        },
    )?;
    Ok(facts)
}

const CONTEXT_PREFIX: &str = "https://openvex.dev/ns";

struct VexSeed<'a> {
    facts: &'a mut OpenVexFacts,
    limits: &'a Limits,
}

impl<'de> DeserializeSeed<'de> for VexSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for VexSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OpenVEX document object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let facts = self.facts;
        let mut saw_statements = false;
        let mut foreign = ForeignMarker::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "@context" => facts.context = map.next_value_seed(LenientString)?,
                "version" => facts.document_version = map.next_value_seed(LenientString)?,
                "statements" => {
                    saw_statements = true;
                    let mut statements = StatementsSink {
                        facts,
                        limits: self.limits,
                    };
                    map.next_value_seed(Array(&mut statements))?;
                }
                other => {
                    foreign.note(other);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match facts.context.as_deref() {
            Some(context) if context.starts_with(CONTEXT_PREFIX) => {
                let version = context[CONTEXT_PREFIX.len()..].trim_matches('/');
                facts.openvex_version = Some(if version.is_empty() {
                    "unversioned (legacy)".to_string()
                } else {
                    version.to_string()
                });
            }
            // Some producers leave the context empty; the statements still carry the meaning.
            Some("") | None if saw_statements => {}
            Some(other) => {
                return Err(wrong_kind(&format!(
                    "@context {other:?} is not an OpenVEX context"
                )));
            }
            None => {
                return Err(wrong_kind(
                    &foreign.describe("no OpenVEX `@context` and no `statements`"),
                ));
            }
        }
        if !saw_statements {
            return Err(de::Error::custom(
                "an OpenVEX document needs a `statements` array",
            ));
        }
        Ok(())
    }
}

struct StatementsSink<'a> {
    facts: &'a mut OpenVexFacts,
    limits: &'a Limits,
}

impl<'de> Elements<'de> for StatementsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let Some(statement) = seq.next_element_seed(StatementSeed)? else {
            return Ok(false);
        };
        let facts = &mut *self.facts;
        facts.statements += 1;
        facts.product_entries += statement.products.len() as u64;
        let status = statement
            .status
            .clone()
            .unwrap_or_else(|| "<absent>".to_string());
        *facts.by_status.entry(status).or_insert(0) += 1;
        if facts.statement_list.len() < self.limits.max_listed {
            facts.statement_list.push(statement);
        } else {
            facts.statement_list_truncated = true;
        }
        Ok(true)
    }
}

struct StatementSeed;

field_keys!(StatementKey {
    Vulnerability => "vulnerability",
    Status => "status",
    Justification => "justification",
    Products => "products",
});

impl<'de> DeserializeSeed<'de> for StatementSeed {
    type Value = VexStatement;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<VexStatement, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StatementSeed {
    type Value = VexStatement;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OpenVEX statement object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VexStatement, A::Error> {
        let mut statement = VexStatement::default();
        while let Some(key) = map.next_key::<StatementKey>()? {
            match key {
                StatementKey::Vulnerability => {
                    let (name, aliases) = map.next_value_seed(VulnerabilitySeed)?;
                    statement.vulnerability = name;
                    statement.aliases = aliases;
                }
                StatementKey::Status => statement.status = map.next_value_seed(LenientString)?,
                StatementKey::Justification => {
                    statement.justification = map.next_value_seed(LenientString)?
                }
                StatementKey::Products => {
                    map.next_value_seed(Array(&mut ProductsSink(&mut statement.products)))?
                }
                StatementKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(statement)
    }
}

/// `"CVE-…"` (legacy) or `{"name": "CVE-…", "@id": …, "aliases": [...]}` (v0.2.0).
struct VulnerabilitySeed;

impl<'de> DeserializeSeed<'de> for VulnerabilitySeed {
    type Value = (Option<String>, Vec<String>);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VulnerabilitySeed {
    type Value = (Option<String>, Vec<String>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a vulnerability name or object")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok((Some(value.to_string()), Vec::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut name, mut id, mut aliases) = (None, None, Vec::new());
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => name = map.next_value_seed(LenientString)?,
                "@id" => id = map.next_value_seed(LenientString)?,
                "aliases" => aliases = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((name.or(id), aliases))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((None, Vec::new()))
    }
}

struct ProductsSink<'a>(&'a mut Vec<String>);

impl<'de> Elements<'de> for ProductsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        match seq.next_element_seed(ProductSeed)? {
            Some(product) => {
                self.0.push(product.unwrap_or_default());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// `"pkg:…"` (legacy) or `{"@id": "pkg:…", …}` (v0.2.0).
struct ProductSeed;

impl<'de> DeserializeSeed<'de> for ProductSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ProductSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a product identifier or object")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "@id" {
                id = map.next_value_seed(LenientString)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(id)
    }
}
