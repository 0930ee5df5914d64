#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The bad-input cases of issue 5, each one a test: malformed lines, a 100 MB line, deep
//! nesting, broken rules, a stream that stops mid-line.

use std::io::Read;
use std::path::Path;

use gatehouse_detect::engine::Engine;
use gatehouse_detect::hunt::{
    BadRecord, Detection, HuntOptions, HuntSink, Location, hunt_file, hunt_lines,
};
use gatehouse_detect::rule::{LoadOptions, ProblemKind, RuleSet};

#[derive(Default)]
struct Collect {
    detections: Vec<Detection>,
    bad: Vec<BadRecord>,
}

impl HuntSink for Collect {
    fn detection(&mut self, d: Detection) {
        self.detections.push(d);
    }
    fn bad_record(&mut self, b: BadRecord) {
        self.bad.push(b);
    }
}

fn whoami_engine() -> Engine {
    let mut set = RuleSet::default();
    set.add_path(
        Path::new("tests/fixtures/rules/generic_whoami.yml"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(set.problems.is_empty());
    Engine::compile(&set)
}

fn lines(d: &[Detection]) -> Vec<Location> {
    d.iter().map(|d| d.location).collect()
}

#[test]
fn malformed_lines_are_reported_and_the_rest_processed() {
    let engine = whoami_engine();
    for threads in [1, 2] {
        let mut sink = Collect::default();
        let options = HuntOptions {
            threads,
            chunk_lines: 2,
            ..HuntOptions::default()
        };
        let stats = hunt_file(
            &engine,
            Path::new("tests/fixtures/events/mixed_good_and_bad.jsonl"),
            &options,
            &mut sink,
        )
        .unwrap();
        assert_eq!(stats.events, 3, "threads={threads}");
        assert_eq!(
            lines(&sink.detections),
            vec![Location::Line(1), Location::Line(5), Location::Line(7)]
        );
        let bad: Vec<Location> = sink.bad.iter().map(|b| b.location).collect();
        assert_eq!(
            bad,
            vec![Location::Line(2), Location::Line(3), Location::Line(6)]
        );
    }
}

#[test]
fn a_stream_that_stops_mid_line_reports_the_truncated_record() {
    let engine = whoami_engine();
    let data = b"{\"Image\": \"C:\\\\x\\\\whoami.exe\"}\n{\"Image\": \"C:\\\\x\\\\who".to_vec();
    let mut sink = Collect::default();
    let stats = hunt_lines(
        &engine,
        &data[..],
        "stdin",
        &HuntOptions::default(),
        &mut sink,
    )
    .unwrap();
    assert_eq!(stats.events, 1);
    assert_eq!(sink.detections.len(), 1);
    assert_eq!(sink.bad.len(), 1);
    assert_eq!(sink.bad[0].location, Location::Line(2));
    assert!(
        sink.bad[0].reason.contains("ends mid-line"),
        "{}",
        sink.bad[0].reason
    );
}

/// 100 MB of one line, produced on the fly: the hunt must not buffer it.
struct HugeLine {
    remaining: usize,
    tail: &'static [u8],
}

impl Read for HugeLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining > 0 {
            let n = buf.len().min(self.remaining);
            buf[..n].fill(b'a');
            self.remaining -= n;
            return Ok(n);
        }
        let n = buf.len().min(self.tail.len());
        buf[..n].copy_from_slice(&self.tail[..n]);
        self.tail = &self.tail[n..];
        Ok(n)
    }
}

#[test]
fn a_100_mb_line_is_skipped_bounded_and_reported() {
    let engine = whoami_engine();
    let reader = HugeLine {
        remaining: 100 * 1024 * 1024,
        tail: b"\n{\"Image\": \"C:\\\\x\\\\whoami.exe\"}\n",
    };
    let mut sink = Collect::default();
    let options = HuntOptions {
        max_line_bytes: 1024 * 1024,
        threads: 2,
        ..HuntOptions::default()
    };
    let stats = hunt_lines(&engine, reader, "huge.jsonl", &options, &mut sink).unwrap();
    assert_eq!(sink.bad.len(), 1);
    assert_eq!(sink.bad[0].location, Location::Line(1));
    assert!(
        sink.bad[0].reason.contains("104857600 bytes"),
        "{}",
        sink.bad[0].reason
    );
    assert_eq!(stats.events, 1);
    assert_eq!(lines(&sink.detections), vec![Location::Line(2)]);
}

#[test]
fn ten_thousand_deep_nesting_is_a_bad_record_not_a_crash() {
    let engine = whoami_engine();
    let mut data = "[".repeat(10_000);
    data.push_str(&"]".repeat(10_000));
    data.push('\n');
    data.push_str(&"{\"a\":".repeat(10_000));
    data.push('1');
    data.push_str(&"}".repeat(10_000));
    data.push_str("\n{\"Image\": \"whoami.exe\", \"x\": \"\\\\whoami.exe\"}\n");
    let mut sink = Collect::default();
    let stats = hunt_lines(
        &engine,
        data.as_bytes(),
        "deep.jsonl",
        &HuntOptions::default(),
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.bad.len(), 2);
    assert!(
        sink.bad[0].reason.contains("recursion limit"),
        "{}",
        sink.bad[0].reason
    );
    assert_eq!(stats.events, 1);
}

#[test]
fn json_arrays_report_indexes_and_pretty_documents_work() {
    let engine = whoami_engine();
    let mut sink = Collect::default();
    let stats = hunt_file(
        &engine,
        Path::new("tests/fixtures/events/array_of_events.json"),
        &HuntOptions::default(),
        &mut sink,
    )
    .unwrap();
    assert_eq!(stats.events, 3);
    assert_eq!(
        lines(&sink.detections),
        vec![Location::Index(1), Location::Index(2)]
    );
    let mut set = RuleSet::default();
    set.add_path(
        Path::new("tests/fixtures/rules/proc_creation_whoami.yml"),
        &LoadOptions::default(),
    )
    .unwrap();
    let engine = Engine::compile(&set);
    let mut sink = Collect::default();
    hunt_file(
        &engine,
        Path::new("tests/fixtures/events/sysmon1_attributes_nested.json"),
        &HuntOptions::default(),
        &mut sink,
    )
    .unwrap();
    assert_eq!(lines(&sink.detections), vec![Location::Index(0)]);
    assert_eq!(
        sink.detections[0].timestamp.as_deref(),
        Some("2025-10-24T23:41:48.497170Z")
    );
}

fn load_problem(file: &str) -> (u32, ProblemKind, Option<String>) {
    let mut set = RuleSet::default();
    set.add_path(Path::new(file), &LoadOptions::default())
        .unwrap();
    assert_eq!(set.total, 1);
    assert_eq!(set.loaded(), 0);
    let p = set.problems.remove(0);
    assert_eq!(p.file, file);
    (p.line, p.kind, p.rule)
}

#[test]
fn unknown_modifier_names_rule_line_and_modifier() {
    let (line, kind, rule) = load_problem("tests/fixtures/bad_rules/unknown_modifier.yml");
    assert_eq!(line, 7);
    assert_eq!(
        rule.as_deref(),
        Some("0c6f4a1e-0000-4000-8000-000000000001")
    );
    assert!(
        matches!(kind, ProblemKind::Invalid { ref reason } if reason.contains("'sometimes'")),
        "{kind:?}"
    );
}

#[test]
fn broken_condition_names_rule_and_line() {
    let (line, kind, rule) = load_problem("tests/fixtures/bad_rules/broken_condition.yml");
    assert_eq!(line, 8);
    assert_eq!(
        rule.as_deref(),
        Some("0c6f4a1e-0000-4000-8000-000000000002")
    );
    assert!(
        matches!(kind, ProblemKind::Invalid { ref reason } if reason.contains("filter") || reason.contains(")")),
        "{kind:?}"
    );
}

#[test]
fn obsolete_aggregation_is_unsupported_with_advice() {
    let (line, kind, _) = load_problem("tests/fixtures/bad_rules/obsolete_count.yml");
    assert_eq!(line, 8);
    assert!(
        matches!(kind, ProblemKind::Unsupported { ref feature } if feature.contains("correlation")),
        "{kind:?}"
    );
}

#[test]
fn yaml_syntax_errors_carry_the_line() {
    let (line, kind, _) = load_problem("tests/fixtures/bad_rules/yaml_syntax.yml");
    assert!((6..=8).contains(&line), "line {line}");
    assert!(
        matches!(kind, ProblemKind::Invalid { ref reason } if reason.starts_with("YAML syntax")),
        "{kind:?}"
    );
}

#[test]
fn plain_text_lines_are_matched_by_keyword_rules() {
    let mut set = RuleSet::default();
    set.add_text(
        "kw.yml",
        "title: dot1x off\nid: kw-1\nlogsource:\n    product: cisco\ndetection:\n    keywords:\n        - 'no dot1x port-control'\n    condition: keywords\n",
        &LoadOptions::default(),
    );
    let engine = Engine::compile(&set);
    let mut sink = Collect::default();
    let stats = hunt_file(
        &engine,
        Path::new("tests/fixtures/events/cisco_cli.log"),
        &HuntOptions::default(),
        &mut sink,
    )
    .unwrap();
    assert_eq!(stats.events, 3);
    assert!(sink.bad.is_empty());
    assert_eq!(lines(&sink.detections), vec![Location::Line(2)]);
}
