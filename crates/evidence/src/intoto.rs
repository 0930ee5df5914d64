//! in-toto attestations: Statements (v0.1 and v1), plain or in a DSSE envelope, a Sigstore
//! bundle, the npm registry's attestation list or gcloud's provenance summary; SLSA provenance
//! (v0.1, v0.2, v1) builder id and source repository.
//!
//! Attestations are small documents whose payload is base64 inside JSON, so they are read
//! whole (within the byte limit) with typed, field-selective deserialization; the predicate is
//! kept as raw JSON and only decoded when its type is SLSA provenance. A file may hold several
//! JSON documents (JSON Lines, as `*.intoto.jsonl` files do).

use std::collections::BTreeMap;
use std::io::BufRead;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Limits;
use crate::dsse::{DsseEnvelope, DsseSignature, TrustedKey, VerifiedBy, verify_dsse};
use crate::error::{EvidenceError, Location};
use crate::kind::EvidenceKind;

/// An attestation subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectFact {
    pub name: Option<String>,
    /// Lower-case hex sha256 digest, None when the subject has no sha256.
    pub sha256: Option<String>,
}

/// SLSA provenance facts the release class checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlsaFacts {
    pub builder_id: Option<String>,
    pub source_repository: Option<String>,
}

/// Outcome of the signature check of one envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureCheck {
    /// No trusted keys were given.
    NotChecked,
    /// A plain Statement: nothing to check.
    Unsigned,
    Verified(VerifiedBy),
}

/// One envelope (or plain Statement) of an attestation file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvelopeFacts {
    /// DSSE payloadType; None for a plain Statement.
    pub payload_type: Option<String>,
    pub signatures: usize,
    pub statement_type: Option<String>,
    pub predicate_type: Option<String>,
    pub subjects: Vec<SubjectFact>,
    pub slsa: Option<SlsaFacts>,
    /// Sigstore bundle media type, when the envelope came in a bundle.
    pub bundle_media_type: Option<String>,
    pub signature_check: SignatureCheck,
    /// The decoded envelope (payload and signature bytes), so a caller holding trusted keys
    /// — the release gate, with the keys of the pack in force — can verify it later without
    /// re-reading the file. Not part of the printed facts.
    #[serde(skip)]
    pub dsse: Option<DsseEnvelope>,
}

/// Facts of an in-toto attestation file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InTotoFacts {
    /// `dsse_envelope`, `sigstore_bundle`, `npm_attestations`, `gcloud_build_provenance`,
    /// `statement` or `legacy_intoto_metadata`.
    pub container: &'static str,
    pub json_documents: usize,
    /// Payload type of the first envelope.
    pub payload_type: Option<String>,
    /// Predicate type of the first envelope that has one.
    pub predicate_type: Option<String>,
    /// Subjects of all envelopes.
    pub subjects: Vec<SubjectFact>,
    /// SLSA facts of the first SLSA provenance envelope.
    pub slsa: Option<SlsaFacts>,
    pub envelopes: Vec<EnvelopeFacts>,
}

const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Deserialize)]
struct RawSignature {
    keyid: Option<String>,
    sig: Option<String>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    #[serde(default)]
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawBundle {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "dsseEnvelope")]
    dsse_envelope: Option<RawEnvelope>,
}

#[derive(Deserialize)]
struct NpmAttestation {
    bundle: RawBundle,
}

#[derive(Deserialize)]
struct GcloudSummary {
    #[serde(default)]
    provenance: Vec<GcloudProvenance>,
}

#[derive(Deserialize)]
struct GcloudProvenance {
    envelope: RawEnvelope,
}

#[derive(Deserialize)]
struct RawSubject {
    name: Option<String>,
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct LegacySigned {
    #[serde(rename = "_type")]
    statement_type: Option<String>,
}

/// Any of the recognised top-level shapes; which fields are present decides the container.
#[derive(Deserialize)]
struct TopLevel {
    #[serde(rename = "payloadType")]
    payload_type: Option<String>,
    payload: Option<String>,
    signatures: Option<Vec<RawSignature>>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "dsseEnvelope")]
    dsse_envelope: Option<RawEnvelope>,
    attestations: Option<Vec<NpmAttestation>>,
    provenance_summary: Option<GcloudSummary>,
    #[serde(rename = "_type")]
    statement_type: Option<String>,
    subject: Option<Vec<RawSubject>>,
    #[serde(rename = "predicateType")]
    predicate_type: Option<String>,
    predicate: Option<Box<RawValue>>,
    signed: Option<LegacySigned>,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    statement_type: Option<String>,
    #[serde(default)]
    subject: Vec<RawSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: Option<String>,
    predicate: Option<Box<RawValue>>,
}

pub(crate) fn parse<R: BufRead>(
    reader: &mut R,
    _limits: &Limits,
    keys: Option<&[TrustedKey]>,
) -> Result<InTotoFacts, EvidenceError> {
    let kind = EvidenceKind::InToto;
    let mut container: Option<&'static str> = None;
    let mut envelopes = Vec::new();
    let mut documents = 0;
    for document in serde_json::Deserializer::from_reader(reader).into_iter::<TopLevel>() {
        let document = document.map_err(|err| EvidenceError::from_json(kind.clone(), err))?;
        documents += 1;
        let (document_container, mut found) = unwrap_document(document)?;
        container.get_or_insert(document_container);
        envelopes.append(&mut found);
    }
    let Some(container) = container else {
        return Err(EvidenceError::Syntax {
            kind,
            location: Location::ByteOffset(0),
            message: "empty document".to_string(),
        });
    };
    let mut facts = InTotoFacts {
        container,
        json_documents: documents,
        payload_type: None,
        predicate_type: None,
        subjects: Vec::new(),
        slsa: None,
        envelopes: Vec::new(),
    };
    for (index, source) in envelopes.into_iter().enumerate() {
        let envelope = envelope_facts(index + 1, source, keys)?;
        if facts.payload_type.is_none() {
            facts.payload_type.clone_from(&envelope.payload_type);
        }
        if facts.predicate_type.is_none() {
            facts.predicate_type.clone_from(&envelope.predicate_type);
        }
        if facts.slsa.is_none() {
            facts.slsa.clone_from(&envelope.slsa);
        }
        facts.subjects.extend(envelope.subjects.iter().cloned());
        facts.envelopes.push(envelope);
    }
    Ok(facts)
}

/// Where an envelope came from.
enum Source {
    Dsse {
        envelope: RawEnvelope,
        bundle_media_type: Option<String>,
    },
    Statement(Statement),
    Legacy {
        statement_type: Option<String>,
        signatures: usize,
    },
}

fn unwrap_document(document: TopLevel) -> Result<(&'static str, Vec<Source>), EvidenceError> {
    let kind = EvidenceKind::InToto;
    if let (Some(payload_type), Some(payload)) = (document.payload_type, document.payload) {
        let envelope = RawEnvelope {
            payload_type,
            payload,
            signatures: document.signatures.unwrap_or_default(),
        };
        return Ok((
            "dsse_envelope",
            vec![Source::Dsse {
                envelope,
                bundle_media_type: None,
            }],
        ));
    }
    if let Some(envelope) = document.dsse_envelope {
        return Ok((
            "sigstore_bundle",
            vec![Source::Dsse {
                envelope,
                bundle_media_type: document.media_type,
            }],
        ));
    }
    if let Some(attestations) = document.attestations {
        let envelopes = attestations
            .into_iter()
            .filter_map(|attestation| {
                let bundle = attestation.bundle;
                bundle.dsse_envelope.map(|envelope| Source::Dsse {
                    envelope,
                    bundle_media_type: bundle.media_type,
                })
            })
            .collect();
        return Ok(("npm_attestations", envelopes));
    }
    if let Some(summary) = document.provenance_summary {
        let envelopes = summary
            .provenance
            .into_iter()
            .map(|provenance| Source::Dsse {
                envelope: provenance.envelope,
                bundle_media_type: None,
            })
            .collect();
        return Ok(("gcloud_build_provenance", envelopes));
    }
    if document.statement_type.is_some() || document.predicate_type.is_some() {
        let statement = Statement {
            statement_type: document.statement_type,
            subject: document.subject.unwrap_or_default(),
            predicate_type: document.predicate_type,
            predicate: document.predicate,
        };
        return Ok(("statement", vec![Source::Statement(statement)]));
    }
    if let Some(signed) = document.signed {
        let signatures = document.signatures.map_or(0, |s| s.len());
        return Ok((
            "legacy_intoto_metadata",
            vec![Source::Legacy {
                statement_type: signed.statement_type,
                signatures,
            }],
        ));
    }
    Err(EvidenceError::WrongKind {
        kind,
        found: "no DSSE envelope, Sigstore bundle, npm or gcloud wrapper, or in-toto Statement"
            .to_string(),
    })
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    // DSSE allows standard and URL-safe base64.
    GeneralPurpose::new(&base64::alphabet::STANDARD, config)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, config).decode(text))
        .ok()
}

fn envelope_facts(
    index: usize,
    source: Source,
    keys: Option<&[TrustedKey]>,
) -> Result<EnvelopeFacts, EvidenceError> {
    let kind = EvidenceKind::InToto;
    let invalid = |location: Location, message: String| EvidenceError::Invalid {
        kind: kind.clone(),
        location,
        message,
    };
    match source {
        Source::Dsse {
            envelope,
            bundle_media_type,
        } => {
            let payload = decode_base64(&envelope.payload).ok_or_else(|| {
                invalid(
                    Location::Document,
                    format!("envelope {index}: payload is not base64"),
                )
            })?;
            let mut signatures = Vec::with_capacity(envelope.signatures.len());
            for (position, signature) in envelope.signatures.iter().enumerate() {
                let sig = signature
                    .sig
                    .as_deref()
                    .and_then(decode_base64)
                    .ok_or_else(|| {
                        invalid(
                            Location::Document,
                            format!("envelope {index}: signature {} is not base64", position + 1),
                        )
                    })?;
                signatures.push(DsseSignature {
                    keyid: signature.keyid.clone(),
                    sig,
                });
            }
            let dsse = DsseEnvelope {
                payload_type: envelope.payload_type,
                payload,
                signatures,
            };
            let signature_check = match keys {
                None => SignatureCheck::NotChecked,
                Some(keys) => SignatureCheck::Verified(
                    verify_dsse(&dsse, keys).map_err(|err| renumber(err, index))?,
                ),
            };
            let statement = if dsse.payload_type == IN_TOTO_PAYLOAD_TYPE {
                let statement: Statement =
                    serde_json::from_slice(&dsse.payload).map_err(|err| {
                        invalid(
                            Location::Embedded {
                                container: format!("envelope {index} payload"),
                                inner: Box::new(Location::LineColumn {
                                    line: err.line() as u64,
                                    column: err.column() as u64,
                                }),
                            },
                            format!("payload is not an in-toto Statement: {err}"),
                        )
                    })?;
                Some(statement)
            } else {
                None
            };
            let mut facts = statement_facts(index, statement)?;
            facts.payload_type = Some(dsse.payload_type.clone());
            facts.signatures = dsse.signatures.len();
            facts.bundle_media_type = bundle_media_type;
            facts.signature_check = signature_check;
            facts.dsse = Some(dsse);
            Ok(facts)
        }
        Source::Statement(statement) => {
            if keys.is_some() {
                return Err(EvidenceError::Unsigned { envelope: index });
            }
            let mut facts = statement_facts(index, Some(statement))?;
            facts.signature_check = SignatureCheck::Unsigned;
            Ok(facts)
        }
        Source::Legacy {
            statement_type,
            signatures,
        } => {
            // in-toto 0.9 metadata signs canonical JSON, not DSSE; not verifiable here.
            if keys.is_some() {
                return Err(EvidenceError::Unsigned { envelope: index });
            }
            let mut facts = statement_facts(index, None)?;
            facts.statement_type = statement_type;
            facts.signatures = signatures;
            Ok(facts)
        }
    }
}

fn renumber(err: EvidenceError, index: usize) -> EvidenceError {
    match err {
        EvidenceError::Unsigned { .. } => EvidenceError::Unsigned { envelope: index },
        EvidenceError::UntrustedSignature {
            signatures, keys, ..
        } => EvidenceError::UntrustedSignature {
            envelope: index,
            signatures,
            keys,
        },
        other => other,
    }
}

fn statement_facts(
    index: usize,
    statement: Option<Statement>,
) -> Result<EnvelopeFacts, EvidenceError> {
    let mut facts = EnvelopeFacts {
        payload_type: None,
        signatures: 0,
        statement_type: None,
        predicate_type: None,
        subjects: Vec::new(),
        slsa: None,
        bundle_media_type: None,
        signature_check: SignatureCheck::NotChecked,
        dsse: None,
    };
    let Some(statement) = statement else {
        return Ok(facts);
    };
    facts.statement_type = statement.statement_type;
    facts.predicate_type = statement.predicate_type.filter(|p| !p.is_empty());
    facts.subjects = statement
        .subject
        .into_iter()
        .map(|subject| SubjectFact {
            name: subject.name,
            sha256: subject
                .digest
                .get("sha256")
                .map(|digest| digest.to_ascii_lowercase()),
        })
        .collect();
    let is_slsa = facts
        .predicate_type
        .as_deref()
        .is_some_and(|p| p.starts_with("https://slsa.dev/provenance/"));
    if is_slsa && let Some(predicate) = statement.predicate {
        let predicate: SlsaPredicate =
            serde_json::from_str(predicate.get()).map_err(|err| EvidenceError::Invalid {
                kind: EvidenceKind::InToto,
                location: Location::Embedded {
                    container: format!("envelope {index} predicate"),
                    inner: Box::new(Location::LineColumn {
                        line: err.line() as u64,
                        column: err.column() as u64,
                    }),
                },
                message: format!("not a SLSA provenance predicate: {err}"),
            })?;
        facts.slsa = Some(predicate.facts());
    }
    Ok(facts)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SlsaPredicate {
    // v0.1 / v0.2
    builder: Option<Builder>,
    invocation: Option<Invocation>,
    recipe: Option<Recipe>,
    materials: Option<Vec<Material>>,
    // v1
    #[serde(rename = "buildDefinition")]
    build_definition: Option<BuildDefinition>,
    #[serde(rename = "runDetails")]
    run_details: Option<RunDetails>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Builder {
    id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Invocation {
    #[serde(rename = "configSource")]
    config_source: Option<Material>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Recipe {
    #[serde(rename = "definedInMaterial")]
    defined_in_material: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Material {
    uri: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BuildDefinition {
    #[serde(rename = "externalParameters")]
    external_parameters: Option<serde_json::Value>,
    #[serde(rename = "resolvedDependencies")]
    resolved_dependencies: Option<Vec<Material>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunDetails {
    builder: Option<Builder>,
}

impl SlsaPredicate {
    fn facts(self) -> SlsaFacts {
        let builder_id = self
            .run_details
            .and_then(|details| details.builder)
            .or(self.builder)
            .and_then(|builder| builder.id);
        let materials = self.materials.unwrap_or_default();
        let from_v1 = self.build_definition.and_then(|definition| {
            let parameters = definition.external_parameters.unwrap_or_default();
            // GitHub Actions generic v1: externalParameters.workflow.repository; other
            // builders: externalParameters.source (string or {uri}); else the first
            // resolved dependency.
            let text = |value: &serde_json::Value| value.as_str().map(str::to_string);
            text(&parameters["workflow"]["repository"])
                .or_else(|| text(&parameters["source"]))
                .or_else(|| text(&parameters["source"]["uri"]))
                .or_else(|| text(&parameters["repository"]))
                .or_else(|| {
                    definition
                        .resolved_dependencies?
                        .into_iter()
                        .find_map(|m| m.uri)
                })
        });
        let source_repository = from_v1
            .or_else(|| {
                self.invocation
                    .and_then(|i| i.config_source)
                    .and_then(|m| m.uri)
            })
            .or_else(|| {
                let index = self.recipe.and_then(|r| r.defined_in_material).unwrap_or(0);
                materials.get(index).and_then(|m| m.uri.clone())
            });
        SlsaFacts {
            builder_id,
            source_repository,
        }
    }
}
