//! End-to-end: the pack's rule folders and event sources on the real binary. `gatehouse init`
//! writes the example pack (rules/ and telemetry.yaml); `serve --pack` runs its rules with no
//! `--rules`; `hunt --pack` and `rules check --pack` read the same rules and mappings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Server, bootstrap_token, eventually, fixture, init_pack, run};
use serde_json::Value;

const LINUX_RULE: &str = "0b7e3c2a-4f1d-4c55-9a3e-7d1f2b6a9c01";
const CERTUTIL_RULE: &str = "5c1a9e7d-3b2f-4e8a-b6d4-2f9c8a1e0d42";

fn ingest(server: &Server, token: &str, file: &Path, source: &str) -> Value {
    let out = run(&[
        "ingest",
        file.to_str().unwrap(),
        "--source",
        source,
        "--format",
        "json",
        "--server",
        &server.url,
        "--token",
        token,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn serve_runs_the_pack_rules_with_its_mappings_and_windows_defaults() {
    let temp = tempfile::tempdir().unwrap();
    let pack = temp.path().join("pack");
    let data = temp.path().join("data");
    init_pack(&pack);
    std::fs::copy(
        fixture("event_sources/alert_on_linux_whoami.yaml"),
        pack.join("alert-on-linux-whoami.yaml"),
    )
    .unwrap();
    let token = bootstrap_token(&data);
    let server = Server::start(&[
        "serve",
        "--pack",
        pack.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);

    // Both Windows JSON shapes (`#attributes` + Data list, `*_attributes` + named children)
    // match through the built-in mapping; the third event (no -urlcache) does not.
    let win = ingest(
        &server,
        &token,
        &fixture("event_sources/windows_certutil_two_shapes.ndjson"),
        "windows",
    );
    assert_eq!(win["accepted"], 3, "{win}");
    // The linux events match only through the declared source's field mapping (proc.exe →
    // Image): sent under `linux-process`, both lines are that source's.
    let lnx = ingest(
        &server,
        &token,
        &fixture("event_sources/linux_process_whoami.ndjson"),
        "linux-process",
    );
    assert_eq!(lnx["accepted"], 2, "{lnx}");
    // Sent under another name, only the line the source recognises by content is mapped.
    let other = ingest(
        &server,
        &token,
        &fixture("event_sources/linux_process_whoami.ndjson"),
        "misc",
    );
    assert_eq!(other["accepted"], 2, "{other}");

    let found = eventually(Duration::from_secs(30), "five signals", || {
        let out = run(&[
            "signals",
            "list",
            "--format",
            "json",
            "--server",
            &server.url,
            "--token",
            &token,
        ]);
        let list: Value = serde_json::from_str(&out.stdout).ok()?;
        let s = list["signals"].as_array()?.clone();
        (s.len() >= 5).then_some(s)
    });
    let by_rule =
        |rule: &str| -> Vec<&Value> { found.iter().filter(|s| s["rule_id"] == rule).collect() };
    assert_eq!(by_rule(CERTUTIL_RULE).len(), 2, "{found:#?}");
    let linux = by_rule(LINUX_RULE);
    assert_eq!(linux.len(), 3, "{found:#?}");
    assert_eq!(found.len(), 5, "{found:#?}");
    for s in &linux {
        assert_eq!(s["alerts"], serde_json::json!(["SEC-HIGH-001"]), "{s}");
    }
    assert_eq!(
        linux.iter().filter(|s| s["event_source"] == "misc").count(),
        1,
        "{linux:#?}"
    );
}

#[test]
fn hunt_and_rules_check_take_rules_and_mappings_from_the_pack() {
    let temp = tempfile::tempdir().unwrap();
    let pack = temp.path().join("pack");
    init_pack(&pack);
    let events = fixture("event_sources/linux_process_whoami.ndjson");
    let out = run(&[
        "hunt",
        "--pack",
        pack.to_str().unwrap(),
        events.to_str().unwrap(),
        "--format",
        "jsonl",
        "--no-progress",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let rows: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Only line 1 carries agent.type = process-monitor, which attributes it to the source.
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["rule_id"], LINUX_RULE);
    assert_eq!(rows[0]["line"], 1);

    let out = run(&[
        "rules",
        "check",
        "--pack",
        pack.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["total"], 2, "{report}");
    assert_eq!(report["loaded"], 2, "{report}");
}
