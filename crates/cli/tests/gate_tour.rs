#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The README's release-gate tour, run verbatim: the shell block between
//! `<!-- gate-tour:start -->` and `<!-- gate-tour:end -->` in README.md is executed by `sh`
//! against the real binary, serving `examples/gate-tour/pack`, with tokens for alice, bob and
//! carol as the README's setup block makes them. If the README and the product drift apart,
//! this test fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, token_for};
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

/// The tour's shell block from README.md.
fn tour_block() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- gate-tour:start -->")
        .expect("README.md has a gate-tour:start marker");
    let end = readme
        .find("<!-- gate-tour:end -->")
        .expect("README.md has a gate-tour:end marker");
    let section = &readme[start..end];
    let code = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code)
        .expect("the gate tour is a ```sh block");
    code.to_owned()
}

#[test]
fn the_readme_gate_tour_works_as_written() {
    let script = tour_block();
    for step in [
        "release create",
        "evidence add",
        "--kind sarif",
        "--kind cyclonedx",
        "--kind junit",
        "gate except",
        "release approve",
        "release memo",
        "--tag SEC-PH5",
    ] {
        assert!(script.contains(step), "the tour lost its `{step}` step");
    }

    // The README's setup block, with a free port instead of 8080.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tour-data");
    let alice = token_for(&data, "alice");
    let bob = token_for(&data, "bob");
    let carol = token_for(&data, "carol");
    let pack = repo_root().join("examples/gate-tour/pack");
    let server = Server::start(&[
        "serve",
        "--pack",
        pack.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);

    // Run from a scratch folder that sees the repository's examples/ (the README runs from
    // the repository root), so memo.html and the log land in the scratch folder.
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::os::unix::fs::symlink(repo_root().join("examples"), work.join("examples")).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_gatehouse")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env("PATH", path)
        .env("GATEHOUSE_SERVER", &server.url)
        .env("ALICE", &alice)
        .env("BOB", &bob)
        .env("CAROL", &carol)
        .env_remove("GATEHOUSE_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");

    // Blocked with the reason, then pending, then pass — in that order.
    let exits: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("exit "))
        .collect();
    assert_eq!(exits, ["1", "3", "0"], "{context}");
    let blocked_at = stdout.find("exit 1").unwrap();
    let before_block = &stdout[..blocked_at];
    assert!(
        before_block.contains("blocked") && before_block.contains("ev-1"),
        "the blocked verdict names its reason and evidence:\n{context}"
    );
    for attached in [
        "payments-2.14.0.sarif attached as ev-1",
        "payments-2.14.0.cdx.json attached as ev-2",
        "junit.xml attached as ev-3",
    ] {
        assert!(stdout.contains(attached), "{attached}:\n{context}");
    }

    // The memo renders; the readiness log has its header and the tagged entry.
    let memo = std::fs::read_to_string(work.join("memo.html")).unwrap();
    assert!(
        memo.contains("<html") && memo.contains("Carol Nguyen") && memo.contains("WAF rule 942100"),
        "{memo}"
    );
    let log = std::fs::read_to_string(work.join("Test_Result_Analysis.md")).unwrap();
    assert!(log.starts_with("# Test Result Analysis"), "{log}");
    assert!(log.contains("[SEC-PH5]") && log.contains("PASS"), "{log}");

    // The metrics line reports the period.
    assert!(stdout.contains("gate metrics"), "{context}");

    // Every step is in the audit log.
    let audit: Value = common::http()
        .get(server.url("/api/v1/audit?limit=1000"))
        .bearer_auth(&carol)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let count = |actor: &str, action: &str| {
        entries
            .iter()
            .filter(|e| e["actor"] == actor && e["action"] == action && e["outcome"] == "succeeded")
            .count()
    };
    assert_eq!(count("alice", "release.create"), 1, "{audit}");
    assert_eq!(count("alice", "evidence.attach"), 3, "{audit}");
    assert_eq!(count("carol", "gate.exception"), 1, "{audit}");
    assert_eq!(count("bob", "gate.approve"), 1, "{audit}");
    assert_eq!(count("carol", "gate.approve"), 1, "{audit}");

    // The gate metrics, by API and on /metrics.
    let report: Value = common::http()
        .get(server.url("/api/v1/metrics/gate"))
        .bearer_auth(&carol)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let m = &report["metrics"];
    assert_eq!(m["releases"], 1, "{report}");
    assert_eq!(m["decided_releases"], 1, "{report}");
    assert_eq!(m["evidence_completeness_percent"], 100.0, "{report}");
    assert_eq!(m["gate_bypasses"], 0, "{report}");
    assert!(m["review_latency_p50_seconds"].is_i64(), "{report}");
    let prometheus = common::http()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for series in [
        "gatehouse_gate_verdicts_total{decision=\"blocked\"} 1\n",
        "gatehouse_gate_verdicts_total{decision=\"pass\"} 1\n",
        "gatehouse_gate_emergency_releases{window=\"30d\"} 0\n",
        "gatehouse_gate_overdue_retrospectives{window=\"30d\"} 0\n",
        "gatehouse_gate_evidence_completeness_percent{window=\"30d\"} 100.0\n",
    ] {
        assert!(
            prometheus.contains(series),
            "{series} missing:\n{prometheus}"
        );
    }
}
