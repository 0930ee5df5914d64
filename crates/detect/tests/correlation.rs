#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Correlation rules: the specification's examples, aliases, value aggregations, range
//! conditions and chaining.

use std::path::Path;

use gatehouse_detect::correlation::{CorrelationEngine, CorrelationHit, CorrelationMatch};
use gatehouse_detect::engine::{CorrelationRef, Engine, Scratch};
use gatehouse_detect::event::{event_timestamp, parse_timestamp};
use gatehouse_detect::rule::{LoadOptions, RuleSet};
use serde_json::{Value, json};

fn engine_from(yaml: &str) -> Engine {
    let mut set = RuleSet::default();
    set.add_text("corr.yml", yaml, &LoadOptions::default());
    set.resolve();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    Engine::compile(&set)
}

/// Matches events in order and feeds their hits to the correlation engine.
fn correlate(engine: &Engine, events: &[Value]) -> Vec<CorrelationMatch> {
    let mut ce = CorrelationEngine::new(engine);
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    for e in events {
        let time = parse_timestamp(&event_timestamp(e).unwrap()).unwrap();
        for m in engine.match_event(e, &mut scratch) {
            out.extend(ce.push(CorrelationHit {
                source: CorrelationRef::Rule(m.rule),
                time,
                fields: m.captures,
            }));
        }
    }
    out.extend(ce.finish());
    out
}

fn title(engine: &Engine, m: &CorrelationMatch) -> String {
    engine.correlations()[m.correlation].rule.title.clone()
}

#[test]
fn spec_example_failed_logins_followed_by_success_chains() {
    let mut set = RuleSet::default();
    set.add_path(
        Path::new("tests/fixtures/rules/correlation_failed_then_success.yml"),
        &LoadOptions::default(),
    )
    .unwrap();
    set.resolve();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    assert_eq!((set.rules.len(), set.correlations.len()), (2, 2));
    let engine = Engine::compile(&set);
    // Referenced rules are not reported on their own (generate defaults to false).
    assert!((0..engine.rule_count()).all(|i| !engine.rule(i).unwrap().standalone));
    let events: Vec<Value> = std::fs::read_to_string("tests/fixtures/events/logins.jsonl")
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fired = correlate(&engine, &events);
    let titles: Vec<String> = fired.iter().map(|m| title(&engine, m)).collect();
    assert_eq!(
        titles,
        vec![
            "Multiple failed logons",
            "Correlation - Multiple Failed Logins Followed by Successful Login"
        ]
    );
    assert_eq!(
        fired[1].group,
        vec![("User".to_owned(), Some("alice".to_owned()))]
    );
}

#[test]
fn event_count_respects_the_sliding_timespan() {
    let e = engine_from(
        "title: base\nid: base-1\nlogsource:\n    product: x\ndetection:\n    s:\n        action: fail\n    condition: s\n---\ntitle: many\ncorrelation:\n    type: event_count\n    rules: [base-1]\n    group-by: [host]\n    timespan: 1m\n    condition:\n        gte: 3\n",
    );
    let ev = |t: &str, host: &str| json!({"action": "fail", "host": host, "timestamp": t});
    // Three events but spread over more than a minute: no match.
    assert!(
        correlate(
            &e,
            &[
                ev("2024-01-01T00:00:00Z", "a"),
                ev("2024-01-01T00:00:50Z", "a"),
                ev("2024-01-01T00:01:30Z", "a")
            ]
        )
        .is_empty()
    );
    // Three within a minute on one host, but split across hosts: no match; same host: match.
    assert!(
        correlate(
            &e,
            &[
                ev("2024-01-01T00:00:00Z", "a"),
                ev("2024-01-01T00:00:10Z", "b"),
                ev("2024-01-01T00:00:20Z", "a")
            ]
        )
        .is_empty()
    );
    let fired = correlate(
        &e,
        &[
            ev("2024-01-01T00:00:00Z", "a"),
            ev("2024-01-01T00:00:10Z", "a"),
            ev("2024-01-01T00:00:20Z", "a"),
        ],
    );
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].value, 3.0);
}

#[test]
fn value_count_sum_avg_and_range_conditions() {
    let base = "title: base\nid: base-1\nlogsource:\n    product: x\ndetection:\n    s:\n        action: send\n    condition: s\n---\n";
    let ev = |t: &str, user: &str, bytes: i64| json!({"action": "send", "src": "10.0.0.1", "user": user, "bytes": bytes, "timestamp": t});
    let events = [
        ev("2024-01-01T00:00:00Z", "u1", 100),
        ev("2024-01-01T00:00:10Z", "u2", 300),
        ev("2024-01-01T00:00:20Z", "u2", 800),
    ];
    let count = engine_from(&format!(
        "{base}title: users\ncorrelation:\n    type: value_count\n    rules: [base-1]\n    group-by: [src]\n    timespan: 1h\n    condition:\n        field: user\n        gte: 2\n"
    ));
    assert_eq!(correlate(&count, &events).len(), 1);
    let sum = engine_from(&format!(
        "{base}title: sum\ncorrelation:\n    type: value_sum\n    rules: [base-1]\n    group-by: [src]\n    timespan: 1h\n    condition:\n        field: bytes\n        gt: 1000\n"
    ));
    let fired = correlate(&sum, &events);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].value, 1200.0);
    let avg = engine_from(&format!(
        "{base}title: avg\ncorrelation:\n    type: value_avg\n    rules: [base-1]\n    group-by: [src]\n    timespan: 1h\n    condition:\n        field: bytes\n        gt: 500\n"
    ));
    assert!(correlate(&avg, &events).is_empty(), "average is 400");
    // Range: between 2 and 3 events in the window, decided when the window closes.
    let range = engine_from(&format!(
        "{base}title: range\ncorrelation:\n    type: event_count\n    rules: [base-1]\n    group-by: [src]\n    timespan: 1h\n    condition:\n        gt: 1\n        lte: 3\n"
    ));
    assert_eq!(correlate(&range, &events).len(), 1);
    assert!(correlate(&range, &events[..1]).is_empty());
    let pct = engine_from(&format!(
        "{base}title: rare\ncorrelation:\n    type: value_percentile\n    rules: [base-1]\n    group-by: [src]\n    timespan: 1h\n    condition:\n        field: user\n        lte: 34\n"
    ));
    // u1 is 1 of 1 (100 %) when seen; u2 reaches 2 of 3: never ≤ 34 % at its own arrival.
    assert!(correlate(&pct, &events).is_empty());
}

#[test]
fn aliases_join_different_fields_of_different_rules() {
    let yaml = "title: internal error\nname: internal_error\nlogsource:\n    product: x\ndetection:\n    s:\n        http.response.status_code: 500\n    condition: s\n---\ntitle: new connection\nname: new_network_connection\nlogsource:\n    product: x\ndetection:\n    s:\n        event.category: network\n    condition: s\n---\ntitle: error then connection\ncorrelation:\n    type: temporal\n    rules:\n        - internal_error\n        - new_network_connection\n    group-by:\n        - internal_ip\n    timespan: 10s\n    aliases:\n        internal_ip:\n            internal_error: destination.ip\n            new_network_connection: source.ip\n";
    let e = engine_from(yaml);
    let err = json!({"http": {"response": {"status_code": 500}}, "destination": {"ip": "10.1.1.1"}, "timestamp": "2024-01-01T00:00:00Z"});
    let conn_same = json!({"event": {"category": "network"}, "source": {"ip": "10.1.1.1"}, "timestamp": "2024-01-01T00:00:05Z"});
    let conn_other = json!({"event": {"category": "network"}, "source": {"ip": "10.9.9.9"}, "timestamp": "2024-01-01T00:00:05Z"});
    assert_eq!(correlate(&e, &[err.clone(), conn_same]).len(), 1);
    assert!(correlate(&e, &[err, conn_other]).is_empty());
}

#[test]
fn temporal_ordered_requires_the_order() {
    let yaml = "title: a\nid: a\nlogsource:\n    product: x\ndetection:\n    s:\n        step: a\n    condition: s\n---\ntitle: b\nid: b\nlogsource:\n    product: x\ndetection:\n    s:\n        step: b\n    condition: s\n---\ntitle: a then b\ncorrelation:\n    type: temporal_ordered\n    rules: [a, b]\n    group-by: [host]\n    timespan: 5m\n";
    let e = engine_from(yaml);
    let ev = |s: &str, t: &str| json!({"step": s, "host": "h", "timestamp": t});
    assert_eq!(
        correlate(
            &e,
            &[
                ev("a", "2024-01-01T00:00:00Z"),
                ev("b", "2024-01-01T00:01:00Z")
            ]
        )
        .len(),
        1
    );
    assert!(
        correlate(
            &e,
            &[
                ev("b", "2024-01-01T00:00:00Z"),
                ev("a", "2024-01-01T00:01:00Z")
            ]
        )
        .is_empty()
    );
}

#[test]
fn broken_correlations_are_reported() {
    let mut set = RuleSet::default();
    set.add_text("c.yml", "title: c\ncorrelation:\n    type: event_count\n    rules: [nowhere]\n    group-by: [x]\n    timespan: 5q\n    condition:\n        gte: 1\n", &LoadOptions::default());
    set.add_text("d.yml", "title: d\ncorrelation:\n    type: event_count\n    rules: [nowhere]\n    group-by: [x]\n    timespan: 5m\n    condition:\n        gte: 1\n", &LoadOptions::default());
    set.add_text("e.yml", "title: e\ncorrelation:\n    type: value_sum\n    rules: [nowhere]\n    timespan: 5m\n    condition:\n        gte: 1\n", &LoadOptions::default());
    set.resolve();
    let reasons: Vec<String> = set.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("c.yml:6") && r.contains("timespan")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("d.yml") && r.contains("unknown rule 'nowhere'")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("e.yml") && r.contains("needs 'field'")),
        "{reasons:?}"
    );
}
