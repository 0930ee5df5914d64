#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! in-toto / DSSE: containers, SLSA facts and signature verification with keys generated here.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use gatehouse_evidence::{
    DsseEnvelope, DsseSignature, EvidenceError, EvidenceKind, Facts, InTotoFacts, KeyAlgorithm,
    Limits, SignatureCheck, TrustedKey, pae, parse, parse_attestation, verify_dsse,
};
use sha2::{Digest, Sha256};

const IN_TOTO: &str = "application/vnd.in-toto+json";

fn fixture_bytes(path: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(path),
    )
    .unwrap()
}

/// A deterministic Ed25519 key derived from a label (generated here, no key material on disk).
fn ed25519_key(label: &str) -> ed25519_dalek::SigningKey {
    let seed: [u8; 32] = Sha256::digest(label.as_bytes()).into();
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

fn ed25519_envelope(payload: &[u8], key: &ed25519_dalek::SigningKey) -> String {
    let signature = key.sign(&pae(IN_TOTO, payload));
    serde_json::json!({
        "payloadType": IN_TOTO,
        "payload": STANDARD.encode(payload),
        "signatures": [ { "keyid": "", "sig": STANDARD.encode(signature.to_bytes()) } ]
    })
    .to_string()
}

fn trusted(label: &str, key: &ed25519_dalek::SigningKey) -> TrustedKey {
    TrustedKey::ed25519(label, &key.verifying_key().to_bytes()).unwrap()
}

fn in_toto(parsed: gatehouse_evidence::Parsed) -> InTotoFacts {
    match parsed.facts {
        Facts::InToto(facts) => facts,
        other => panic!("not in-toto facts: {other:?}"),
    }
}

#[test]
fn good_ed25519_envelope_verifies_and_yields_slsa_v1_facts() {
    let key = ed25519_key("release-signer");
    let envelope = ed25519_envelope(&fixture_bytes("intoto/slsa_v1_statement.json"), &key);
    let facts = in_toto(
        parse_attestation(
            envelope.as_bytes(),
            &Limits::default(),
            &[trusted("pack-key", &key)],
        )
        .unwrap(),
    );
    assert_eq!(facts.container, "dsse_envelope");
    assert_eq!(facts.payload_type.as_deref(), Some(IN_TOTO));
    assert_eq!(
        facts.predicate_type.as_deref(),
        Some("https://slsa.dev/provenance/v1")
    );
    assert_eq!(facts.subjects.len(), 2);
    assert_eq!(
        facts.subjects[0].name.as_deref(),
        Some("gatehouse-linux-amd64")
    );
    assert_eq!(
        facts.subjects[0].sha256.as_deref(),
        Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    );
    assert_eq!(
        facts.subjects[1].sha256, None,
        "a sha512-only subject has no sha256"
    );
    let slsa = facts.slsa.as_ref().unwrap();
    assert_eq!(
        slsa.builder_id.as_deref(),
        Some("https://github.com/actions/runner/github-hosted")
    );
    assert_eq!(
        slsa.source_repository.as_deref(),
        Some("https://github.com/example/gatehouse")
    );
    match &facts.envelopes[0].signature_check {
        SignatureCheck::Verified(by) => {
            assert_eq!(by.key_id, "pack-key");
            assert_eq!(by.algorithm, KeyAlgorithm::Ed25519);
        }
        other => panic!("expected a verified signature, got {other:?}"),
    }
}

#[test]
fn envelope_signed_by_an_unknown_key_is_rejected() {
    let signer = ed25519_key("someone-else");
    let envelope = ed25519_envelope(&fixture_bytes("intoto/slsa_v1_statement.json"), &signer);
    let trusted_key = trusted("pack-key", &ed25519_key("release-signer"));
    let err =
        parse_attestation(envelope.as_bytes(), &Limits::default(), &[trusted_key]).unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::UntrustedSignature {
                envelope: 1,
                signatures: 1,
                keys: 1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tampered_payload_fails_verification() {
    let key = ed25519_key("release-signer");
    let payload = fixture_bytes("intoto/slsa_v1_statement.json");
    let signature = key.sign(&pae(IN_TOTO, &payload));
    let mut tampered = payload.clone();
    let position = tampered.iter().position(|b| *b == b'9').unwrap();
    tampered[position] = b'8';
    let envelope = DsseEnvelope {
        payload_type: IN_TOTO.to_string(),
        payload: tampered,
        signatures: vec![DsseSignature {
            keyid: None,
            sig: signature.to_bytes().to_vec(),
        }],
    };
    assert!(verify_dsse(&envelope, &[trusted("k", &key)]).is_err());
    // The same signature over a different payload type must not verify either (PAE binds it).
    let retyped = DsseEnvelope {
        payload_type: "text/plain".to_string(),
        payload,
        ..envelope
    };
    assert!(verify_dsse(&retyped, &[trusted("k", &key)]).is_err());
}

#[test]
fn unsigned_envelope_is_rejected_when_keys_are_required() {
    let payload = fixture_bytes("intoto/slsa_v1_statement.json");
    let envelope = DsseEnvelope {
        payload_type: IN_TOTO.to_string(),
        payload,
        signatures: Vec::new(),
    };
    let err = verify_dsse(&envelope, &[trusted("k", &ed25519_key("x"))]).unwrap_err();
    assert!(matches!(err, EvidenceError::Unsigned { .. }), "{err:?}");
}

#[test]
fn ecdsa_p256_der_signature_from_a_pem_key_verifies() {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;
    let seed: [u8; 32] = Sha256::digest(b"p256-test-key").into();
    let signing = p256::ecdsa::SigningKey::from_slice(&seed).unwrap();
    let pem = signing
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    let payload = fixture_bytes("intoto/slsa_v0_2_statement.json");
    let signature: p256::ecdsa::DerSignature = signing.sign(&pae(IN_TOTO, &payload));
    let envelope = DsseEnvelope {
        payload_type: IN_TOTO.to_string(),
        payload,
        signatures: vec![DsseSignature {
            keyid: Some("cosign".to_string()),
            sig: signature.to_bytes().to_vec(),
        }],
    };
    let key = TrustedKey::from_pem("cosign.pub", &pem).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256Sha256);
    let verified = verify_dsse(&envelope, &[key]).unwrap();
    assert_eq!(verified.key_id, "cosign.pub");
}

#[test]
fn a_pem_that_is_not_a_public_key_is_a_key_error() {
    let err = TrustedKey::from_pem(
        "junk.pem",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap_err();
    assert!(matches!(err, EvidenceError::Key { .. }), "{err:?}");
}

#[test]
fn plain_statement_slsa_v0_2_facts() {
    let bytes = fixture_bytes("intoto/slsa_v0_2_statement.json");
    let facts =
        in_toto(parse(&EvidenceKind::InToto, bytes.as_slice(), &Limits::default()).unwrap());
    assert_eq!(facts.container, "statement");
    assert_eq!(facts.payload_type, None);
    assert_eq!(
        facts.subjects[0].sha256.as_deref(),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        "digests are normalised to lower case"
    );
    let slsa = facts.slsa.unwrap();
    assert!(slsa.builder_id.unwrap().contains("builder_go_slsa3.yml"));
    assert_eq!(
        slsa.source_repository.as_deref(),
        Some("git+https://github.com/example/app@refs/heads/main")
    );
    assert_eq!(facts.envelopes[0].signature_check, SignatureCheck::Unsigned);
}

#[test]
fn sigstore_bundle_npm_and_gcloud_wrappers_are_unwrapped() {
    let key = ed25519_key("wrapper");
    let envelope: serde_json::Value = serde_json::from_str(&ed25519_envelope(
        &fixture_bytes("intoto/slsa_v0_2_statement.json"),
        &key,
    ))
    .unwrap();
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": { "publicKey": { "hint": "x" } },
        "dsseEnvelope": envelope
    });
    let npm = serde_json::json!({ "attestations": [
        { "predicateType": "https://slsa.dev/provenance/v0.2", "bundle": bundle },
        { "predicateType": "https://slsa.dev/provenance/v0.2", "bundle": bundle }
    ]});
    let gcloud = serde_json::json!({ "image_summary": {}, "provenance_summary": { "provenance": [ { "envelope": envelope, "kind": "BUILD" } ] } });
    for (document, container, envelopes) in [
        (bundle, "sigstore_bundle", 1),
        (npm, "npm_attestations", 2),
        (gcloud, "gcloud_build_provenance", 1),
    ] {
        let bytes = document.to_string();
        let facts = in_toto(
            parse_attestation(bytes.as_bytes(), &Limits::default(), &[trusted("k", &key)]).unwrap(),
        );
        assert_eq!(facts.container, container);
        assert_eq!(facts.envelopes.len(), envelopes);
        assert_eq!(facts.subjects.len(), envelopes);
        assert!(
            facts
                .envelopes
                .iter()
                .all(|e| matches!(e.signature_check, SignatureCheck::Verified(_)))
        );
    }
}

#[test]
fn json_lines_hold_several_envelopes() {
    let key = ed25519_key("lines");
    let line = ed25519_envelope(&fixture_bytes("intoto/slsa_v1_statement.json"), &key);
    let bytes = format!("{line}\n{line}\n");
    let facts =
        in_toto(parse(&EvidenceKind::InToto, bytes.as_bytes(), &Limits::default()).unwrap());
    assert_eq!(facts.json_documents, 2);
    assert_eq!(facts.envelopes.len(), 2);
    assert_eq!(
        facts.envelopes[0].signature_check,
        SignatureCheck::NotChecked
    );
}

#[test]
fn payload_that_is_not_json_is_invalid_with_its_location() {
    let envelope = serde_json::json!({
        "payloadType": IN_TOTO,
        "payload": STANDARD.encode(b"This is not an in-toto attestation\n"),
        "signatures": [ { "keyid": "", "sig": "AAAA" } ]
    })
    .to_string();
    let err = parse(
        &EvidenceKind::InToto,
        envelope.as_bytes(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, EvidenceError::Invalid { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("envelope 1 payload, line 1 column 1"),
        "{err}"
    );
}

#[test]
fn a_plain_statement_cannot_satisfy_a_signature_requirement() {
    let bytes = fixture_bytes("intoto/slsa_v0_2_statement.json");
    let err = parse_attestation(
        bytes.as_slice(),
        &Limits::default(),
        &[trusted("k", &ed25519_key("x"))],
    )
    .unwrap_err();
    assert!(
        matches!(err, EvidenceError::Unsigned { envelope: 1 }),
        "{err:?}"
    );
}

#[test]
fn rsa_pkcs1v15_and_pss_envelopes_verify_against_a_pem_key() {
    // Signed with openssl over the DSSE PAE; only the public key is kept in the fixtures.
    let pem = String::from_utf8(fixture_bytes("intoto/rsa_signer.pub.pem")).unwrap();
    let key = TrustedKey::from_pem("rsa_signer.pub.pem", &pem).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::RsaSha256);
    for path in ["intoto/dsse_rsa_pkcs1v15.json", "intoto/dsse_rsa_pss.json"] {
        let bytes = fixture_bytes(path);
        let facts = in_toto(
            parse_attestation(
                bytes.as_slice(),
                &Limits::default(),
                std::slice::from_ref(&key),
            )
            .unwrap(),
        );
        assert!(
            matches!(
                facts.envelopes[0].signature_check,
                SignatureCheck::Verified(_)
            ),
            "{path}"
        );
        // The same envelope does not verify with an unrelated key.
        let other = trusted("other", &ed25519_key("other"));
        assert!(
            parse_attestation(bytes.as_slice(), &Limits::default(), &[other]).is_err(),
            "{path}"
        );
    }
}
