//! Errors of evidence parsing. Every parse error says where in the input the problem is, so a
//! user can open the file at that spot; the gate stores nothing for evidence that failed.

use std::fmt;

use crate::kind::EvidenceKind;

/// Where in the input a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// 1-based line and column (JSON, tag-value).
    LineColumn { line: u64, column: u64 },
    /// 1-based line (line-oriented formats).
    Line(u64),
    /// Byte offset from the start of the input.
    ByteOffset(u64),
    /// Element path and byte offset (XML).
    Xml { path: String, byte_offset: u64 },
    /// A position inside an embedded document, e.g. the base64 payload of DSSE envelope `n`.
    Embedded {
        container: String,
        inner: Box<Location>,
    },
    /// The problem is about the document as a whole (e.g. a required key is missing).
    Document,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineColumn { line, column } => write!(f, "line {line} column {column}"),
            Self::Line(line) => write!(f, "line {line}"),
            Self::ByteOffset(offset) => write!(f, "byte offset {offset}"),
            Self::Xml { path, byte_offset } => write!(f, "{path} (byte offset {byte_offset})"),
            Self::Embedded { container, inner } => write!(f, "{container}, {inner}"),
            Self::Document => f.write_str("document"),
        }
    }
}

/// Why evidence could not be turned into facts.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The bytes are not well-formed JSON/XML/tag-value.
    #[error("malformed {kind} evidence at {location}: {message}")]
    Syntax {
        kind: EvidenceKind,
        location: Location,
        message: String,
    },
    /// Well-formed, but not a valid document of the kind (wrong type, missing required data).
    #[error("invalid {kind} evidence at {location}: {message}")]
    Invalid {
        kind: EvidenceKind,
        location: Location,
        message: String,
    },
    /// The document is of another kind than the one declared.
    #[error("not {kind} evidence: {found}")]
    WrongKind { kind: EvidenceKind, found: String },
    /// The input is larger than [`crate::Limits::max_bytes`].
    #[error("evidence exceeds the size limit max_bytes = {limit} bytes")]
    TooLarge { limit: u64 },
    /// A limit other than the size was exceeded (nesting depth, line length).
    #[error("{kind} evidence exceeds the limit {limit} at {location}")]
    LimitExceeded {
        kind: EvidenceKind,
        limit: String,
        location: Location,
    },
    /// A DSSE envelope carries no signature at all.
    #[error("DSSE envelope {envelope} is not signed")]
    Unsigned { envelope: usize },
    /// No signature of a DSSE envelope verifies with any trusted key.
    #[error(
        "DSSE envelope {envelope}: none of its {signatures} signature(s) verifies with the {keys} trusted key(s)"
    )]
    UntrustedSignature {
        envelope: usize,
        signatures: usize,
        keys: usize,
    },
    /// A trusted key could not be loaded.
    #[error("cannot load public key {key_id}: {message}")]
    Key { key_id: String, message: String },
    /// The input could not be read.
    #[error("cannot read evidence: {0}")]
    Io(#[from] std::io::Error),
}

impl EvidenceError {
    /// Where the problem is, when the error is about a position in the input.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Syntax { location, .. }
            | Self::Invalid { location, .. }
            | Self::LimitExceeded { location, .. } => Some(location),
            _ => None,
        }
    }

    /// True when the input itself is at fault (as opposed to an I/O failure or a bad key),
    /// i.e. the evidence must be rejected.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Self::Io(_) | Self::Key { .. })
    }

    /// Maps a serde_json error to a located evidence error.
    pub(crate) fn from_json(kind: EvidenceKind, err: serde_json::Error) -> Self {
        let location = Location::LineColumn {
            line: err.line() as u64,
            column: err.column() as u64,
        };
        match err.classify() {
            serde_json::error::Category::Io => Self::Io(std::io::Error::from(err)),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                Self::Syntax {
                    kind,
                    location,
                    message: strip_position(&err.to_string()),
                }
            }
            serde_json::error::Category::Data => match WrongKindMarker::parse(&err.to_string()) {
                Some(found) => Self::WrongKind { kind, found },
                None if LimitMarker::parse(&err.to_string()).is_some() => Self::LimitExceeded {
                    kind,
                    limit: LimitMarker::parse(&err.to_string()).unwrap_or_default(),
                    location,
                },
                None => Self::Invalid {
                    kind,
                    location,
                    message: strip_position(&err.to_string()),
                },
            },
        }
    }
}

/// serde_json appends " at line L column C" to its messages; the location is reported
/// separately, so drop the duplicate.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// Visitors can only raise string errors through serde; a wrong-kind finding made deep inside a
/// visitor is tagged with this prefix so it comes back out as [`EvidenceError::WrongKind`].
pub(crate) struct WrongKindMarker;

impl WrongKindMarker {
    const PREFIX: &'static str = "wrong-kind: ";

    pub(crate) fn message(found: &str) -> String {
        format!("{}{found}", Self::PREFIX)
    }

    fn parse(message: &str) -> Option<String> {
        message.strip_prefix(Self::PREFIX).map(strip_position)
    }
}

/// Like [`WrongKindMarker`], for resource limits hit inside a visitor.
pub(crate) struct LimitMarker;

impl LimitMarker {
    const PREFIX: &'static str = "limit-exceeded: ";

    pub(crate) fn message(limit: &str) -> String {
        format!("{}{limit}", Self::PREFIX)
    }

    fn parse(message: &str) -> Option<String> {
        message.strip_prefix(Self::PREFIX).map(strip_position)
    }
}
