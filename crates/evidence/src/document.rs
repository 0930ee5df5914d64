//! Documents and links attached as evidence (threat model, code review, CI run, rollback plan,
//! monitoring plan, or a kind the pack declares). Their content is for people; the gate only
//! needs to know that a non-empty document is there, its digest (computed by the caller's
//! metered reader), its size and what kind of file it is.

use std::io::{BufRead, Read};

use serde::Serialize;

use crate::error::{EvidenceError, Location};
use crate::kind::{DocumentKind, EvidenceKind};

/// Facts of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentFacts {
    pub document_kind: String,
    /// Media type guessed from the leading bytes.
    pub media_type: &'static str,
    /// When the file is a single http(s) URL (a link to the document), that URL.
    pub link: Option<String>,
}

/// Bytes inspected to guess the media type.
const SNIFF_BYTES: u64 = 8 * 1024;

pub(crate) fn parse<R: BufRead>(
    reader: &mut R,
    kind: &DocumentKind,
) -> Result<DocumentFacts, EvidenceError> {
    let mut head = Vec::new();
    reader.by_ref().take(SNIFF_BYTES).read_to_end(&mut head)?;
    let complete = reader.fill_buf()?.is_empty();
    if head.iter().all(u8::is_ascii_whitespace) && complete {
        return Err(EvidenceError::Invalid {
            kind: EvidenceKind::Document(kind.clone()),
            location: Location::Document,
            message: "the document is empty".to_string(),
        });
    }
    let link = complete.then(|| link_of(&head)).flatten();
    let media_type = if link.is_some() {
        "text/uri-list"
    } else {
        guess_media_type(&head)
    };
    Ok(DocumentFacts {
        document_kind: kind.as_str().to_string(),
        media_type,
        link,
    })
}

fn link_of(content: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(content).ok()?.trim();
    let is_url = (text.starts_with("https://") || text.starts_with("http://"))
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    is_url.then(|| text.to_string())
}

fn guess_media_type(head: &[u8]) -> &'static str {
    let trimmed = head.trim_ascii_start();
    let lower_start: Vec<u8> = trimmed
        .iter()
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    if head.starts_with(b"%PDF-") {
        "application/pdf"
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if head.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        "image/gif"
    } else if head.starts_with(b"PK\x03\x04") {
        // docx/xlsx/odt are zip containers too; the extension is not known here.
        "application/zip"
    } else if head.starts_with(b"\x1f\x8b") {
        "application/gzip"
    } else if lower_start.starts_with(b"<!doctype html") || lower_start.starts_with(b"<html") {
        "text/html"
    } else if lower_start.starts_with(b"<?xml") || lower_start.starts_with(b"<") {
        "application/xml"
    } else if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        "application/json"
    } else if !is_text(head) {
        "application/octet-stream"
    } else if trimmed.starts_with(b"# ") || trimmed.starts_with(b"---") || contains(head, b"\n## ")
    {
        "text/markdown"
    } else {
        "text/plain"
    }
}

/// UTF-8 (allowing a character cut at the end of the sniffed window) without control bytes
/// other than whitespace.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(err) => err.error_len().is_none(),
    };
    valid
        && !head
            .iter()
            .any(|b| b.is_ascii_control() && !b.is_ascii_whitespace())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
