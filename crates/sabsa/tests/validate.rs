#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bad-input and checklist tests of `validate`, one fixture per case under
//! `tests/fixtures/validate/`.

use std::path::PathBuf;

use gatehouse_sabsa::{Check, Outcome, ReadError, Report, read_document, read_stream, validate};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validate")
        .join(name)
}

fn check(name: &str) -> Report {
    let bytes = read_document(&fixture(name), gatehouse_sabsa::MAX_DOCUMENT_BYTES).unwrap();
    validate(&bytes)
}

fn failed(report: &Report) -> Vec<Check> {
    report
        .outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Failed)
        .map(|(c, _)| *c)
        .collect()
}

fn outcome(report: &Report, check: Check) -> &Outcome {
    &report.outcomes.iter().find(|(c, _)| *c == check).unwrap().1
}

#[test]
fn valid_document_passes_every_checklist_item() {
    let report = check("valid.json");
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.outcomes.len(), 12);
    assert!(report.outcomes.iter().all(|(_, o)| *o == Outcome::Passed));
}

#[test]
fn traceability_arrays_inside_sections_are_accepted() {
    let report = check("traceability_in_sections.json");
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn missing_section_is_reported_at_sections() {
    let report = check("missing_section.json");
    let f = &report.findings[0];
    assert_eq!(f.check, Check::Sections);
    assert_eq!(f.pointer, "/sections/6-3");
    assert!(
        f.message.contains("Incident Response Playbooks"),
        "{}",
        f.message
    );
    assert_eq!((f.line, f.column), (2, 15)); // the `{` of "sections": {
    // The playbook check cannot run without its section, and says so instead of passing.
    assert!(matches!(
        outcome(&report, Check::Playbooks),
        Outcome::NotEvaluated(_)
    ));
}

#[test]
fn duplicate_section_id_is_located_at_the_second_key() {
    let report = check("duplicate_section_id.json");
    let dup: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.message.contains("duplicate section id"))
        .collect();
    assert_eq!(dup.len(), 1, "{:#?}", report.findings);
    assert_eq!(dup[0].check, Check::Sections);
    assert_eq!(dup[0].pointer, "/sections/6-2");
    let src = std::fs::read_to_string(fixture("duplicate_section_id.json")).unwrap();
    let second_line = src
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("\"6-2\""))
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert_eq!(dup[0].line, second_line);
    assert!(dup[0].message.contains("first at"));
}

#[test]
fn unknown_section_id_is_reported() {
    let report = check("unknown_section_id.json");
    assert_eq!(failed(&report), vec![Check::Sections]);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].pointer, "/sections/6-7");
    assert!(
        report.findings[0]
            .message
            .contains("unknown section id `6-7`")
    );
}

#[test]
fn wrong_title_is_reported_with_the_expected_title() {
    let report = check("wrong_title.json");
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    assert_eq!(f.pointer, "/sections/6-5/title");
    assert!(
        f.message.contains("\"Metrics & Reporting\""),
        "{}",
        f.message
    );
}

#[test]
fn wrong_types_are_each_reported_under_their_checklist_line() {
    let report = check("wrong_types.json");
    let by_pointer = |p: &str| {
        report
            .findings
            .iter()
            .find(|f| f.pointer == p && f.message.contains("found"))
            .unwrap_or_else(|| panic!("no finding at {p}: {:#?}", report.findings))
    };
    let title = by_pointer("/sections/6-1/title");
    assert_eq!(title.check, Check::Sections);
    assert!(title.message.contains("found a number"));
    let content = by_pointer("/sections/6-2/content");
    assert_eq!(content.check, Check::Content);
    assert!(content.message.contains("found an array"));
    let why = by_pointer("/sections/6-4/rationale_why");
    assert_eq!(why.check, Check::Rationale);
    assert!(why.message.contains("found null"));
    let trace = by_pointer("/traceability/6-5");
    assert_eq!(trace.check, Check::Traceability);
    assert!(
        trace.message.contains("found an object"),
        "{}",
        trace.message
    );
    assert!(matches!(
        outcome(&report, Check::Runbooks),
        Outcome::NotEvaluated(_)
    ));
}

#[test]
fn sections_as_array_is_a_type_error_with_a_hint() {
    let report = check("sections_as_array.json");
    let f = &report.findings[0];
    assert_eq!(f.pointer, "/sections");
    assert!(f.message.contains("found an array"), "{}", f.message);
    assert!(matches!(
        outcome(&report, Check::Content),
        Outcome::NotEvaluated(_)
    ));
}

#[test]
fn invalid_escaping_is_a_located_json_error() {
    let report = check("invalid_escaping.json");
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    assert_eq!(f.check, Check::Json);
    assert!(f.message.contains("escape"), "{}", f.message);
    let src = std::fs::read_to_string(fixture("invalid_escaping.json")).unwrap();
    let line = src.lines().position(|l| l.contains("4\\q6")).unwrap() + 1;
    assert_eq!(f.line, line);
    // Nothing else is judged on a document that is not JSON, and the output says so.
    assert!(
        report
            .outcomes
            .iter()
            .filter(|(c, _)| *c != Check::Json)
            .all(|(_, o)| matches!(o, Outcome::NotEvaluated(_)))
    );
}

#[test]
fn truncated_document_is_a_located_json_error() {
    let report = check("truncated.json");
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    assert_eq!(f.check, Check::Json);
    assert!(f.message.contains("EOF"), "{}", f.message);
    let src = std::fs::read_to_string(fixture("truncated.json")).unwrap();
    assert_eq!(f.line, src.lines().count());
}

#[test]
fn double_escaped_content_is_a_heuristic_escaping_finding() {
    let report = check("double_escaped_content.json");
    let f = report
        .findings
        .iter()
        .find(|f| f.check == Check::Json)
        .expect("escaping finding");
    assert!(f.heuristic);
    assert_eq!(f.pointer, "/sections/6-4/content");
}

#[test]
fn hand_broken_document_gets_one_located_finding_per_broken_item() {
    let report = check("hand_broken.json");
    let mut expected = vec![
        Check::Monitoring,
        Check::Runbooks,
        Check::Playbooks,
        Check::Metrics,
        Check::Improvement,
        Check::Rationale,
        Check::Traceability,
    ];
    expected.sort();
    let mut got: Vec<Check> = report.findings.iter().map(|f| f.check).collect();
    got.sort();
    assert_eq!(got, expected, "{:#?}", report.findings);
    for f in &report.findings {
        assert!(f.line > 1 && f.column > 0, "{f:?}");
        assert!(!f.pointer.is_empty());
    }
    let monitoring = report
        .findings
        .iter()
        .find(|f| f.check == Check::Monitoring)
        .unwrap();
    assert!(
        monitoring.message.contains("SLAs"),
        "{}",
        monitoring.message
    );
    assert!(monitoring.heuristic);
    let trace = report
        .findings
        .iter()
        .find(|f| f.check == Check::Traceability)
        .unwrap();
    assert!(trace.message.contains("4-5"), "{}", trace.message);
    assert!(!trace.heuristic);
}

#[test]
fn a_100_mb_document_is_refused_naming_the_limit() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("sabsa-100mb.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap();
    let err = read_document(&path, gatehouse_sabsa::MAX_DOCUMENT_BYTES).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(err, ReadError::TooLarge { .. }));
    let message = err.to_string();
    assert!(message.contains("10485760 bytes (10 MiB)"), "{message}");

    // A stream has no length up front: it is cut off after the limit, not read to the end.
    let endless = std::io::repeat(b' ').take_bytes(100 * 1024 * 1024);
    let err = read_stream(endless, "<stdin>", gatehouse_sabsa::MAX_DOCUMENT_BYTES).unwrap_err();
    assert!(
        err.to_string()
            .contains("<stdin>: document is larger than the limit")
    );
}

trait TakeBytes {
    fn take_bytes(self, n: u64) -> std::io::Take<std::io::Repeat>;
}

impl TakeBytes for std::io::Repeat {
    fn take_bytes(self, n: u64) -> std::io::Take<std::io::Repeat> {
        std::io::Read::take(self, n)
    }
}
