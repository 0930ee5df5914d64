//! gatehouse-evidence: streaming parsers that turn evidence files (SARIF, CycloneDX, SPDX,
//! OpenVEX, JUnit XML, in-toto/DSSE attestations, plain documents) into normalized facts.
//!
//! The release gate never reads an evidence file itself; it reads the [`Facts`] this crate
//! extracts. Evidence can be gigabytes (a monorepo's SARIF, a container SBOM), so every parser
//! reads from a [`std::io::Read`] once, keeps only counters and the few fields the gate needs,
//! and never materialises the document. The same pass hashes the bytes (sha256), so the digest
//! the store records is the digest of exactly the bytes that were parsed, and a configurable
//! byte limit refuses oversized input by name ([`Limits::max_bytes`]).
//!
//! The crate is pure: no async runtime, no database, no network. XML is read without any DTD
//! processing, so external entities (XXE) are never resolved.

mod cyclonedx;
mod document;
mod dsse;
mod error;
mod input;
mod intoto;
mod jsonkit;
mod junit;
mod kind;
mod openvex;
pub mod report;
mod sarif;
mod spdx;
mod xmlkit;

use std::io::Read;

use serde::Serialize;

pub use cyclonedx::{CycloneDxFacts, SeverityCounts, VulnerabilityFact};
pub use document::DocumentFacts;
pub use dsse::{
    DsseEnvelope, DsseSignature, KeyAlgorithm, TrustedKey, VerifiedBy, pae, verify_dsse,
};
pub use error::{EvidenceError, Location};
pub use intoto::{EnvelopeFacts, InTotoFacts, SignatureCheck, SlsaFacts, SubjectFact};
pub use junit::{FailedTestcase, JunitFacts, JunitTotals};
pub use kind::{DocumentKind, EvidenceKind, UnknownKind};
pub use openvex::{OpenVexFacts, VexStatement};
pub use sarif::{LevelCounts, SarifFacts, SecuritySeverityCounts};
pub use spdx::SpdxFacts;

/// Resource bounds applied while parsing untrusted evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input in bytes; reading past it fails with
    /// [`EvidenceError::TooLarge`].
    pub max_bytes: u64,
    /// Deepest accepted XML element nesting.
    pub max_xml_depth: usize,
    /// Most entries kept in any per-item list of the facts (rule ids, vulnerability list,
    /// failed test cases, VEX statements); counters are never truncated.
    pub max_listed: usize,
    /// Most distinct SARIF result groups (results that share rule reference, explicit level,
    /// suppression class, …) held while a run's rules are not yet known. Groups are accounted
    /// as soon as the rules are read, so this only bites on logs that put a flood of distinct
    /// results before their rules.
    pub max_pending_result_groups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // 4 GiB: comfortably above the biggest real SARIF/SBOM files while still bounded.
            max_bytes: 4 * 1024 * 1024 * 1024,
            max_xml_depth: 256,
            max_listed: 100_000,
            max_pending_result_groups: 100_000,
        }
    }
}

/// Normalized facts of one evidence file, by kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Facts {
    Sarif(SarifFacts),
    CycloneDx(CycloneDxFacts),
    Spdx(SpdxFacts),
    OpenVex(OpenVexFacts),
    Junit(JunitFacts),
    InToto(InTotoFacts),
    Document(DocumentFacts),
}

/// The result of parsing one evidence file: its facts plus the size and sha256 of the bytes
/// that were read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parsed {
    pub kind: EvidenceKind,
    pub size_bytes: u64,
    /// Lower-case hex sha256 of the whole input.
    pub sha256: String,
    #[serde(flatten)]
    pub facts: Facts,
}

/// Parses `reader` as evidence of `kind`, streaming, within `limits`.
///
/// In-toto envelopes are parsed but their signatures are not checked; use
/// [`parse_attestation`] to check them against trusted keys.
pub fn parse<R: Read>(
    kind: &EvidenceKind,
    reader: R,
    limits: &Limits,
) -> Result<Parsed, EvidenceError> {
    parse_with_keys(kind, reader, limits, None)
}

/// Parses an in-toto attestation and checks every DSSE envelope's signatures against `keys`.
/// Fails with [`EvidenceError::UntrustedSignature`] when an envelope has no signature made by
/// one of the keys.
pub fn parse_attestation<R: Read>(
    reader: R,
    limits: &Limits,
    keys: &[TrustedKey],
) -> Result<Parsed, EvidenceError> {
    parse_with_keys(&EvidenceKind::InToto, reader, limits, Some(keys))
}

fn parse_with_keys<R: Read>(
    kind: &EvidenceKind,
    reader: R,
    limits: &Limits,
    keys: Option<&[TrustedKey]>,
) -> Result<Parsed, EvidenceError> {
    let mut metered = input::Metered::new(reader, limits.max_bytes);
    let outcome = input::with_buffered(&mut metered, |buf| match kind {
        EvidenceKind::Sarif => sarif::parse(buf, limits).map(Facts::Sarif),
        EvidenceKind::CycloneDx => cyclonedx::parse(buf, limits).map(Facts::CycloneDx),
        EvidenceKind::Spdx => spdx::parse(buf, limits).map(Facts::Spdx),
        EvidenceKind::OpenVex => openvex::parse(buf, limits).map(Facts::OpenVex),
        EvidenceKind::Junit => junit::parse(buf, limits).map(Facts::Junit),
        EvidenceKind::InToto => intoto::parse(buf, limits, keys).map(Facts::InToto),
        EvidenceKind::Document(document_kind) => {
            document::parse(buf, document_kind).map(Facts::Document)
        }
    });
    // A read that hit the byte limit surfaces inside the parser as an I/O or syntax error;
    // report the limit itself, which is what the caller can act on.
    if metered.limit_exceeded() {
        return Err(EvidenceError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let facts = outcome?;
    let (size_bytes, sha256) = metered.finish();
    Ok(Parsed {
        kind: kind.clone(),
        size_bytes,
        sha256,
        facts,
    })
}
