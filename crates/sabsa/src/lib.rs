//! gatehouse-sabsa: the SABSA Layer 6 (Operational) document of `003_*`.
//!
//! Teams write this document by hand or have a language model generate it, and nothing checks
//! it. This crate validates any such document against the schema and quality checklist
//! ([`validate`]), renders it deterministically from the policy pack, and carries the
//! pack-level operational rules that go with it (traceability matrix, suspect links,
//! improvement backlog, OSCAL export). It is pure: no async runtime, no database, no clock.

pub mod backlog;
pub mod document;
pub mod export;
pub mod json;
pub mod oscal;
pub mod report;
pub mod trace;
pub mod validate;

use std::io::Read;
use std::path::Path;

/// Re-exported so callers render the JSON reports with the same serde_json version.
pub use serde_json;

pub use document::{L6Document, Section, SectionId, TraceLink};
pub use json::MAX_DOCUMENT_BYTES;
pub use validate::{Check, Finding, Outcome, Report, validate};

/// Why a document could not be read at all (as opposed to being read and found wanting).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: document is larger than the limit of {limit} bytes ({mib} MiB); refused",
        mib = .limit / (1024 * 1024)
    )]
    TooLarge { path: String, limit: u64 },
}

/// Reads a document, refusing more than `limit` bytes without reading past it, so a huge or
/// endless input (a pipe, /dev/zero) costs at most `limit + 1` bytes of memory.
pub fn read_document(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let name = path.display().to_string();
    let io = |source| ReadError::Io {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && meta.len() > limit
    {
        return Err(ReadError::TooLarge {
            path: name.clone(),
            limit,
        });
    }
    read_limited(file, limit).map_err(|err| match err {
        LimitedReadError::Io(source) => ReadError::Io {
            path: name.clone(),
            source,
        },
        LimitedReadError::TooLarge => ReadError::TooLarge {
            path: name.clone(),
            limit,
        },
    })
}

/// Reads standard input (or any reader) under the same limit as [`read_document`].
pub fn read_stream(reader: impl Read, name: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
    read_limited(reader, limit).map_err(|err| match err {
        LimitedReadError::Io(source) => ReadError::Io {
            path: name.to_owned(),
            source,
        },
        LimitedReadError::TooLarge => ReadError::TooLarge {
            path: name.to_owned(),
            limit,
        },
    })
}

enum LimitedReadError {
    Io(std::io::Error),
    TooLarge,
}

fn read_limited(reader: impl Read, limit: u64) -> Result<Vec<u8>, LimitedReadError> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(LimitedReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(LimitedReadError::TooLarge);
    }
    Ok(bytes)
}
