//! Small building blocks for the streaming JSON parsers: field-name enums that match keys
//! without allocating, array drivers that hand each element to a seed, and lenient scalar
//! readers for fields whose type producers disagree on.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{EvidenceError, LimitMarker, WrongKindMarker};
use crate::kind::EvidenceKind;

/// Declares an enum of the object keys a visitor cares about; every other key maps to `Other`.
/// Matching happens on the borrowed key, so skipped keys cost no allocation.
macro_rules! field_keys {
    ($name:ident { $($variant:ident => $lit:literal),* $(,)? }) => {
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        enum $name { $($variant,)* Other }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct KeyVisitor;
                impl<'de> serde::de::Visitor<'de> for KeyVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an object key")
                    }
                    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<$name, E> {
                        Ok(match key { $($lit => $name::$variant,)* _ => $name::Other })
                    }
                }
                d.deserialize_identifier(KeyVisitor)
            }
        }
    };
}
pub(crate) use field_keys;

/// Declares an enum of the string values a field may take; any other string maps to `Other`.
/// A non-string value is a type error naming the field's purpose.
macro_rules! string_enum {
    ($name:ident, $expecting:literal { $($variant:ident => $($lit:literal)|+),* $(,)? }) => {
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
        enum $name { $($variant,)* Other }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct ValueVisitor;
                impl<'de> serde::de::Visitor<'de> for ValueVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        Ok(match value { $($($lit)|+ => $name::$variant,)* _ => $name::Other })
                    }
                }
                d.deserialize_str(ValueVisitor)
            }
        }
    };
}
pub(crate) use string_enum;

/// Deserializes one JSON document from `reader` with `seed`, requiring only whitespace after it.
pub(crate) fn parse_document<'de, R: Read, S: DeserializeSeed<'de>>(
    kind: &EvidenceKind,
    reader: R,
    seed: S,
) -> Result<S::Value, EvidenceError> {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let value = seed
        .deserialize(&mut deserializer)
        .map_err(|err| EvidenceError::from_json(kind.clone(), err))?;
    deserializer
        .end()
        .map_err(|err| EvidenceError::from_json(kind.clone(), err))?;
    Ok(value)
}

/// Something that consumes the elements of a JSON array one by one.
pub(crate) trait Elements<'de> {
    /// Reads one element from `seq`; false at the end of the array.
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error>;
}

/// Drives an [`Elements`] over a JSON array. `null` counts as an empty array: producers emit it
/// for "nothing" (e.g. `"results": null`), and it carries no facts either way.
pub(crate) struct Array<'a, T>(pub &'a mut T);

impl<'de, T: Elements<'de>> DeserializeSeed<'de> for Array<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: Elements<'de>> Visitor<'de> for Array<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while self.0.next(&mut seq)? {}
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Counts the elements of an array without looking at them.
pub(crate) struct CountElements(pub u64);

impl<'de> Elements<'de> for CountElements {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let more = seq.next_element::<IgnoredAny>()?.is_some();
        if more {
            self.0 += 1;
        }
        Ok(more)
    }
}

/// Reads any JSON value and keeps it only if it is a string (numbers are kept in their JSON
/// spelling). Producers put odd types in free-form fields; facts only ever need the strings.
pub(crate) struct LenientString;

impl<'de> DeserializeSeed<'de> for LenientString {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LenientString {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }
    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Some(value))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// Reads a JSON number, or a string holding a number, as f64; anything else is None.
pub(crate) struct LenientNumber;

impl<'de> DeserializeSeed<'de> for LenientNumber {
    type Value = Option<f64>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Ok(match deserializer.deserialize_any(LenientString)? {
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite()),
            None => None,
        })
    }
}

pub(crate) fn wrong_kind<E: de::Error>(found: &str) -> E {
    E::custom(WrongKindMarker::message(found))
}

/// A resource limit hit inside a visitor; comes back out as [`EvidenceError::LimitExceeded`].
pub(crate) fn limit_exceeded<E: de::Error>(limit: &str) -> E {
    E::custom(LimitMarker::message(limit))
}

/// Top-level keys that give away what a JSON document really is, for wrong-kind messages.
pub(crate) fn describe_foreign_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "bomFormat" => "a CycloneDX BOM (it has `bomFormat`)",
        "spdxVersion" => "an SPDX document (it has `spdxVersion`)",
        "runs" => "a SARIF log (it has `runs`)",
        "payloadType" => "a DSSE envelope (it has `payloadType`)",
        "dsseEnvelope" => "a Sigstore bundle (it has `dsseEnvelope`)",
        "_type" => "an in-toto Statement (it has `_type`)",
        "statements" => "an OpenVEX document (it has `statements`)",
        "@graph" => "a JSON-LD document such as SPDX 3 (it has `@graph`)",
        _ => return None,
    })
}

/// Remembers the first foreign marker key seen at the top level of a document.
#[derive(Default)]
pub(crate) struct ForeignMarker(pub Option<&'static str>);

impl ForeignMarker {
    /// Inspects an unrecognised top-level key. Returns the key as an owned string only when it
    /// was a marker (the caller then skips the value).
    pub(crate) fn note(&mut self, key: &str) {
        if self.0.is_none() {
            self.0 = describe_foreign_key(key);
        }
    }

    pub(crate) fn describe(&self, fallback: &str) -> String {
        match self.0 {
            Some(found) => format!("found {found}"),
            None => fallback.to_string(),
        }
    }
}
