#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Trace graph, coverage matrix and suspect links over the example pack, plus the bad-input
//! fixtures under `tests/fixtures/trace/`.

use gatehouse_pack::model::Kind;
use gatehouse_sabsa::trace::{
    GraphProblem, LinkRel, Lock, clear, matrix, neighbourhood, problems, suspects,
};

fn example_with(extra: &[(&'static str, &'static str)]) -> gatehouse_pack::Pack {
    let mut files = gatehouse_pack::example::files();
    files.extend_from_slice(extra);
    gatehouse_pack::load_files(files).pack
}

#[test]
fn example_pack_has_no_graph_problems() {
    assert_eq!(problems(&example_with(&[])), vec![]);
}

#[test]
fn a_trace_to_an_unknown_target_is_reported_with_its_position() {
    let pack = example_with(&[(
        "unknown_target.yaml",
        include_str!("fixtures/trace/unknown_target.yaml"),
    )]);
    let found = problems(&pack);
    assert_eq!(
        found,
        vec![GraphProblem::UnknownTarget {
            from: "CTL-A".into(),
            to: "CTL-MISSING".into(),
            line: 8,
            column: 9,
        }]
    );
    assert!(
        found[0]
            .to_string()
            .contains("unknown target `CTL-MISSING`")
    );
}

#[test]
fn a_cycle_of_refines_links_is_reported_once_from_its_smallest_id() {
    let pack = example_with(&[(
        "refines_cycle.yaml",
        include_str!("fixtures/trace/refines_cycle.yaml"),
    )]);
    let found = problems(&pack);
    assert_eq!(
        found,
        vec![GraphProblem::RefinesCycle(vec![
            "CTL-B".into(),
            "CTL-C".into(),
            "CTL-D".into()
        ])]
    );
    assert_eq!(
        found[0].to_string(),
        "refines/derives_from cycle: CTL-B -> CTL-C -> CTL-D -> CTL-B"
    );
    // Walking the cycle terminates and reaches every member.
    let around = neighbourhood(&pack, "CTL-B").unwrap();
    let reached: Vec<&str> = around.upstream.iter().map(|h| h.link.to.as_str()).collect();
    assert_eq!(reached, ["CTL-C", "CTL-D", "CTL-B"]);
}

#[test]
fn neighbourhood_shows_upstream_and_downstream_with_relationships() {
    let pack = example_with(&[]);
    let around = neighbourhood(&pack, "KMS-CRIT-001").unwrap();
    assert_eq!(around.kind, Some(Kind::Alert));
    let direct_up: Vec<(&str, &str)> = around
        .upstream
        .iter()
        .filter(|h| h.depth == 1)
        .map(|h| (h.link.to.as_str(), h.link.rel.as_str()))
        .collect();
    assert!(
        direct_up.contains(&("CTL-ENC-001", "monitors")),
        "{direct_up:?}"
    );
    assert!(direct_up.contains(&("POL-2026-001.component.5-1", "derives_from")));
    let direct_down: Vec<(&str, LinkRel)> = around
        .downstream
        .iter()
        .filter(|h| h.depth == 1)
        .map(|h| (h.link.from.as_str(), h.link.rel))
        .collect();
    assert!(direct_down.contains(&("encryption-key-compromise", LinkRel::RespondsTo)));
    assert!(direct_down.contains(&("monitoring-system-health", LinkRel::Raises)));
    assert!(neighbourhood(&pack, "NO-SUCH-ID").is_none());
}

#[test]
fn matrix_covers_controls_alerts_kpis_and_playbooks() {
    let pack = example_with(&[]);
    let rows = matrix(&pack);
    let row = |id: &str| rows.iter().find(|r| r.id == id).unwrap();
    let enc = row("CTL-ENC-001");
    assert_eq!(enc.gaps().count(), 0, "{enc:?}");
    assert_eq!(enc.requirements[1].1, vec!["KMS-CRIT-001".to_owned()]);
    assert_eq!(
        row("KMS-CRIT-001").requirements[0].1,
        vec!["encryption-key-compromise".to_owned()]
    );
    assert_eq!(
        row("encryption-key-compromise").requirements[0].1,
        vec![
            "CTL-ENC-001 (via KMS-CRIT-001)".to_owned(),
            "CTL-MON-001 (via KMS-CRIT-001)".to_owned()
        ]
    );
    assert!(row("encryption-coverage").gaps().next().is_none());
}

#[test]
fn a_control_nobody_implements_monitors_or_validates_is_three_gaps() {
    let pack = example_with(&[(
        "orphan.yaml",
        "kind: Control\nid: CTL-ORPHAN\ntitle: Orphan\nowner: security-operations\n",
    )]);
    let rows = matrix(&pack);
    let orphan = rows.iter().find(|r| r.id == "CTL-ORPHAN").unwrap();
    assert_eq!(
        orphan.gaps().collect::<Vec<_>>(),
        ["implemented", "monitored", "validated"]
    );
}

#[test]
fn changing_an_item_flags_its_dependents_until_cleared() {
    let before = example_with(&[]);
    let mut lock = Lock::default();
    assert!(clear(&before, &mut lock, None) > 0);
    assert!(suspects(&before, &lock).is_empty());

    // The lock survives a round trip through its text form.
    let text = lock.render();
    assert_eq!(Lock::parse(&text, "gatehouse.lock").unwrap(), lock);

    // Change the alert's SLA: everything that depends on the alert becomes suspect.
    let files: Vec<(&str, String)> = gatehouse_pack::example::files()
        .into_iter()
        .map(|(p, t)| (p, t.replace("acknowledge: 5m", "acknowledge: 10m")))
        .collect();
    let after = gatehouse_pack::load_files(files.iter().map(|(p, t)| (*p, t.as_str()))).pack;
    let flagged = suspects(&after, &lock);
    let mut dependents: Vec<&str> = flagged.iter().map(|s| s.dependent.as_str()).collect();
    dependents.sort();
    assert_eq!(
        dependents,
        [
            "IMP-003",
            "encryption-key-compromise",
            "monitoring-system-health"
        ]
    );
    assert!(flagged.iter().all(|s| s.upstream == "KMS-CRIT-001"));

    // Clearing one dependent leaves the other flagged.
    clear(&after, &mut lock, Some("encryption-key-compromise"));
    let left: Vec<String> = suspects(&after, &lock)
        .into_iter()
        .map(|s| s.dependent)
        .collect();
    assert_eq!(left, ["IMP-003", "monitoring-system-health"]);
    clear(&after, &mut lock, Some("IMP-003"));
    clear(&after, &mut lock, Some("monitoring-system-health"));
    assert!(suspects(&after, &lock).is_empty());
}

#[test]
fn a_malformed_lock_line_is_located() {
    let err = Lock::parse("# header\nCTL-A CTL-B nothex\n", "pack/gatehouse.lock").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.to_string().starts_with("pack/gatehouse.lock:2:"));
}
