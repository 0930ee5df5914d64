#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bad input to the release gate, end to end on the real binary: attestations signed by an
//! unknown key or about another artifact block by name; an approval of a revision an evidence
//! upload has since moved past is refused as stale (and audited); an exception whose expiry
//! passes between two checks stops counting at the second.
//!
//! The attestation fixtures are DSSE envelopes signed with TEST-ONLY keys
//! (`crates/core/tests/fixtures/gate/attestations/generate.py` keeps only the public halves).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, bin, fixture, token_for};
use serde_json::Value;

const ARTIFACT: &str = "sha256:44d1c14c89ea332a634c011849f710c9b61751be1c3f95d6b1a38cd90ed25031";

fn attestation(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/gate/attestations")
        .join(name)
}

/// The e2e gate pack plus class `attested`, which requires an attestation and trusts the
/// test Ed25519 key.
fn pack_dir(dir: &Path) -> PathBuf {
    let pack = dir.join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::copy(fixture("packs/gate/pack.yaml"), pack.join("pack.yaml")).unwrap();
    let key = std::fs::read_to_string(attestation("trusted-ed25519.pub.pem")).unwrap();
    let key: String = key
        .trim()
        .lines()
        .map(|l| format!("        {l}\n"))
        .collect();
    std::fs::write(
        pack.join("attested.yaml"),
        format!(
            "kind: ReleaseClass\nid: attested\ntitle: Attested release\n\
             description: SLSA provenance signed by the CI key required.\n\
             required_evidence:\n  - kind: provenance\n    max_age: 7d\n\
             approver_path:\n  - role: approver\n    quorum: 1\n\
             attestation:\n  keys:\n    - id: ci-release-test\n      public_key: |\n{key}\
             \x20 source_repositories: [\"https://github.com/acme/payments\"]\n"
        ),
    )
    .unwrap();
    pack
}

struct Client<'a> {
    server: &'a Server,
}

impl Client<'_> {
    fn run_as(&self, token: &str, args: &[&str]) -> (i32, String, String) {
        let output = bin()
            .args(args)
            .env("GATEHOUSE_SERVER", &self.server.url)
            .env("GATEHOUSE_TOKEN", token)
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn create(&self, token: &str, class: &str) -> String {
        let (code, stdout, stderr) = self.run_as(
            token,
            &[
                "release",
                "create",
                "--service",
                "payments",
                "--version",
                "2.14.0",
                "--class",
                class,
                "--owner",
                "team-payments",
                "--digest",
                ARTIFACT,
                "--ticket",
                "PAY-9",
                "--summary",
                "Signed build",
                "--format",
                "json",
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        let release: Value = serde_json::from_str(&stdout).unwrap();
        release["id"].as_str().unwrap().to_owned()
    }

    fn add(&self, token: &str, id: &str, kind: &str, file: &Path) {
        let (code, _, stderr) = self.run_as(
            token,
            &[
                "evidence",
                "add",
                id,
                "--kind",
                kind,
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{stderr}");
    }

    fn verdict(&self, token: &str, id: &str) -> (i32, Value) {
        let (code, stdout, stderr) = self.run_as(token, &["gate", "check", id, "--format", "json"]);
        assert!(matches!(code, 0 | 1 | 3), "{stderr}");
        (code, serde_json::from_str(&stdout).unwrap())
    }
}

/// (code, message) of every reason of `category` at level `block`.
fn blocks(verdict: &Value, category: &str) -> Vec<(String, String)> {
    verdict["categories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["category"] == category)
        .flat_map(|c| c["reasons"].as_array().unwrap().iter())
        .filter(|r| r["level"] == "block")
        .map(|r| {
            (
                r["code"].as_str().unwrap().to_owned(),
                r["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn bad_attestations_stale_approvals_and_expiring_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pack = pack_dir(dir.path());
    let alice = token_for(&data, "alice");
    let bob = token_for(&data, "bob");
    let carol = token_for(&data, "carol");
    let server = Server::start(&[
        "serve",
        "--pack",
        pack.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let client = Client { server: &server };

    // A DSSE envelope signed by a key the class does not trust: blocked, naming the key.
    let id = client.create(&alice, "attested");
    client.add(
        &alice,
        &id,
        "in-toto",
        &attestation("unknown_key.intoto.json"),
    );
    let (code, verdict) = client.verdict(&alice, &id);
    assert_eq!(code, 1, "{verdict}");
    let evidence = blocks(&verdict, "evidence");
    assert!(
        evidence
            .iter()
            .any(|(c, m)| c == "attestation_unknown_key" && m.contains("ci-release-test")),
        "{evidence:#?}"
    );

    // Signed by the trusted key but about another artifact: blocked, subject mismatch.
    let id = client.create(&alice, "attested");
    client.add(
        &alice,
        &id,
        "in-toto",
        &attestation("subject_mismatch.intoto.json"),
    );
    let (code, verdict) = client.verdict(&alice, &id);
    assert_eq!(code, 1, "{verdict}");
    assert!(
        blocks(&verdict, "evidence")
            .iter()
            .any(|(c, _)| c == "attestation_subject_mismatch"),
        "{verdict}"
    );

    // The good envelope: evidence passes; only the approval is outstanding.
    let id = client.create(&alice, "attested");
    client.add(
        &alice,
        &id,
        "in-toto",
        &attestation("slsa_v1_trusted.intoto.json"),
    );
    let (code, verdict) = client.verdict(&alice, &id);
    assert_eq!(code, 3, "{verdict}");
    assert!(blocks(&verdict, "evidence").is_empty(), "{verdict}");

    // An approval racing an evidence upload: bob reviewed revision 1, then an upload moved
    // the release to revision 2 (another envelope signed by the trusted key; this class sets
    // no builder_ids); his approval of revision 1 is refused as stale.
    let (_, verdict) = client.verdict(&bob, &id);
    let seen = verdict["revision"].as_u64().unwrap().to_string();
    client.add(
        &alice,
        &id,
        "in-toto",
        &attestation("slsa_v02_wrong_builder.intoto.json"),
    );
    let (code, _, stderr) = client.run_as(
        &bob,
        &[
            "release",
            "approve",
            &id,
            "--step",
            "1",
            "--revision",
            &seen,
            "--comment",
            "ok",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("you reviewed revision {seen}")) && stderr.contains("again"),
        "{stderr}"
    );
    // Approving what is there now works.
    let (code, _, stderr) = client.run_as(
        &bob,
        &["release", "approve", &id, "--step", "1", "--comment", "ok"],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, verdict) = client.verdict(&alice, &id);
    assert_eq!(code, 0, "{verdict}");

    // An exception whose expiry passes between two checks stops counting at the second.
    let id = client.create(&alice, "normal");
    client.add(
        &alice,
        &id,
        "sarif",
        &fixture("evidence/sarif_with_error.sarif"),
    );
    let (code, _, stderr) = client.run_as(
        &carol,
        &[
            "gate",
            "except",
            &id,
            "--sarif-rule",
            "js/sql-injection",
            "--justification",
            "constant input; fix in PAY-812",
            "--role",
            "security-lead",
            "--expires-in",
            "4s",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let excepted_at = Instant::now();
    let (_, verdict) = client.verdict(&alice, &id);
    assert!(
        blocks(&verdict, "findings").is_empty(),
        "the exception counts before it expires: {verdict}"
    );
    // Wait on the condition (the server's clock passing the expiry), not a fixed time: every
    // check until then still counts the exception, and the first one after it blocks.
    let deadline = excepted_at + Duration::from_secs(60);
    let verdict = loop {
        let (code, verdict) = client.verdict(&alice, &id);
        if code == 1 {
            break verdict;
        }
        assert!(
            blocks(&verdict, "findings").is_empty(),
            "the exception counts until it expires: {verdict}"
        );
        assert!(
            Instant::now() < deadline,
            "the exception never expired: {verdict}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        excepted_at.elapsed() >= Duration::from_secs(3),
        "the 4 s exception stopped counting after {:?}",
        excepted_at.elapsed()
    );
    let findings = blocks(&verdict, "findings");
    assert!(
        findings.iter().any(|(c, _)| c == "exception_expired")
            && findings.iter().any(|(c, _)| c == "findings_over_threshold"),
        "{findings:#?}"
    );

    // The stale approval is in the audit log as a denial.
    let audit: Value = common::http()
        .get(server.url("/api/v1/audit?limit=1000"))
        .bearer_auth(&carol)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "bob"
                && e["action"] == "gate.approve"
                && e["outcome"] == "denied"),
        "{audit}"
    );
}
