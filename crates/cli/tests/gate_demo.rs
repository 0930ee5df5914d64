#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `gatehouse demo` serves the release gate: its seeded releases have verdicts, evidence can be
//! attached with the printed people's tokens, and the gate metrics answer (no 503).

mod common;

use common::{bin, fixture, http, start_demo};
use serde_json::Value;

#[test]
fn the_demo_serves_the_release_gate() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("demo");
    let (server, banner) = start_demo(&data);
    let admin = banner["token"].as_str().unwrap();
    let alice = banner["people"]["alice"].as_str().unwrap();
    assert!(banner["people"]["bob"].is_string() && banner["people"]["carol"].is_string());

    let list: Value = http()
        .get(server.url("/api/v1/releases"))
        .bearer_auth(admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let release = list["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "payments")
        .unwrap();
    let id = release["id"].as_str().unwrap();

    // The verdict answers, naming what the example pack's class still needs.
    let response = http()
        .get(server.url(&format!("/api/v1/releases/{id}/verdict")))
        .bearer_auth(admin)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let verdict: Value = response.json().unwrap();
    assert_eq!(verdict["class"], "normal");
    assert!(
        verdict.to_string().contains("evidence_missing"),
        "{verdict}"
    );

    // Alice (a submitter in the example pack) attaches evidence with her printed token.
    let output = bin()
        .args([
            "evidence",
            "add",
            id,
            "--kind",
            "sarif",
            fixture("evidence/sarif_with_error.sarif").to_str().unwrap(),
        ])
        .env("GATEHOUSE_SERVER", &server.url)
        .env("GATEHOUSE_TOKEN", alice)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("attached as ev-1"));

    let metrics = http()
        .get(server.url("/api/v1/metrics/gate"))
        .bearer_auth(admin)
        .send()
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics: Value = metrics.json().unwrap();
    assert!(
        metrics["metrics"]["releases"].as_u64().unwrap() >= 3,
        "{metrics}"
    );
    assert!(
        metrics["metrics"]["emergency_releases"].as_u64().unwrap() >= 1,
        "{metrics}"
    );
}
