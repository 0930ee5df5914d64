//! End-to-end tests of event ingestion and online detection: the real binary serving on
//! loopback with the Sigma rules in `tests/fixtures/ingest/rules`, `gatehouse ingest` and
//! `gatehouse signals list` as clients, and raw HTTP for the body limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Server, bin, bootstrap_token, eventually, fixture, http, init_pack, run};
use serde_json::Value;

const WHOAMI_RULE: &str = "5c2a7a4e-0000-4000-8000-00000000a001";
const FAILED_LOGON_RULE: &str = "5c2a7a4e-0000-4000-8000-00000000a002";

struct Setup {
    _temp: tempfile::TempDir,
    pack: String,
    data: String,
}

fn setup() -> Setup {
    let temp = tempfile::tempdir().unwrap();
    let pack = temp.path().join("pack");
    let data = temp.path().join("data");
    init_pack(&pack);
    Setup {
        pack: pack.to_str().unwrap().to_owned(),
        data: data.to_str().unwrap().to_owned(),
        _temp: temp,
    }
}

fn serve(setup: &Setup, extra: &[&str]) -> Server {
    let rules = fixture("ingest/rules");
    let mut args = vec![
        "serve",
        "--pack",
        &setup.pack,
        "--data-dir",
        &setup.data,
        "--rules",
        rules.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn signals(server: &Server, token: &str) -> Vec<Value> {
    let out = run(&[
        "signals",
        "list",
        "--format",
        "json",
        "--server",
        &server.url,
        "--token",
        token,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    list["signals"].as_array().unwrap().clone()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn ingested_events_are_stored_malformed_lines_reported_and_rules_raise_signals() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    let server = serve(&setup, &[]);
    let file = fixture("ingest/events_with_malformed_line.ndjson");

    let out = run(&[
        "ingest",
        file.to_str().unwrap(),
        "--source",
        "winlog",
        "--format",
        "json",
        "--server",
        &server.url,
        "--token",
        &token,
    ]);
    assert_eq!(out.code(), 1, "a rejected line is a finding: {out:?}");
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["accepted"], 3, "{summary}");
    assert_eq!(summary["rejected"], 1);
    assert_eq!(summary["rejected_lines"][0]["line"], 2);
    assert!(
        summary["rejected_lines"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{summary}"
    );

    let found = eventually(Duration::from_secs(20), "two signals", || {
        let s = signals(&server, &token);
        (s.len() >= 2).then_some(s)
    });
    assert_eq!(found.len(), 2, "notepad.exe raises nothing: {found:?}");
    let whoami = found.iter().find(|s| s["rule_id"] == WHOAMI_RULE).unwrap();
    assert_eq!(whoami["severity"], "high");
    assert_eq!(whoami["event_source"], "winlog");
    assert_eq!(whoami["event_time"], "2026-05-01T10:00:00Z");
    assert!(
        whoami["matched_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "Image" && f["value"] == "C:\\Windows\\System32\\whoami.exe"),
        "{whoami}"
    );
    assert!(whoami["dedup_key"].as_str().is_some_and(|k| !k.is_empty()));
    let logon = found
        .iter()
        .find(|s| s["rule_id"] == FAILED_LOGON_RULE)
        .unwrap();
    assert_eq!(logon["severity"], "medium");
    assert!(logon["event_id"].as_i64().unwrap() > whoami["event_id"].as_i64().unwrap());

    // Text output names the rule; filtering by rule keeps only its signals.
    let text = run(&[
        "signals",
        "list",
        "--rule",
        FAILED_LOGON_RULE,
        "--server",
        &server.url,
        "--token",
        &token,
    ]);
    assert_eq!(text.code(), 0, "{text:?}");
    assert!(
        text.stdout.contains("Failed logon for admin"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains(WHOAMI_RULE), "{}", text.stdout);

    // The same whoami event again: a new signal with the same dedup key.
    let mut child = bin()
        .args([
            "ingest",
            "-",
            "--gzip",
            "--server",
            &server.url,
            "--token",
            &token,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let first_line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(first_line.as_bytes())
        .unwrap();
    let status = child.wait_with_output().unwrap();
    assert!(status.status.success(), "{status:?}");
    let again = eventually(Duration::from_secs(20), "a third signal", || {
        let s = signals(&server, &token);
        (s.len() >= 3).then_some(s)
    });
    assert_eq!(again[2]["rule_id"], WHOAMI_RULE);
    assert_eq!(again[2]["dedup_key"], whoami["dedup_key"]);

    // Ingestion and signal creation are in the audit log.
    let audit: Value = http()
        .get(server.url("/api/v1/audit?limit=1000"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"events.ingest"), "{actions:?}");
    assert!(actions.contains(&"signal.create"), "{actions:?}");
}

#[test]
fn gzip_bodies_are_accepted_and_oversize_bodies_refused_without_storing_anything() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    let server = serve(
        &setup,
        &[
            "--max-ingest-bytes",
            "4096",
            "--max-ingest-decoded-bytes",
            "65536",
        ],
    );
    let client = http();
    let post = |body: Vec<u8>, gzipped: bool, token: Option<&str>| {
        let mut request = client
            .post(server.url("/api/v1/events?source=proxy"))
            .header("content-type", "application/x-ndjson")
            .body(body);
        if gzipped {
            request = request.header("content-encoding", "gzip");
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    };

    let (status, first) = post(
        gzip(b"{\"message\":\"one\"}\n{\"message\":\"two\"}\n"),
        true,
        Some(&token),
    );
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["accepted"], 2);
    assert_eq!(first["source"], "proxy");

    // Larger than the body limit as sent.
    let big = format!("{{\"message\":\"{}\"}}\n", "a".repeat(8192)).into_bytes();
    let (status, error) = post(big, false, Some(&token));
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large");

    // Small when sent, too large once decompressed (a compression bomb).
    let bomb = gzip(format!("{{\"message\":\"{}\"}}\n", "b".repeat(200_000)).as_bytes());
    assert!(bomb.len() < 4096);
    let (status, error) = post(bomb, true, Some(&token));
    assert_eq!(status, 413, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("decompressed"),
        "{error}"
    );

    // Not gzip although it says so.
    let (status, error) = post(b"plain text".to_vec(), true, Some(&token));
    assert_eq!(status, 400, "{error}");

    // Nothing from the refused requests was stored: the next id follows the first batch.
    let (status, next) = post(b"{\"message\":\"three\"}\n".to_vec(), false, Some(&token));
    assert_eq!(status, 200, "{next}");
    assert_eq!(
        next["first_id"].as_i64().unwrap(),
        first["last_id"].as_i64().unwrap() + 1
    );

    // Deny by default: no token, no ingestion. (Checked after the id sequence above: the refusal
    // itself is stored, as a `gatehouse` authentication-failure security event.)
    let (status, _) = post(b"{\"message\":\"x\"}\n".to_vec(), false, None);
    assert_eq!(status, 401);

    // A bad source name is refused before anything is read.
    let response = client
        .post(server.url("/api/v1/events?source=no%20spaces"))
        .bearer_auth(&token)
        .body("{}\n")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}
