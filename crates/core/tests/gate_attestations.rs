//! Attestations are trusted only as the release class says: DSSE envelopes signed by one of
//! the class's `attestation.keys`, about this release's artifacts, and SLSA provenance (v0.2
//! and v1) from an expected builder and source repository. Each failure blocks the evidence
//! category with its own reason code.
//!
//! The fixtures under `fixtures/gate/attestations` are real DSSE envelopes signed with TEST-ONLY
//! keys by `generate.py`, which keeps only the public keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use gatehouse_core::gate::{
    EvidenceFacts, EvidenceItem, GateCategory, GateDecision, ReasonLevel, ReleaseGateState,
    evaluate,
};
use gatehouse_core::release::{ChangeContext, NewRelease, ReleaseId};
use gatehouse_evidence::{EvidenceKind, Limits};
use gatehouse_pack::Pack;
use jiff::Timestamp;

const ARTIFACT: &str = "sha256:44d1c14c89ea332a634c011849f710c9b61751be1c3f95d6b1a38cd90ed25031";
const BUILDER: &str =
    "https://github.com/acme/payments/.github/workflows/release.yml@refs/heads/main";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gate/attestations")
        .join(name)
}

fn indented(text: &str) -> String {
    text.trim()
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect()
}

/// A pack whose class `attested` requires one attestation and trusts the test keys; `keys`
/// is the YAML of `attestation.keys`.
fn pack(keys: &str) -> Pack {
    let yaml = format!(
        "kind: Role\nid: approver\n---\nkind: Person\nid: bob\nname: Bob\nemail: bob@example.com\n\
         roles: [approver]\n---\nkind: ReleaseClass\nid: attested\n\
         required_evidence:\n  - {{ kind: attestation, max_age: 7d }}\n\
         approver_path:\n  - {{ role: approver, quorum: 1 }}\n\
         attestation:\n  keys:\n{keys}  builder_ids: [\"{BUILDER}\"]\n\
         \x20 source_repositories: [\"https://github.com/acme/payments\"]\n"
    );
    let loaded = gatehouse_pack::load_files([("pack.yaml", yaml.as_str())]);
    assert!(!loaded.has_errors(), "{:?}\n{yaml}", loaded.diagnostics);
    loaded.pack
}

fn trusted_pack() -> Pack {
    let ed = std::fs::read_to_string(fixture("trusted-ed25519.pub.pem")).unwrap();
    let p256 = std::fs::read_to_string(fixture("trusted-p256.pub.pem")).unwrap();
    pack(&format!(
        "    - id: ci-release-test\n      public_key: |\n{}    - id: ci-p256-test\n      public_key: |\n{}",
        indented(&ed),
        indented(&p256)
    ))
}

fn now() -> Timestamp {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

/// A release of `attested` with `ARTIFACT`, and the fixture attached as `ev-1`.
fn state_with(name: &str) -> ReleaseGateState {
    let release = NewRelease {
        service: "payments".into(),
        version: "2.14.0".into(),
        release_class: "attested".into(),
        artifact_digests: vec![ARTIFACT.into()],
        owner: "bob".into(),
        change: ChangeContext {
            summary: "Signed build".into(),
            ticket: Some("PAY-1".into()),
            pull_request: None,
        },
        target_environment: "production".into(),
    }
    .into_release(ReleaseId::generate(now()).unwrap(), "alice", now())
    .unwrap();
    let parsed = gatehouse_evidence::parse(
        &EvidenceKind::InToto,
        std::fs::File::open(fixture(name)).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let mut state = ReleaseGateState::new(release);
    state.evidence.push(EvidenceItem {
        id: "ev-1".into(),
        kind: EvidenceKind::InToto,
        sha256: parsed.sha256,
        size: parsed.size_bytes,
        attached_at: now(),
        attached_by: "alice".into(),
        facts: EvidenceFacts::Parsed(parsed.facts),
        supersedes: None,
        revision: 1,
    });
    state
}

/// Codes of the blocking evidence reasons, and the verdict's evidence decision.
fn evidence_blocks(pack: &Pack, name: &str) -> (GateDecision, Vec<(String, String)>) {
    let state = state_with(name);
    let class = pack.release_class("attested").unwrap();
    let verdict = evaluate(class, None, &state, now());
    let evidence = verdict.category(GateCategory::Evidence).unwrap();
    let blocks = evidence
        .reasons
        .iter()
        .filter(|r| r.level == ReasonLevel::Block)
        .map(|r| (r.code.clone(), r.message.clone()))
        .collect();
    (evidence.decision, blocks)
}

#[test]
fn signed_by_a_trusted_key_about_the_artifact_from_the_expected_builder_passes() {
    let pack = trusted_pack();
    for name in [
        "slsa_v1_trusted.intoto.json",
        "slsa_v02_trusted_p256.intoto.json",
    ] {
        let (decision, blocks) = evidence_blocks(&pack, name);
        assert_eq!(decision, GateDecision::Pass, "{name}: {blocks:#?}");
    }
}

#[test]
fn a_raw_base64_ed25519_key_is_trusted_like_its_pem() {
    let raw = std::fs::read_to_string(fixture("trusted-ed25519.pub.b64")).unwrap();
    let pack = pack(&format!(
        "    - {{ id: ci-release-test, public_key: \"{}\" }}\n",
        raw.trim()
    ));
    let (decision, blocks) = evidence_blocks(&pack, "slsa_v1_trusted.intoto.json");
    assert_eq!(decision, GateDecision::Pass, "{blocks:#?}");
}

fn assert_blocked_with(name: &str, code: &str, needles: &[&str]) {
    let (decision, blocks) = evidence_blocks(&trusted_pack(), name);
    assert_eq!(decision, GateDecision::Blocked, "{name}: {blocks:#?}");
    let (_, message) = blocks
        .iter()
        .find(|(c, _)| c == code)
        .unwrap_or_else(|| panic!("{name}: no {code} among {blocks:#?}"));
    for needle in needles {
        assert!(message.contains(needle), "{name}: {message}");
    }
}

#[test]
fn an_envelope_signed_by_an_unknown_key_blocks() {
    assert_blocked_with(
        "unknown_key.intoto.json",
        "attestation_unknown_key",
        &["ev-1", "someone-else", "ci-release-test"],
    );
}

#[test]
fn an_envelope_altered_after_signing_blocks_as_a_bad_signature() {
    assert_blocked_with(
        "bad_signature.intoto.json",
        "attestation_bad_signature",
        &["ev-1", "ci-release-test", "altered"],
    );
}

#[test]
fn a_subject_digest_that_is_not_the_release_artifact_blocks() {
    assert_blocked_with(
        "subject_mismatch.intoto.json",
        "attestation_subject_mismatch",
        &["ev-1", "none of which is an artifact of this release"],
    );
}

#[test]
fn slsa_v02_provenance_from_another_builder_blocks() {
    assert_blocked_with(
        "slsa_v02_wrong_builder.intoto.json",
        "attestation_builder_unexpected",
        &["https://evil.example/builder@v1", "attestation.builder_ids"],
    );
}

#[test]
fn slsa_v1_provenance_from_another_repository_blocks() {
    assert_blocked_with(
        "slsa_v1_wrong_repo.intoto.json",
        "attestation_source_unexpected",
        &["mallory/payments", "attestation.source_repositories"],
    );
}

#[test]
fn without_trusted_keys_or_with_a_broken_key_nothing_is_trusted() {
    // No attestation block at all.
    let yaml = "kind: Role\nid: approver\n---\nkind: Person\nid: bob\nname: Bob\n\
                email: bob@example.com\nroles: [approver]\n---\nkind: ReleaseClass\n\
                id: attested\nrequired_evidence: [{kind: attestation}]\n\
                approver_path: [{role: approver}]\n";
    let loaded = gatehouse_pack::load_files([("pack.yaml", yaml)]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let (decision, blocks) = evidence_blocks(&loaded.pack, "slsa_v1_trusted.intoto.json");
    assert_eq!(decision, GateDecision::Blocked);
    assert!(
        blocks
            .iter()
            .any(|(c, m)| c == "attestation_unverified" && m.contains("attestation.keys")),
        "{blocks:#?}"
    );

    // A key that is base64 but no public key: named, and nothing verifies.
    let pack = pack("    - { id: broken, public_key: \"AAAA\" }\n");
    let (decision, blocks) = evidence_blocks(&pack, "slsa_v1_trusted.intoto.json");
    assert_eq!(decision, GateDecision::Blocked);
    assert!(
        blocks
            .iter()
            .any(|(c, m)| c == "attestation_key_invalid" && m.contains("`broken`")),
        "{blocks:#?}"
    );
}

#[test]
fn a_private_key_in_the_pack_is_a_lint_error() {
    let loaded = gatehouse_pack::load_files([(
        "pack.yaml",
        "kind: Role\nid: approver\n---\nkind: Person\nid: bob\nname: Bob\nemail: b@example.com\n\
         roles: [approver]\n---\nkind: ReleaseClass\nid: attested\n\
         approver_path: [{role: approver}]\nattestation:\n  keys:\n    - id: oops\n      \
         public_key: \"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\"\n",
    )]);
    assert!(loaded.has_errors());
    let diagnostics = &loaded.diagnostics;
    assert!(
        diagnostics
            .iter()
            .any(|d| d.message.contains("is a private key")),
        "{diagnostics:#?}"
    );
}
