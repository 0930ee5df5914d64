#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The example pack written by `gatehouse init` must stay lint-clean and complete.

use gatehouse_pack::{example, load, load_files, render};

#[test]
fn example_pack_loads_with_zero_diagnostics() {
    let loaded = load_files(example::files());
    assert!(
        loaded.diagnostics.is_empty(),
        "{}",
        render::text(&loaded.diagnostics, &loaded.sources)
    );
    assert!(loaded.pack.document_count() > 10);
}

#[test]
fn example_pack_written_to_disk_loads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in example::files() {
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, content).unwrap();
    }
    let loaded = load(dir.path()).unwrap();
    assert!(
        loaded.diagnostics.is_empty(),
        "{}",
        render::text(&loaded.diagnostics, &loaded.sources)
    );
    let in_memory = load_files(example::files());
    assert_eq!(loaded.pack.digest(), in_memory.pack.digest());
    assert_eq!(loaded.pack.digest().len(), 64);
}

#[test]
fn example_pack_covers_every_kind_and_the_seed_documents() {
    use gatehouse_pack::{Duration, Kind};
    let loaded = load_files(example::files());
    let pack = &loaded.pack;
    for kind in Kind::ALL {
        assert!(
            pack.documents().any(|d| d.kind() == *kind),
            "example pack has no {kind}"
        );
    }
    for role in [
        "viewer",
        "submitter",
        "approver",
        "security-lead",
        "ciso",
        "operator",
        "auditor",
        "admin",
    ] {
        assert!(pack.role(role).is_some(), "role {role}");
    }
    let normal = pack.release_class("normal").unwrap();
    assert!(normal.emergency.is_none());
    let emergency = pack.release_class("emergency").unwrap();
    assert_eq!(
        emergency
            .emergency
            .as_ref()
            .unwrap()
            .retrospective_within
            .value,
        Duration::from_days(5)
    );
    let alert = pack.alert("KMS-CRIT-001").unwrap();
    assert_eq!(
        alert.severity.value,
        gatehouse_pack::model::SeverityLevel::Critical
    );
    assert_eq!(alert.sla.acknowledge.value, Duration::from_mins(5));
    assert_eq!(alert.sla.initial_response.value, Duration::from_mins(15));
    assert_eq!(alert.sla.resolution.value, Duration::from_hours(1));
    assert!(pack.runbook("quarterly-access-review").is_some());
    let playbook = pack.playbook("encryption-key-compromise").unwrap();
    assert_eq!(playbook.phases[0].starts_at.value, Duration::ZERO);
    assert!(pack.maintenance("monthly-patching").is_some());
    assert!(pack.kpi("encryption-coverage").is_some());
    assert!(pack.kpi("key-rotation-compliance").is_some());
    assert!(pack.improvements().count() >= 3);
    let scores: Vec<i64> = pack.improvements().map(|i| i.priority_score()).collect();
    assert_eq!(
        scores,
        vec![9, 6, 2],
        "priority scores as in the seed backlog"
    );

    let (graph, dangling) = gatehouse_pack::trace::TraceGraph::build(pack);
    assert!(dangling.is_empty());
    assert!(graph.edges().len() >= 15);
    assert!(graph.incoming("KMS-CRIT-001").count() >= 2);
    assert!(
        graph
            .nodes()
            .iter()
            .any(|n| n.id == "POL-2026-001.component.5-1" && n.kind.is_none())
    );
}

#[test]
fn breaking_the_example_pack_is_caught() {
    // Without Dan nobody holds `ciso`, which both release classes escalate risks to.
    let files: Vec<(&str, String)> = example::files()
        .into_iter()
        .map(|(path, text)| {
            let text = if path == "identity.yaml" {
                text.replace("roles: [ciso]", "roles: [viewer]")
            } else {
                text.to_owned()
            };
            (path, text)
        })
        .collect();
    let loaded = load_files(files.iter().map(|(p, t)| (*p, t.as_str())));
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["role-without-holder", "role-without-holder"]);
    assert!(loaded.has_errors());
}
