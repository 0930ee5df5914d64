//! Values that remember where in a pack file they were written.
//!
//! Lint findings must point at `file:line:column`, long after parsing. Fields that a rule may
//! complain about (references, durations, cron expressions, scores) are therefore stored as
//! [`Located<T>`]: the value plus its 1-based line and column in the *file* (not only in the
//! YAML document), so diagnostics never need to re-parse.

use std::borrow::Cow;
use std::cell::Cell;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    /// Line offset of the YAML document currently being deserialized on this thread.
    ///
    /// The loader parses each `---` document of a file on its own (so one broken document does
    /// not hide the others); the parser then counts lines from the document's first line. The
    /// offset turns those into file lines. It is set by [`LineOffsetGuard`] only.
    static LINE_OFFSET: Cell<u32> = const { Cell::new(0) };
}

/// Sets the line offset for the duration of one document's deserialization.
pub(crate) struct LineOffsetGuard {
    previous: u32,
}

impl LineOffsetGuard {
    pub(crate) fn new(offset: u32) -> Self {
        let previous = LINE_OFFSET.with(|c| c.replace(offset));
        Self { previous }
    }
}

impl Drop for LineOffsetGuard {
    fn drop(&mut self) {
        LINE_OFFSET.with(|c| c.set(self.previous));
    }
}

/// A value with the position (1-based line and column, in characters) where it appears in its
/// pack file. `line == 0` means the position is unknown (e.g. the value was built in code).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Located<T> {
    pub value: T,
    pub line: u32,
    pub column: u32,
}

impl<T> Located<T> {
    /// A value without a source position.
    pub fn new(value: T) -> Self {
        Self {
            value,
            line: 0,
            column: 0,
        }
    }

    pub fn get(&self) -> &T {
        &self.value
    }
}

impl Located<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        let line = u32::try_from(spanned.referenced.line()).unwrap_or(u32::MAX);
        let column = u32::try_from(spanned.referenced.column()).unwrap_or(u32::MAX);
        let offset = LINE_OFFSET.with(Cell::get);
        Ok(Self {
            value: spanned.value,
            line: if line == 0 {
                0
            } else {
                line.saturating_add(offset)
            },
            column,
        })
    }
}

impl<T: Serialize> Serialize for Located<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_file_lines_under_the_offset_guard() {
        let _guard = LineOffsetGuard::new(10);
        let v: Located<String> = serde_saphyr::from_str("\n  x\n").unwrap();
        assert_eq!((v.value.as_str(), v.line, v.column), ("x", 12, 3));
    }

    #[test]
    fn other_formats_deserialize_without_a_position() {
        // The server may read pack documents back from JSON; positions are then unknown.
        let v: Located<String> = serde_json::from_str("\"x\"").unwrap();
        assert_eq!((v.value.as_str(), v.line), ("x", 0));
        let role: crate::model::Role = serde_json::from_str(
            r#"{"kind":"Role","id":"r","traces":[{"to":"a","rel":"refines"}]}"#,
        )
        .unwrap();
        assert_eq!(role.traces[0].to.value, "a");
        assert_eq!(serde_json::to_value(&role).unwrap()["id"], "r");
    }
}
