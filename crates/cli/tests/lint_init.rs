//! End-to-end tests of the offline pack commands: `init`, `lint`, `schema`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;

use common::{fixture, init_pack, run};
use serde_json::Value;

#[test]
fn init_then_lint_is_clean() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("x");
    init_pack(&dir);
    let out = run(&["lint", dir.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("0 errors"), "{}", out.stdout);
}

#[test]
fn init_refuses_to_overwrite_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("x");
    init_pack(&dir);
    let some_file = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .unwrap();
    fs::write(&some_file, "# my own edits\n").unwrap();

    let out = run(&["init", dir.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(fs::read_to_string(&some_file).unwrap(), "# my own edits\n");

    let out = run(&["init", dir.to_str().unwrap(), "--force"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_ne!(fs::read_to_string(&some_file).unwrap(), "# my own edits\n");
}

#[test]
fn lint_reports_findings_with_exit_1_in_every_format() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("x");
    init_pack(&dir);
    fs::copy(
        fixture("packs/unknown_key.yaml"),
        dir.join("unknown_key.yaml"),
    )
    .unwrap();
    let dir = dir.to_str().unwrap();

    let text = run(&["lint", dir]);
    assert_eq!(text.code(), 1, "{text:?}");
    assert!(
        text.stdout.contains("unknown_key.yaml:5:1"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains('^'),
        "snippet with caret: {}",
        text.stdout
    );

    let json = run(&["lint", dir, "--format", "json"]);
    assert_eq!(json.code(), 1);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(report["errors"].as_u64().unwrap() >= 1);
    let first = &report["diagnostics"][0];
    assert!(
        first["file"]
            .as_str()
            .unwrap()
            .ends_with("unknown_key.yaml")
    );
    assert_eq!(first["line"], 5);
    assert_eq!(first["column"], 1);

    let sarif = run(&["lint", dir, "--format", "sarif"]);
    assert_eq!(sarif.code(), 1);
    let log: Value = serde_json::from_str(&sarif.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let result = &log["runs"][0]["results"][0];
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        5
    );
}

#[test]
fn lint_of_a_missing_folder_is_an_error_exit_2() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("nope");
    let out = run(&["lint", missing.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
}

#[test]
fn schema_prints_a_json_schema() {
    let out = run(&["schema"]);
    assert_eq!(out.code(), 0);
    let schema: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        schema["$schema"]
            .as_str()
            .unwrap()
            .contains("json-schema.org")
    );
}
