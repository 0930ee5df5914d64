#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `evidence inspect` behaviour (shared by `gatehouse evidence inspect`): the JSON keys the
//! issue promises, and exit codes 0 / 1 (invalid input, with location) / 2 (I/O).

use std::path::{Path, PathBuf};

use gatehouse_evidence::report::{InspectFormat, inspect_file};
use gatehouse_evidence::{EvidenceKind, Limits};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn json_of(kind: &str, path: &str) -> serde_json::Value {
    let outcome = inspect_file(
        &fixture(path),
        &kind.parse::<EvidenceKind>().unwrap(),
        &[],
        &Limits::default(),
        InspectFormat::Json,
    );
    assert_eq!(outcome.exit_code, 0, "{}", outcome.stderr);
    serde_json::from_str(&outcome.stdout).unwrap()
}

#[test]
fn json_output_has_the_documented_keys_per_kind() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "sarif",
            "sarif/level_defaulting.sarif",
            &["runs", "total_results", "by_level", "suppressed"],
        ),
        (
            "cyclonedx",
            "cyclonedx/nested_components.json",
            &[
                "spec_version",
                "components",
                "vulnerabilities",
                "by_severity",
            ],
        ),
        (
            "spdx",
            "spdx/packages_2_3.spdx.json",
            &["spdx_version", "packages", "relationships"],
        ),
        (
            "openvex",
            "openvex/v0_2_0.openvex.json",
            &["statements", "by_status"],
        ),
        (
            "junit",
            "junit/pytest_single_suite.xml",
            &["tests", "failures", "errors", "skipped"],
        ),
        (
            "in-toto",
            "intoto/slsa_v1_statement.json",
            &["payload_type", "predicate_type", "subjects"],
        ),
    ];
    for (kind, path, keys) in cases {
        let json = json_of(kind, path);
        assert_eq!(json["kind"], *kind);
        assert_eq!(json["sha256"].as_str().unwrap().len(), 64);
        for key in *keys {
            assert!(json.get(*key).is_some(), "{kind}: missing {key} in {json}");
        }
    }
    let sarif = json_of("sarif", "sarif/level_defaulting.sarif");
    for level in ["error", "warning", "note", "none"] {
        assert!(sarif["by_level"][level].is_u64(), "by_level.{level}");
    }
    let in_toto = json_of("in-toto", "intoto/slsa_v1_statement.json");
    assert_eq!(in_toto["subjects"][0]["name"], "gatehouse-linux-amd64");
    assert!(in_toto["subjects"][0]["sha256"].is_string());
}

#[test]
fn invalid_input_exits_1_naming_file_and_location() {
    let path = fixture("sarif/trailing_comma.sarif");
    let outcome = inspect_file(
        &path,
        &EvidenceKind::Sarif,
        &[],
        &Limits::default(),
        InspectFormat::Text,
    );
    assert_eq!(outcome.exit_code, 1);
    assert!(
        outcome.stderr.contains("trailing_comma.sarif"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("line 4 column"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stdout.is_empty());
}

#[test]
fn wrong_kind_and_size_limit_exit_1() {
    let outcome = inspect_file(
        &fixture("junit/pytest_single_suite.xml"),
        &EvidenceKind::CycloneDx,
        &[],
        &Limits::default(),
        InspectFormat::Text,
    );
    assert_eq!(outcome.exit_code, 1, "{}", outcome.stderr);
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    let outcome = inspect_file(
        &fixture("junit/pytest_single_suite.xml"),
        &EvidenceKind::Junit,
        &[],
        &limits,
        InspectFormat::Text,
    );
    assert_eq!(outcome.exit_code, 1);
    assert!(
        outcome.stderr.contains("max_bytes = 10"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn missing_file_or_key_exits_2() {
    let outcome = inspect_file(
        Path::new("/nonexistent/evidence.sarif"),
        &EvidenceKind::Sarif,
        &[],
        &Limits::default(),
        InspectFormat::Text,
    );
    assert_eq!(outcome.exit_code, 2);
    let outcome = inspect_file(
        &fixture("intoto/slsa_v1_statement.json"),
        &EvidenceKind::InToto,
        &[Path::new("/nonexistent/key.pem")],
        &Limits::default(),
        InspectFormat::Text,
    );
    assert_eq!(outcome.exit_code, 2);
}

#[test]
fn text_output_summarises_the_facts() {
    let outcome = inspect_file(
        &fixture("junit/nested_suites_disagreeing_attributes.xml"),
        &EvidenceKind::Junit,
        &[],
        &Limits::default(),
        InspectFormat::Text,
    );
    assert_eq!(outcome.exit_code, 0);
    assert!(
        outcome
            .stdout
            .contains("tests:         7 (passed 3, failures 1, errors 2, skipped 1)"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("suite attributes say tests 9"),
        "{}",
        outcome.stdout
    );
}
