//! Findings about a pack: what is wrong, where, and how to fix it.
//!
//! Every problem the loader or a lint rule finds becomes a [`Diagnostic`] rather than an early
//! return, so one run reports everything. Codes are stable strings (`unknown-key`,
//! `duplicate-id`, …) that the JSON and SARIF renderers expose as rule ids.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a finding is. Any `Error` makes [`crate::LoadedPack::has_errors`] true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A position in a pack file. `line` and `column` are 1-based (column counts characters);
/// both are 0 when the finding concerns the whole file (e.g. a file that is too large).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl Location {
    pub fn new(file: impl Into<PathBuf>, line: u32, column: u32) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }

    /// A finding about a file as a whole.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Self::new(file, 0, 0)
    }

    pub fn has_position(&self) -> bool {
        self.line > 0
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.has_position() {
            write!(
                f,
                "{}:{}:{}",
                self.file.display(),
                self.line,
                self.column.max(1)
            )
        } else {
            write!(f, "{}", self.file.display())
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable rule code, e.g. `yaml-syntax`, `unknown-key`, `dangling-reference`.
    pub code: &'static str,
    pub message: String,
    pub location: Option<Location>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            location: None,
            hint: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The offending source line with a caret under the reported column, e.g.
    ///
    /// ```text
    ///    |
    ///  4 |   sevrity: Critical
    ///    |   ^^^^^^^
    /// ```
    ///
    /// `None` when the finding has no line or the line is not in `source`.
    pub fn snippet(&self, source: &str) -> Option<String> {
        let location = self.location.as_ref().filter(|l| l.has_position())?;
        let line_text = source
            .lines()
            .nth(usize::try_from(location.line - 1).ok()?)?;
        let line_text = line_text.trim_end_matches('\r');
        let column = usize::try_from(location.column.max(1) - 1).ok()?;
        let width = token_width(line_text, column);
        let number = location.line.to_string();
        let pad = " ".repeat(number.len());
        // Tabs before the caret are copied so the caret lines up in any terminal.
        let lead: String = line_text
            .chars()
            .take(column)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let mut out = String::new();
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{number} | {line_text}");
        let _ = write!(out, "{pad} | {lead}{}", "^".repeat(width));
        Some(out)
    }
}

/// How many characters the caret should underline: the token starting at `column`
/// (a key, a scalar, or one character when the position is punctuation or past the end).
fn token_width(line: &str, column: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(column).collect();
    let Some(first) = rest.first() else {
        return 1;
    };
    if *first == '"' || *first == '\'' {
        let close = rest.iter().skip(1).position(|c| c == first);
        return close.map_or(rest.len(), |i| i + 2);
    }
    let width = rest
        .iter()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ':' | ',' | ']' | '}' | '#'))
        .count();
    width.max(1)
}

/// The text of every pack file that was read, keyed by the path used in diagnostics, so
/// renderers can show snippets without touching the file system again.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: BTreeMap<PathBuf, String>,
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) {
        self.files.insert(path.into(), text.into());
    }

    pub fn get(&self, path: &Path) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.keys().map(PathBuf::as_path)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_underlines_the_token_at_the_column() {
        let d = Diagnostic::error("unknown-key", "unknown field `sevrity`")
            .at(Location::new("a.yaml", 2, 3));
        let snippet = d.snippet("kind: Alert\n  sevrity: Critical\n").unwrap();
        assert_eq!(snippet, "  |\n2 |   sevrity: Critical\n  |   ^^^^^^^");
    }

    #[test]
    fn snippet_is_none_without_position_or_line() {
        let whole_file = Diagnostic::error("file-too-large", "x").at(Location::file("a.yaml"));
        assert!(whole_file.snippet("a: 1\n").is_none());
        let past_end = Diagnostic::error("x", "x").at(Location::new("a.yaml", 9, 1));
        assert!(past_end.snippet("a: 1\n").is_none());
    }

    #[test]
    fn location_display_omits_zero_position() {
        assert_eq!(Location::new("p/a.yaml", 3, 7).to_string(), "p/a.yaml:3:7");
        assert_eq!(Location::file("p/a.yaml").to_string(), "p/a.yaml");
    }
}
