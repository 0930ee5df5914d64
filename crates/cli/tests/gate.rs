#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End to end on the real binary: the release gate from `evidence add` to the memo.
//!
//! A release of class `normal` (fixture pack `packs/gate`: SAST evidence required, approver then
//! security lead) gets a SARIF log with an error: blocked, naming the rule. An exception by the
//! security lead and approvals by two people other than the submitter make it pass; the memo
//! renders; every step is in the audit log. Along the way: approval and bypass by the
//! submitter refused, a duplicate upload idempotent, a wrong kind and an oversize file refused
//! with nothing stored.

mod common;

use common::{Server, bin, fixture, token_for};
use serde_json::Value;

/// Smaller than the oversize file the test uploads, larger than the fixtures.
const MAX_EVIDENCE_BYTES: &str = "4096";

struct Client<'a> {
    server: &'a Server,
}

impl Client<'_> {
    /// Runs `gatehouse ARGS` against the server with `token`; returns (exit code, stdout, stderr).
    fn run_as(&self, token: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let output = bin()
            .args(args)
            .env("GATEHOUSE_SERVER", &self.server.url)
            .env("GATEHOUSE_TOKEN", token)
            .env_remove("GITHUB_STEP_SUMMARY")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

#[test]
fn release_gate_from_evidence_to_memo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pack = fixture("packs/gate");
    let alice = token_for(&data, "alice"); // submitter (also an approver: separation of duties)
    let bob = token_for(&data, "bob"); // approver
    let carol = token_for(&data, "carol"); // security lead
    let server = Server::start(&[
        "serve",
        "--pack",
        pack.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--max-evidence-bytes",
        MAX_EVIDENCE_BYTES,
    ]);
    let client = Client { server: &server };

    // A release submitted by alice.
    let (code, stdout, stderr) = client.run_as(
        &alice,
        &[
            "release",
            "create",
            "--service",
            "payments",
            "--version",
            "2.14.0",
            "--class",
            "normal",
            "--owner",
            "team-payments",
            "--digest",
            "sha256:44d1c14c89ea332a634c011849f710c9b61751be1c3f95d6b1a38cd90ed25031",
            "--ticket",
            "PAY-811",
            "--summary",
            "Parameterise the order query",
            "--environment",
            "production",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let release: Value = serde_json::from_str(&stdout).unwrap();
    let id = release["id"].as_str().unwrap().to_owned();

    // Nothing attached: pending (exit 3), the missing evidence named.
    let (code, stdout, _) = client.run_as(&alice, &["gate", "check", &id], &[]);
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("sast"), "{stdout}");

    // A SARIF log with an unsuppressed error: attached, then blocked naming the rule.
    let sarif = fixture("evidence/sarif_with_error.sarif");
    let sarif = sarif.to_str().unwrap();
    let (code, stdout, stderr) = client.run_as(
        &alice,
        &[
            "evidence", "add", &id, "--kind", "sarif", sarif, "--format", "json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let receipt: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(receipt["status"], "attached");
    assert_eq!(receipt["id"], "ev-1");
    assert_eq!(receipt["revision"], 1);

    let (code, stdout, _) = client.run_as(&alice, &["gate", "check", &id, "--format", "json"], &[]);
    assert_eq!(code, 1, "{stdout}");
    let verdict: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(verdict["decision"], "blocked");
    // The reason names the category, the rule of the class and the evidence behind it.
    let findings = verdict["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "findings")
        .unwrap();
    assert_eq!(findings["decision"], "blocked");
    let reason = findings["reasons"][0]["message"].as_str().unwrap();
    assert!(
        reason.contains("unsuppressed SARIF error") && reason.contains("ev-1"),
        "{reason}"
    );

    // The same bytes again: idempotent, nothing new, the revision does not move.
    let (code, stdout, stderr) = client.run_as(
        &alice,
        &["evidence", "add", &id, "--kind", "sarif", sarif],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("already attached as ev-1"), "{stdout}");
    assert!(stdout.contains("revision 1"), "{stdout}");

    // A file of another kind: refused saying what it is; nothing stored.
    let cdx = fixture("evidence/cyclonedx_not_sarif.json");
    let (code, _, stderr) = client.run_as(
        &alice,
        &[
            "evidence",
            "add",
            &id,
            "--kind",
            "sarif",
            cdx.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("not sarif evidence") && stderr.contains("CycloneDX"),
        "{stderr}"
    );

    // Larger than the server's limit: refused naming the limit; nothing stored.
    let big = dir.path().join("big.sarif");
    std::fs::write(&big, vec![b' '; 5000]).unwrap();
    let (code, _, stderr) = client.run_as(
        &alice,
        &[
            "evidence",
            "add",
            &id,
            "--kind",
            "sarif",
            big.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("max_evidence_bytes = 4096"), "{stderr}");
    let (_, stdout, _) = client.run_as(&alice, &["gate", "check", &id, "--format", "json"], &[]);
    let verdict: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        verdict["revision"], 1,
        "failed uploads must not change the release"
    );

    // The submitter may neither approve nor bypass her own release.
    let (code, _, stderr) = client.run_as(
        &alice,
        &[
            "gate",
            "approve",
            &id,
            "--step",
            "1",
            "--comment",
            "looks fine",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("separation of duties"), "{stderr}");
    let (code, _, stderr) = client.run_as(
        &alice,
        &[
            "gate",
            "bypass",
            &id,
            "--reason",
            "customer demo in an hour",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot bypass"), "{stderr}");

    // The security lead excepts the rule, with a compensating control and an expiry.
    let (code, stdout, stderr) = client.run_as(
        &carol,
        &[
            "gate",
            "except",
            &id,
            "--sarif-rule",
            "js/sql-injection",
            "--justification",
            "The query input is a server-side constant; fix scheduled in PAY-812",
            "--control",
            "WAF rule 942100 blocks SQL meta-characters",
            "--role",
            "security-lead",
            "--expires-in",
            "30d",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("exception ex-1"), "{stdout}");

    // Findings are covered; the approver path is not done: pending.
    let (code, stdout, _) = client.run_as(&alice, &["gate", "check", &id], &[]);
    assert_eq!(code, 3, "{stdout}");

    // Approvals in order by two people other than the submitter: pass.
    let (code, _, stderr) = client.run_as(
        &bob,
        &[
            "gate",
            "approve",
            &id,
            "--step",
            "1",
            "--comment",
            "reviewed the diff",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = client.run_as(
        &carol,
        &[
            "gate",
            "approve",
            &id,
            "--step",
            "2",
            "--comment",
            "exception accepted",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let summary = dir.path().join("step-summary.md");
    let (code, stdout, _) = client.run_as(
        &alice,
        &["gate", "check", &id, "--format", "markdown"],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{stdout}");
    let written = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(written, stdout, "the step summary is the Markdown verdict");
    assert!(written.to_lowercase().contains("pass"), "{written}");

    // The memo: exceptions with expiry and controls, approvals by whom, evidence digests.
    let (code, memo, stderr) = client.run_as(&bob, &["gate", "memo", &id, "--format", "md"], &[]);
    assert_eq!(code, 0, "{stderr}");
    for needle in [
        "ex-1",
        "WAF rule 942100",
        "Bob Okafor",
        "Carol Nguyen",
        receipt["sha256"].as_str().unwrap(),
    ] {
        assert!(memo.contains(needle), "memo lacks {needle}:\n{memo}");
    }
    let (code, html, _) = client.run_as(&bob, &["gate", "memo", &id, "--format", "html"], &[]);
    assert_eq!(code, 0);
    assert!(
        html.contains("<html") && html.contains("Carol Nguyen"),
        "{html}"
    );
    let log = dir.path().join("Test_Result_Analysis.md");
    let (code, _, stderr) = client.run_as(
        &bob,
        &[
            "gate",
            "memo",
            &id,
            "--log",
            log.to_str().unwrap(),
            "--tag",
            "SEC-PH5",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let entry = std::fs::read_to_string(&log).unwrap();
    assert!(
        entry.contains("[SEC-PH5]") && entry.contains("payments"),
        "{entry}"
    );

    // Every step is in the audit log, refusals too.
    let audit: Value = reqwest::blocking::Client::new()
        .get(server.url("/api/v1/audit?limit=1000"))
        .bearer_auth(&carol)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let has = |actor: &str, action: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"] == action
                && e["outcome"] == outcome
                && e["target"] == format!("release:{id}")
        })
    };
    assert!(has("alice", "evidence.attach", "succeeded"));
    assert!(has("alice", "evidence.attach", "failed"));
    assert!(has("alice", "gate.approve", "denied"));
    assert!(has("alice", "gate.bypass", "denied"));
    assert!(has("carol", "gate.exception", "succeeded"));
    assert!(has("bob", "gate.approve", "succeeded"));
    assert!(has("carol", "gate.approve", "succeeded"));
}
