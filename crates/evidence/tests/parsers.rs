#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Parser behaviour on small, hand-written fixtures: one per case, named for what it proves.

use std::path::PathBuf;

use gatehouse_evidence::{EvidenceError, EvidenceKind, Facts, Limits, Location, Parsed, parse};
use sha2::{Digest, Sha256};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn parse_fixture(kind: &str, path: &str) -> Result<Parsed, EvidenceError> {
    let kind: EvidenceKind = kind.parse().unwrap();
    let file = std::fs::File::open(fixture(path)).unwrap();
    parse(&kind, file, &Limits::default())
}

fn sarif(path: &str) -> gatehouse_evidence::SarifFacts {
    match parse_fixture("sarif", path).unwrap().facts {
        Facts::Sarif(facts) => facts,
        other => panic!("not SARIF facts: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// SARIF

#[test]
fn sarif_levels_follow_the_defaulting_rules() {
    let facts = sarif("sarif/level_defaulting.sarif");
    assert_eq!(facts.runs, 1);
    assert_eq!(facts.total_results, 13);
    // error: explicit R1, R2 by id, R2 kind=fail, EXT1, R4 override, R5 default, R5 explicit ×2
    // note: R1 by index; none: R3 prefix, kind=pass; warning: R4 no default, unknown rule.
    assert_eq!(facts.by_level.error, 8, "{facts:#?}");
    assert_eq!(facts.by_level.note, 1);
    assert_eq!(facts.by_level.none, 2);
    assert_eq!(facts.by_level.warning, 2);
    assert_eq!(facts.level_sources.explicit, 3);
    assert_eq!(facts.level_sources.kind, 1);
    assert_eq!(facts.level_sources.invocation_override, 1);
    assert_eq!(facts.level_sources.rule_default, 6);
    assert_eq!(facts.level_sources.default_warning, 2);
    assert_eq!(facts.tools, vec!["DefaultingFixture".to_string()]);
}

#[test]
fn sarif_suppressions_count_only_when_accepted() {
    let facts = sarif("sarif/level_defaulting.sarif");
    // One accepted (absent status), one under review, one empty array.
    assert_eq!(facts.with_suppressions, 2);
    assert_eq!(facts.suppressed, 1);
    assert_eq!(facts.unsuppressed_by_level.error, facts.by_level.error - 1);
    assert_eq!(facts.baseline_state.get("new"), Some(&1));
    assert_eq!(facts.baseline_state.get("unchanged"), Some(&1));
}

#[test]
fn sarif_security_severity_comes_from_the_result_else_the_rule() {
    let facts = sarif("sarif/level_defaulting.sarif");
    // Two R5 results inherit 9.1 from the rule; the third carries its own 5.0.
    assert_eq!(facts.by_security_severity.critical, 2);
    assert_eq!(facts.by_security_severity.medium, 1);
    assert_eq!(facts.by_security_severity.unscored, 10);
    assert_eq!(facts.rule_ids.get("R5"), Some(&3));
    assert_eq!(facts.rule_ids.get("EXT1"), Some(&1));
}

#[test]
fn sarif_2_0_rule_dictionaries_and_legacy_levels() {
    let facts = sarif("sarif/legacy_v2_0_0.sarif");
    assert_eq!(facts.sarif_version.as_deref(), Some("2.0.0"));
    assert_eq!(facts.by_level.error, 1);
    assert_eq!(facts.by_level.note, 1);
    assert_eq!(facts.by_level.none, 2);
    assert_eq!(
        facts.suppressed, 1,
        "non-empty suppressionStates suppresses"
    );
    assert_eq!(facts.tools, vec!["LegacyScanner".to_string()]);
}

#[test]
fn sarif_null_and_empty_results_are_zero() {
    let facts = sarif("sarif/two_runs_no_results.sarif");
    assert_eq!(facts.runs, 2);
    assert_eq!(facts.total_results, 0);
}

#[test]
fn sarif_with_a_byte_order_mark_parses() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(br#"{"version":"2.1.0","runs":[]}"#);
    let parsed = parse(&EvidenceKind::Sarif, bytes.as_slice(), &Limits::default()).unwrap();
    assert_eq!(parsed.size_bytes, bytes.len() as u64);
}

#[test]
fn truncated_sarif_is_a_syntax_error_with_line_and_column() {
    let err = parse_fixture("sarif", "sarif/truncated.sarif").unwrap_err();
    match &err {
        EvidenceError::Syntax {
            location: Location::LineColumn { line, .. },
            ..
        } => assert!(*line > 5),
        other => panic!("expected a located syntax error, got {other:?}"),
    }
    assert!(err.to_string().contains("line"), "{err}");
}

#[test]
fn sarif_trailing_comma_is_rejected_at_its_position() {
    let err = parse_fixture("sarif", "sarif/trailing_comma.sarif").unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Syntax {
                location: Location::LineColumn { line: 4, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sarif_unknown_level_is_invalid_not_guessed() {
    let err = parse_fixture("sarif", "sarif/unknown_level.sarif").unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Invalid {
                location: Location::LineColumn { line: 5, .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("unknown SARIF level"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// CycloneDX

fn cyclonedx(path: &str) -> gatehouse_evidence::CycloneDxFacts {
    match parse_fixture("cyclonedx", path).unwrap().facts {
        Facts::CycloneDx(facts) => facts,
        other => panic!("not CycloneDX facts: {other:?}"),
    }
}

#[test]
fn cyclonedx_json_counts_nested_components_and_highest_severity() {
    let facts = cyclonedx("cyclonedx/nested_components.json");
    assert_eq!(facts.spec_version.as_deref(), Some("1.6"));
    assert_eq!(facts.components, 5);
    assert_eq!(facts.components_top_level, 2);
    assert_eq!(facts.components_max_depth, 3);
    assert!(facts.metadata_component_present);
    assert_eq!(facts.services, 1);
    assert_eq!(facts.dependencies, 2);
    assert_eq!(facts.vulnerabilities, 4);
    assert_eq!(
        facts.by_severity.critical, 1,
        "medium+critical+unknown → critical"
    );
    assert_eq!(facts.by_severity.low, 1);
    assert_eq!(facts.by_severity.unknown, 1, "a rating without severity");
    assert_eq!(facts.by_severity.no_ratings, 1);
    assert_eq!(facts.by_analysis_state.get("not_affected"), Some(&1));
    assert_eq!(
        facts.vulnerability_list[0].affects,
        vec!["inner".to_string()]
    );
    assert!(facts.problems.is_empty());
}

#[test]
fn cyclonedx_xml_reads_the_same_facts_as_json() {
    let facts = cyclonedx("cyclonedx/nested_components.xml");
    assert_eq!(facts.serialization, "xml");
    assert_eq!(facts.spec_version.as_deref(), Some("1.5"));
    assert_eq!(facts.components, 5, "metadata/component is not counted");
    assert_eq!(facts.components_top_level, 2);
    assert_eq!(facts.components_max_depth, 3);
    assert!(facts.metadata_component_present);
    assert_eq!(
        facts.dependencies, 2,
        "nested dependency elements are not entries"
    );
    assert_eq!(facts.vulnerabilities, 3);
    assert_eq!(facts.by_severity.critical, 1);
    assert_eq!(facts.by_severity.low, 1);
    assert_eq!(facts.by_severity.no_ratings, 1);
    assert_eq!(
        facts.vulnerability_list[0].id.as_deref(),
        Some("CVE-2026-0001")
    );
    assert_eq!(
        facts.vulnerability_list[0].analysis_state.as_deref(),
        Some("exploitable")
    );
    assert_eq!(
        facts.vulnerability_list[0].affects,
        vec!["inner".to_string()]
    );
}

#[test]
fn cyclonedx_xxe_entity_is_refused_and_never_resolved() {
    let err = parse_fixture("cyclonedx", "cyclonedx/xxe_external_entity.xml").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("entity declarations are refused"),
        "{message}"
    );
    assert!(
        !message.contains("root:"),
        "the entity must not be expanded: {message}"
    );
}

#[test]
fn cyclonedx_undeclared_entity_is_an_error_at_its_path() {
    let err = parse_fixture("cyclonedx", "cyclonedx/undeclared_entity.xml").unwrap_err();
    match &err {
        EvidenceError::Invalid {
            location: Location::Xml { path, .. },
            message,
            ..
        } => {
            assert_eq!(path, "/bom/vulnerabilities/vulnerability/id");
            assert!(message.contains("&secret;"), "{message}");
        }
        other => panic!("expected an XML-located error, got {other:?}"),
    }
}

#[test]
fn truncated_cyclonedx_json_and_xml_are_syntax_errors() {
    for path in ["cyclonedx/truncated.json", "cyclonedx/truncated.xml"] {
        let err = parse_fixture("cyclonedx", path).unwrap_err();
        assert!(
            matches!(err, EvidenceError::Syntax { .. }),
            "{path}: {err:?}"
        );
        assert!(err.location().is_some(), "{path}: {err}");
    }
}

#[test]
fn cyclonedx_components_of_the_wrong_type_are_invalid_with_location() {
    let err = parse_fixture("cyclonedx", "cyclonedx/components_not_an_array.json").unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Invalid {
                location: Location::LineColumn { line: 4, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn cyclonedx_malformed_timestamp_is_reported_as_a_problem() {
    let facts = cyclonedx("cyclonedx/bad_timestamp.json");
    assert_eq!(facts.problems.len(), 1);
    assert!(facts.problems[0].contains("yesterday"));
}

// ---------------------------------------------------------------------------------------------
// SPDX

fn spdx(path: &str) -> gatehouse_evidence::SpdxFacts {
    match parse_fixture("spdx", path).unwrap().facts {
        Facts::Spdx(facts) => facts,
        other => panic!("not SPDX facts: {other:?}"),
    }
}

#[test]
fn spdx_json_counts_packages_relationships_and_licenses() {
    let facts = spdx("spdx/packages_2_3.spdx.json");
    assert_eq!(facts.spdx_version.as_deref(), Some("SPDX-2.3"));
    assert_eq!(facts.packages, 3);
    assert_eq!(facts.relationships, 3);
    assert_eq!(facts.files, 2);
    assert_eq!(facts.document_describes, 1);
    assert_eq!(facts.package_has_files, 2);
    assert_eq!(facts.relationship_types.get("DEPENDS_ON"), Some(&2));
    assert_eq!(facts.licenses_declared.get("MIT"), Some(&2));
    assert_eq!(facts.licenses_concluded.get("NOASSERTION"), Some(&1));
}

#[test]
fn spdx_tag_value_ignores_tags_inside_text_blocks() {
    let facts = spdx("spdx/tag_value_with_text_block.spdx");
    assert_eq!(facts.serialization, "tag-value");
    assert_eq!(facts.spdx_version.as_deref(), Some("SPDX-2.2"));
    assert_eq!(facts.packages, 2);
    assert_eq!(facts.relationships, 2);
    assert_eq!(facts.licenses_declared.get("(MIT OR Apache-2.0)"), Some(&1));
}

#[test]
fn spdx3_json_ld_counts_packages_and_relationship_subtypes() {
    let facts = spdx("spdx/spdx3.jsonld");
    assert_eq!(facts.serialization, "json-ld");
    assert_eq!(facts.spdx_version.as_deref(), Some("SPDX-3.0.1"));
    assert_eq!(facts.packages, 2);
    assert_eq!(facts.relationships, 2);
    assert_eq!(facts.files, 1);
    assert_eq!(facts.licenses_declared.get("MIT"), Some(&1));
}

#[test]
fn truncated_spdx_is_a_syntax_error() {
    let err = parse_fixture("spdx", "spdx/truncated.spdx.json").unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Syntax {
                location: Location::LineColumn { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// OpenVEX

fn openvex(path: &str) -> gatehouse_evidence::OpenVexFacts {
    match parse_fixture("openvex", path).unwrap().facts {
        Facts::OpenVex(facts) => facts,
        other => panic!("not OpenVEX facts: {other:?}"),
    }
}

#[test]
fn openvex_v0_2_0_statements_by_status_with_products() {
    let facts = openvex("openvex/v0_2_0.openvex.json");
    assert_eq!(facts.openvex_version.as_deref(), Some("v0.2.0"));
    assert_eq!(facts.document_version.as_deref(), Some("2"));
    assert_eq!(facts.statements, 4);
    for status in ["not_affected", "affected", "fixed", "under_investigation"] {
        assert_eq!(facts.by_status.get(status), Some(&1), "{status}");
    }
    assert_eq!(facts.product_entries, 4);
    let first = &facts.statement_list[0];
    assert_eq!(first.vulnerability.as_deref(), Some("CVE-2026-0001"));
    assert_eq!(first.aliases, vec!["GHSA-aaaa-bbbb-cccc".to_string()]);
    assert_eq!(first.products, vec!["pkg:oci/app@sha256%3Aabc".to_string()]);
    assert_eq!(
        first.justification.as_deref(),
        Some("vulnerable_code_not_in_execute_path")
    );
    assert_eq!(
        facts.statement_list[2].vulnerability.as_deref(),
        Some("https://nvd.example/CVE-2026-0003"),
        "an unnamed vulnerability is identified by its @id"
    );
}

#[test]
fn openvex_legacy_strings_for_vulnerability_and_products() {
    let facts = openvex("openvex/legacy_v0_0_1.openvex.json");
    assert_eq!(
        facts.openvex_version.as_deref(),
        Some("unversioned (legacy)")
    );
    assert_eq!(
        facts.statement_list[0].vulnerability.as_deref(),
        Some("CVE-2023-1111")
    );
    assert_eq!(facts.statement_list[0].products.len(), 2);
    assert_eq!(facts.by_status.get("fixed"), Some(&1));
}

#[test]
fn truncated_openvex_is_a_syntax_error() {
    let err = parse_fixture("openvex", "openvex/truncated.openvex.json").unwrap_err();
    assert!(matches!(err, EvidenceError::Syntax { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// JUnit

fn junit(path: &str) -> gatehouse_evidence::JunitFacts {
    match parse_fixture("junit", path).unwrap().facts {
        Facts::Junit(facts) => facts,
        other => panic!("not JUnit facts: {other:?}"),
    }
}

#[test]
fn junit_nested_suites_count_each_testcase_once() {
    let facts = junit("junit/nested_suites_disagreeing_attributes.xml");
    assert_eq!(facts.tests, 7);
    assert_eq!(facts.failures, 1);
    assert_eq!(
        facts.errors, 2,
        "error wins over failure in the same testcase"
    );
    assert_eq!(facts.skipped, 1);
    assert_eq!(facts.passed, 3, "flakyFailure does not fail a test");
    assert_eq!(facts.testsuites, 3);
    assert!(facts.nested_testsuites);
    assert_eq!(
        facts.suite_attribute_totals.tests, 9,
        "innermost suites only"
    );
    assert!(!facts.attributes_agree);
    assert_eq!(facts.failed_testcases.len(), 3);
    assert_eq!(
        facts.failed_testcases[0].message.as_deref(),
        Some("expected 1 got 2")
    );
}

#[test]
fn junit_single_suite_root() {
    let facts = junit("junit/pytest_single_suite.xml");
    assert_eq!(
        (facts.tests, facts.failures, facts.errors, facts.skipped),
        (3, 1, 0, 1)
    );
    assert_eq!(facts.root_element, "testsuite");
    assert!(facts.attributes_agree);
}

#[test]
fn junit_xxe_and_entity_expansion_are_refused() {
    for path in ["junit/xxe_external_entity.xml", "junit/billion_laughs.xml"] {
        let err = parse_fixture("junit", path).unwrap_err();
        assert!(
            err.to_string().contains("entity declarations are refused"),
            "{path}: {err}"
        );
    }
}

#[test]
fn truncated_and_mismatched_xml_are_syntax_errors_with_path() {
    let err = parse_fixture("junit", "junit/truncated.xml").unwrap_err();
    match &err {
        EvidenceError::Syntax {
            location: Location::Xml { path, .. },
            ..
        } => {
            assert!(path.starts_with("/testsuites/testsuite"), "{path}")
        }
        other => panic!("expected an XML syntax error, got {other:?}"),
    }
    let err = parse_fixture("junit", "junit/mismatched_end_tag.xml").unwrap_err();
    assert!(matches!(err, EvidenceError::Syntax { .. }), "{err:?}");
}

#[test]
fn xml_nesting_beyond_the_limit_is_refused() {
    let deep = format!(
        "<testsuites>{}{}</testsuites>",
        "<testsuite>".repeat(50),
        "</testsuite>".repeat(50)
    );
    let limits = Limits {
        max_xml_depth: 20,
        ..Limits::default()
    };
    let err = parse(&EvidenceKind::Junit, deep.as_bytes(), &limits).unwrap_err();
    assert!(err.to_string().contains("max_xml_depth = 20"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Wrong kind, limits, digests

#[test]
fn a_file_of_the_wrong_kind_is_named_as_such() {
    let err = parse_fixture("sarif", "cyclonedx/nested_components.json").unwrap_err();
    assert!(matches!(err, EvidenceError::WrongKind { .. }), "{err:?}");
    assert!(err.to_string().contains("CycloneDX"), "{err}");

    let err = parse_fixture("cyclonedx", "sarif/level_defaulting.sarif").unwrap_err();
    assert!(matches!(err, EvidenceError::WrongKind { .. }), "{err:?}");

    let err = parse_fixture("junit", "cyclonedx/nested_components.xml").unwrap_err();
    assert!(err.to_string().contains("<bom>"), "{err}");

    let err = parse_fixture("openvex", "spdx/packages_2_3.spdx.json").unwrap_err();
    assert!(matches!(err, EvidenceError::WrongKind { .. }), "{err:?}");

    let err = parse_fixture("spdx", "junit/pytest_single_suite.xml").unwrap_err();
    assert!(matches!(err, EvidenceError::WrongKind { .. }), "{err:?}");

    let err = parse_fixture("in-toto", "sarif/level_defaulting.sarif").unwrap_err();
    assert!(matches!(err, EvidenceError::WrongKind { .. }), "{err:?}");
}

#[test]
fn input_above_the_size_limit_is_refused_naming_the_limit() {
    let bytes = std::fs::read(fixture("sarif/level_defaulting.sarif")).unwrap();
    let limits = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    let err = parse(&EvidenceKind::Sarif, bytes.as_slice(), &limits).unwrap_err();
    assert!(
        matches!(err, EvidenceError::TooLarge { limit: 1000 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_bytes = 1000"), "{err}");

    // Exactly at the limit passes.
    let limits = Limits {
        max_bytes: bytes.len() as u64,
        ..Limits::default()
    };
    assert!(parse(&EvidenceKind::Sarif, bytes.as_slice(), &limits).is_ok());
}

#[test]
fn the_digest_covers_every_byte_including_trailing_whitespace() {
    let mut bytes = std::fs::read(fixture("openvex/legacy_v0_0_1.openvex.json")).unwrap();
    bytes.extend_from_slice(b"\n\n   \n");
    let parsed = parse(&EvidenceKind::OpenVex, bytes.as_slice(), &Limits::default()).unwrap();
    assert_eq!(parsed.size_bytes, bytes.len() as u64);
    let expected: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(parsed.sha256, expected);
}

#[test]
fn trailing_garbage_after_a_json_document_is_rejected() {
    let bytes = br#"{"version":"2.1.0","runs":[]} {"second":1}"#;
    let err = parse(&EvidenceKind::Sarif, bytes.as_slice(), &Limits::default()).unwrap_err();
    assert!(matches!(err, EvidenceError::Syntax { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Documents

#[test]
fn documents_record_media_type_and_links() {
    let parsed = parse_fixture("threat-model", "document/threat_model.md").unwrap();
    let Facts::Document(facts) = &parsed.facts else {
        panic!("{parsed:?}")
    };
    assert_eq!(facts.media_type, "text/markdown");
    assert_eq!(facts.document_kind, "threat-model");
    assert!(facts.link.is_none());

    let parsed = parse_fixture("ci-run", "document/ci_run_link.txt").unwrap();
    let Facts::Document(facts) = &parsed.facts else {
        panic!("{parsed:?}")
    };
    assert_eq!(facts.media_type, "text/uri-list");
    assert_eq!(
        facts.link.as_deref(),
        Some("https://ci.example.invalid/runs/12345")
    );

    let err = parse_fixture("rollback-plan", "document/empty.md").unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn pack_declared_document_kinds_parse_as_documents() {
    let kind = EvidenceKind::declared_document("pentest-report");
    let parsed = parse(&kind, &b"%PDF-1.7\n..."[..], &Limits::default()).unwrap();
    let Facts::Document(facts) = &parsed.facts else {
        panic!("{parsed:?}")
    };
    assert_eq!(facts.document_kind, "pentest-report");
    assert_eq!(facts.media_type, "application/pdf");
    assert!(
        "pentest-report".parse::<EvidenceKind>().is_err(),
        "typos must not become documents"
    );
}

#[test]
fn xml_with_two_root_elements_is_malformed() {
    let xml = b"<testsuite name=\"a\"><testcase name=\"x\"/></testsuite><testsuite name=\"b\"/>";
    let err = parse(&EvidenceKind::Junit, &xml[..], &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("second root element"), "{err}");
}

#[test]
fn sarif_2_2_draft_logs_parse() {
    let log = br#"{"version":"2.2","$schema":"https://raw.githubusercontent.com/oasis-tcs/sarif-spec/main/sarif-2.2/schema/sarif-2-2.schema.json",
        "runs":[{"tool":{"driver":{"name":"Draft","rules":[{"id":"D1","defaultConfiguration":{"level":"error"}}]}},
                 "results":[{"ruleId":"D1","message":{"text":"x"}}]}]}"#;
    let parsed = parse(&EvidenceKind::Sarif, &log[..], &Limits::default()).unwrap();
    let Facts::Sarif(facts) = parsed.facts else {
        panic!()
    };
    assert_eq!(facts.sarif_version.as_deref(), Some("2.2"));
    assert_eq!(facts.by_level.error, 1);
}

/// A log with `count` distinct rules, the tool first, then one result per rule without a level.
fn many_rules_log(count: usize) -> String {
    let rules: Vec<String> = (0..count)
        .map(|i| {
            let level = ["error", "note"][i % 2];
            format!(r#"{{"id":"R{i}","defaultConfiguration":{{"level":"{level}"}}}}"#)
        })
        .collect();
    let results: Vec<String> = (0..count)
        .map(|i| format!(r#"{{"ruleId":"R{i}","message":{{"text":"m"}}}}"#))
        .collect();
    format!(
        r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"T","rules":[{}]}}}},"results":[{}]}}]}}"#,
        rules.join(","),
        results.join(",")
    )
}

#[test]
fn sarif_result_groups_are_accounted_early_once_rules_are_known() {
    let log = many_rules_log(50);
    let unbounded = parse(&EvidenceKind::Sarif, log.as_bytes(), &Limits::default()).unwrap();
    let tight = Limits {
        max_pending_result_groups: 5,
        ..Limits::default()
    };
    let bounded = parse(&EvidenceKind::Sarif, log.as_bytes(), &tight).unwrap();
    assert_eq!(
        unbounded.facts, bounded.facts,
        "early accounting must not change the facts"
    );
    let Facts::Sarif(facts) = bounded.facts else {
        panic!()
    };
    assert_eq!((facts.by_level.error, facts.by_level.note), (25, 25));
    assert_eq!(facts.rule_ids.len(), 50);
}

#[test]
fn sarif_results_flooding_before_their_rules_hit_a_named_limit() {
    // level_defaulting.sarif puts its results before the tool, so nothing can be accounted early.
    let bytes = std::fs::read(fixture("sarif/level_defaulting.sarif")).unwrap();
    let tight = Limits {
        max_pending_result_groups: 4,
        ..Limits::default()
    };
    let err = parse(&EvidenceKind::Sarif, bytes.as_slice(), &tight).unwrap_err();
    assert!(
        matches!(err, EvidenceError::LimitExceeded { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("max_pending_result_groups = 4"),
        "{err}"
    );
    assert!(err.location().is_some());
}

#[test]
fn junit_suite_attributes_without_testcases_are_flagged_not_trusted() {
    let facts = junit("junit/suite_attributes_without_testcases.xml");
    assert_eq!(facts.tests, 0);
    assert_eq!(facts.suite_attribute_totals.failures, 3);
    assert!(facts.testcases_absent_but_attributes_count_tests);
    assert!(!junit("junit/pytest_single_suite.xml").testcases_absent_but_attributes_count_tests);
}
