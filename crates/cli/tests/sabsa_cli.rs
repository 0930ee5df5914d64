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

/// A pack folder with the example pack's files plus the two extra incident playbooks.
fn example_pack(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sabsa-cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pack/example");
    for entry in std::fs::read_dir(example).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        sabsa_fixture("pack/incident-playbooks.yaml"),
        dir.join("incident-playbooks.yaml"),
    )
    .unwrap();
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

#[test]
fn export_of_the_pack_passes_validate_through_a_pipe() {
    let pack = example_pack("export");
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
    let pack = example_pack("broken");
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
    let pack = example_pack("suspect");
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
}

#[test]
fn trace_shows_relationships_and_unknown_ids_are_usage_errors() {
    let pack = example_pack("trace");
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

    let matrix = gatehouse(&["trace", "--matrix", "--format", "json", "--pack", dir]);
    let report: gatehouse_sabsa::serde_json::Value =
        gatehouse_sabsa::serde_json::from_slice(&matrix.stdout).unwrap();
    assert!(report["rows"].as_array().unwrap().len() >= 8);
    let gaps = report["gaps"].as_array().unwrap();
    assert_eq!(
        matrix.status.code(),
        Some(if gaps.is_empty() { 0 } else { 1 })
    );
}

#[test]
fn backlog_lists_by_score() {
    let pack = example_pack("backlog");
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
