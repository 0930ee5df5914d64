#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End-to-end tests of the SABSA commands through the built binary: exit codes 0 / 1 / 2,
//! export piped into validate, suspect links across an edit of the pack.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .unwrap()
}

fn sabsa_fixture(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sabsa/tests/fixtures")
        .join(path)
        .display()
        .to_string()
}

/// A fresh pack folder written by `gatehouse init`, exactly as a user gets it.
fn init_pack(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sabsa-cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    let init = gatehouse(&["init", dir.to_str().unwrap()]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init.stderr));
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_exit_codes_are_0_clean_1_findings_2_unreadable() {
    let ok = gatehouse(&[
        "validate",
        "sabsa-l6",
        &sabsa_fixture("validate/valid.json"),
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));

    let broken = gatehouse(&[
        "validate",
        "sabsa-l6",
        &sabsa_fixture("validate/hand_broken.json"),
    ]);
    assert_eq!(broken.status.code(), Some(1));
    let out = text(&broken.stdout);
    assert!(
        out.contains("hand_broken.json:17:18: error[L6-05]"),
        "{out}"
    );
    assert!(out.contains("checklist: Incident playbooks cover key compromise"));

    let missing = gatehouse(&["validate", "sabsa-l6", "/nonexistent/l6.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read /nonexistent/l6.json"));
}

#[test]
fn validate_sarif_names_rule_and_region() {
    let out = gatehouse(&[
        "validate",
        "sabsa-l6",
        &sabsa_fixture("validate/missing_section.json"),
        "--format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let sarif: gatehouse_sabsa::serde_json::Value =
        gatehouse_sabsa::serde_json::from_slice(&out.stdout).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "L6-01");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    assert_eq!(result["properties"]["jsonPointer"], "/sections/6-3");
}

/// Issue 6's acceptance: `gatehouse init DIR`, `gatehouse export sabsa-l6 --pack DIR >
/// out.json`, `gatehouse validate sabsa-l6 out.json` exits 0 with every checklist line passed.
#[test]
fn export_of_the_init_pack_passes_validate_from_a_file_and_a_pipe() {
    let pack = init_pack("export");
    let exported = gatehouse(&["export", "sabsa-l6", "--pack", pack.to_str().unwrap()]);
    assert_eq!(
        exported.status.code(),
        Some(0),
        "{}",
        text(&exported.stderr)
    );
    assert!(text(&exported.stderr).contains("SABSA matrix coverage"));
    let again = gatehouse(&["export", "sabsa-l6", "--pack", pack.to_str().unwrap()]);
    assert_eq!(exported.stdout, again.stdout, "export is deterministic");

    let out_json = pack.with_file_name("sabsa-cli-export-out.json");
    std::fs::write(&out_json, &exported.stdout).unwrap();
    let from_file = gatehouse(&["validate", "sabsa-l6", out_json.to_str().unwrap()]);
    let report = text(&from_file.stdout);
    assert_eq!(from_file.status.code(), Some(0), "{report}");
    assert!(!report.contains("error["), "{report}");
    assert!(
        report.contains("0 finding(s); 0 of 12 checklist items failed"),
        "{report}"
    );
    assert!(
        report.contains("Incident playbooks cover key compromise"),
        "the checklist is printed: {report}"
    );

    let json = gatehouse(&[
        "validate",
        "sabsa-l6",
        out_json.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(json.status.code(), Some(0));
    let json: gatehouse_sabsa::serde_json::Value =
        gatehouse_sabsa::serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["valid"], true, "{json}");
    assert_eq!(json["findings"].as_array().unwrap().len(), 0, "{json}");
    let checklist = json["checklist"].as_array().unwrap();
    assert_eq!(checklist.len(), 12);
    assert!(
        checklist.iter().all(|item| item["outcome"] == "passed"),
        "{json}"
    );

    let mut validate = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["validate", "sabsa-l6", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    validate
        .stdin
        .take()
        .unwrap()
        .write_all(&exported.stdout)
        .unwrap();
    let result = validate.wait_with_output().unwrap();
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stdout));
}

#[test]
fn export_refuses_a_pack_with_errors() {
    let pack = init_pack("broken");
    std::fs::write(
        pack.join("broken.yaml"),
        "kind: Alert\nid: BROKEN\nseverity: Catastrophic\n",
    )
    .unwrap();
    let out = gatehouse(&["export", "sabsa-l6", "--pack", pack.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("broken.yaml"),
        "{}",
        text(&out.stderr)
    );
}

fn edit(path: &Path, from: &str, to: &str) {
    let content = std::fs::read_to_string(path).unwrap();
    assert!(content.contains(from));
    std::fs::write(path, content.replace(from, to)).unwrap();
}

#[test]
fn suspect_links_follow_an_edit_until_cleared() {
    let pack = init_pack("suspect");
    let dir = pack.to_str().unwrap();
    let clear = gatehouse(&["trace", "clear", "--all", "--pack", dir]);
    assert_eq!(clear.status.code(), Some(0), "{}", text(&clear.stderr));
    assert!(pack.join("gatehouse.lock").exists());
    assert_eq!(
        gatehouse(&["trace", "--suspect", "--pack", dir])
            .status
            .code(),
        Some(0)
    );

    edit(
        &pack.join("monitoring.yaml"),
        "acknowledge: 5m",
        "acknowledge: 10m",
    );
    let flagged = gatehouse(&["trace", "--suspect", "--pack", dir]);
    assert_eq!(flagged.status.code(), Some(1));
    let out = text(&flagged.stdout);
    assert!(
        out.contains("encryption-key-compromise --derives_from--> KMS-CRIT-001"),
        "{out}"
    );

    for id in [
        "encryption-key-compromise",
        "monitoring-system-health",
        "IMP-003",
    ] {
        assert_eq!(
            gatehouse(&["trace", "clear", id, "--pack", dir])
                .status
                .code(),
            Some(0)
        );
    }
    assert_eq!(
        gatehouse(&["trace", "--suspect", "--pack", dir])
            .status
            .code(),
        Some(0)
    );

    // A control changes: the data breach playbook derived from it is flagged, by name and
    // relationship, until the review is recorded for everything at once.
    edit(
        &pack.join("controls.yaml"),
        "  - ISO 27001 A.10.1\n",
        "  - ISO 27001 A.10.1\n  - ISO 27001:2022 A.8.24\n",
    );
    let flagged = gatehouse(&["trace", "--suspect", "--pack", dir]);
    assert_eq!(flagged.status.code(), Some(1));
    let out = text(&flagged.stdout);
    assert!(
        out.contains("customer-data-breach --derives_from--> CTL-ENC-001"),
        "{out}"
    );
    assert!(!out.contains("access-control-failure"), "{out}");
    let cleared = gatehouse(&["trace", "clear", "--all", "--pack", dir]);
    assert_eq!(cleared.status.code(), Some(0), "{}", text(&cleared.stderr));
    assert_eq!(
        gatehouse(&["trace", "--suspect", "--pack", dir])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn trace_shows_relationships_and_unknown_ids_are_usage_errors() {
    let pack = init_pack("trace");
    let dir = pack.to_str().unwrap();
    let out = gatehouse(&["trace", "KMS-CRIT-001", "--pack", dir]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("KMS-CRIT-001 --monitors--> CTL-ENC-001 (Control)"),
        "{stdout}"
    );
    assert!(stdout.contains("encryption-key-compromise (Playbook) --responds_to--> KMS-CRIT-001"));
    assert_eq!(
        gatehouse(&["trace", "NOPE", "--pack", dir]).status.code(),
        Some(2)
    );

    // The init pack is fully covered: every control implemented, monitored and validated,
    // the alert answered by a playbook, each of the three playbooks tied to a control.
    let matrix = gatehouse(&["trace", "--matrix", "--format", "json", "--pack", dir]);
    let report: gatehouse_sabsa::serde_json::Value =
        gatehouse_sabsa::serde_json::from_slice(&matrix.stdout).unwrap();
    assert_eq!(matrix.status.code(), Some(0), "{report}");
    assert_eq!(report["gaps"].as_array().unwrap().len(), 0, "{report}");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "{report}");
    let satisfied_by = |id: &str| {
        let row = rows.iter().find(|r| r["id"] == id).unwrap();
        row["requirements"][0]["satisfied_by"].clone()
    };
    assert_eq!(
        satisfied_by("customer-data-breach"),
        gatehouse_sabsa::serde_json::json!(["CTL-ENC-001"])
    );
    assert_eq!(
        satisfied_by("access-control-failure"),
        gatehouse_sabsa::serde_json::json!(["CTL-MON-001"])
    );

    // Adding a control nobody implements, monitors or validates makes the matrix fail.
    std::fs::write(
        pack.join("orphan.yaml"),
        "kind: Control\nid: CTL-ORPHAN\ntitle: Orphan\nowner: security-operations\n",
    )
    .unwrap();
    let gapped = gatehouse(&["trace", "--matrix", "--pack", dir]);
    assert_eq!(gapped.status.code(), Some(1));
    let out = text(&gapped.stdout);
    assert!(
        out.contains("Control CTL-ORPHAN is not implemented"),
        "{out}"
    );
}

#[test]
fn backlog_lists_by_score() {
    let pack = init_pack("backlog");
    let out = gatehouse(&[
        "backlog",
        "--format",
        "json",
        "--pack",
        pack.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: gatehouse_sabsa::serde_json::Value =
        gatehouse_sabsa::serde_json::from_slice(&out.stdout).unwrap();
    let scores: Vec<i64> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["priority_score"].as_i64().unwrap())
        .collect();
    assert_eq!(scores, [9, 6, 2]);
    assert_eq!(report["items"][2]["decision"], "deferred");
}
