#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Export of the example pack: deterministic in every format, and accepted by the validator.

use gatehouse_sabsa::export::{export, to_html, to_json, to_markdown};
use gatehouse_sabsa::{Check, Outcome, validate};

/// The example pack exactly as `gatehouse init` writes it.
fn example() -> gatehouse_pack::Pack {
    let loaded = gatehouse_pack::load_files(gatehouse_pack::example::files());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.pack
}

/// The `init` pack alone covers every checklist line: all three incident scenarios of 6-3,
/// so the export passes the validator with zero findings.
#[test]
fn export_of_the_example_pack_passes_the_validator_with_zero_findings() {
    let exported = export(&example(), None).unwrap();
    assert_eq!(exported.policy, "POL-2026-001");
    let json = to_json(&exported.document).unwrap();
    let report = validate(json.as_bytes());
    let text = gatehouse_sabsa::report::text(&report, "export.json");
    assert!(report.findings.is_empty(), "{text}");
    assert!(report.is_clean(), "{text}");
    assert!(
        report.outcomes.iter().all(|(_, o)| *o == Outcome::Passed),
        "{text}"
    );
    assert!(report.outcomes.iter().any(|(c, _)| *c == Check::Playbooks));
}

/// Each scenario is covered by its own playbook: dropping one from the example pack makes
/// L6-05 fail for exactly that scenario, at the 6-3 content.
#[test]
fn removing_a_scenario_playbook_from_the_example_fails_l6_05_for_that_scenario() {
    for (id, scenario) in [
        ("customer-data-breach", "a data breach playbook"),
        (
            "access-control-failure",
            "an access-control failure playbook",
        ),
    ] {
        let files: Vec<(&str, String)> = gatehouse_pack::example::files()
            .into_iter()
            .map(|(path, text)| {
                let kept: Vec<&str> = text
                    .split("\n---\n")
                    .filter(|doc| !doc.contains(&format!("\nid: {id}\n")))
                    .collect();
                (path, kept.join("\n---\n"))
            })
            .collect();
        let loaded = gatehouse_pack::load_files(files.iter().map(|(p, t)| (*p, t.as_str())));
        assert!(loaded.pack.playbook(id).is_none(), "{id} still present");
        let exported = export(&loaded.pack, None).unwrap();
        let report = validate(to_json(&exported.document).unwrap().as_bytes());
        assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
        let finding = &report.findings[0];
        assert_eq!(finding.check, Check::Playbooks);
        assert_eq!(finding.pointer, "/sections/6-3/content");
        assert!(finding.message.contains(scenario), "{}", finding.message);
    }
}

#[test]
fn export_is_byte_identical_for_the_same_pack_in_every_format() {
    // Load order differs (files reversed) but the pack is the same.
    let a = export(&example(), None).unwrap();
    let mut files = gatehouse_pack::example::files();
    files.reverse();
    let loaded = gatehouse_pack::load_files(files);
    let b = export(&loaded.pack, None).unwrap();
    assert_eq!(to_json(&a.document).unwrap(), to_json(&b.document).unwrap());
    assert_eq!(to_markdown(&a), to_markdown(&b));
    assert_eq!(to_html(&a), to_html(&b));
}

#[test]
fn export_renders_the_shapes_of_003() {
    let exported = export(&example(), None).unwrap();
    let section = |id: &str| exported.document.sections[id].content.clone();
    let alerts = section("6-1");
    for needle in [
        "### 6.1.2 Alert: KMS-CRIT-001 - Encryption Key Disabled",
        "**Severity:** Critical",
        "key_enabled{alias=\"alias/customer-pii-encryption-key\"} < 1 for 1m",
        "- Escalation (if no ack in 5m): Security lead (`security-lead`)",
        "- Acknowledge: 5m",
        "**Auto-Remediation:** None (requires manual investigation)",
    ] {
        assert!(alerts.contains(needle), "6-1 lacks {needle:?}:\n{alerts}");
    }
    let playbooks = section("6-3");
    assert!(
        playbooks.contains("**Phase 2: Investigation (T+15m to T+1h)**"),
        "{playbooks}"
    );
    assert!(
        playbooks.contains("**Step 4: Determine how"),
        "steps numbered across phases"
    );
    let kpis = section("6-5");
    assert!(
        kpis.contains("**Target:** 100% (higher is better)"),
        "{kpis}"
    );
    let backlog = section("6-6");
    assert!(
        backlog.contains("| IMP-003 | Add anomaly detection to KMS alerts | Detective | 2 | 1 | 2 | Deferred | Backlog |"),
        "{backlog}"
    );
    let traces = &exported.document.traceability["6-1"];
    assert_eq!(traces[0].source, "POL-2026-001.component.5-1");
    assert_eq!(traces[0].relationship, "derives_from");
    let html = to_html(&exported);
    assert!(
        html.contains("<h2>6.1 Monitoring &amp; Alerting</h2>"),
        "{html}"
    );
    assert!(html.contains("<table>"));
}

#[test]
fn coverage_counts_documents_per_sabsa_column() {
    let exported = export(&example(), None).unwrap();
    let coverage = &exported.coverage;
    let columns: Vec<&str> = coverage.by_column.iter().map(|(c, _)| *c).collect();
    assert_eq!(columns, ["What", "Why", "How", "Who", "Where", "When"]);
    let tagged: usize = coverage.by_column.iter().map(|(_, ids)| ids.len()).sum();
    assert_eq!(tagged + coverage.untagged.len(), coverage.total);
    let how = &coverage.by_column[2].1;
    assert!(how.contains(&"KMS-CRIT-001".to_owned()));
    assert!(
        coverage.text().contains("When        0  <- no document"),
        "{}",
        coverage.text()
    );
}

#[test]
fn policy_must_be_named_when_the_pack_traces_to_none_or_several() {
    let loaded = gatehouse_pack::load_files([(
        "a.yaml",
        "kind: Role\nid: viewer\ntraces:\n  - to: POL-2026-001.component.5-1\n    rel: derives_from\n---\nkind: Role\nid: approver\ntraces:\n  - to: POL-2026-002.component.5-1\n    rel: derives_from\n",
    )]);
    let err = export(&loaded.pack, None).unwrap_err();
    assert_eq!(
        err,
        gatehouse_sabsa::export::ExportError::AmbiguousPolicy(vec![
            "POL-2026-001".into(),
            "POL-2026-002".into()
        ])
    );
    assert!(export(&loaded.pack, Some("POL-2026-002")).is_ok());
    assert!(matches!(
        export(&loaded.pack, Some("pol 1")),
        Err(gatehouse_sabsa::export::ExportError::InvalidPolicy(_))
    ));
}
