#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Lint of the pack's security telemetry (EventSource, DetectionRules, Alert → Sigma rule):
//! every finding at its exact file:line:column, on disk and in memory.

use std::path::Path;

use gatehouse_pack::{Diagnostic, load, load_files, render};

const PACK: &str = include_str!("fixtures/telemetry/alert_names_unknown_rule.yaml");
const RULE_OK: &str = include_str!("fixtures/telemetry/rule_ok.yml");
const RULE_BROKEN: &str = include_str!("fixtures/telemetry/rule_broken.yml");

fn find<'a>(d: &'a [Diagnostic], code: &str) -> Vec<&'a Diagnostic> {
    d.iter().filter(|x| x.code == code).collect()
}

fn at(d: &Diagnostic) -> (String, u32, u32) {
    let l = d.location.as_ref().unwrap();
    (l.file.display().to_string(), l.line, l.column)
}

#[test]
fn telemetry_findings_at_exact_positions_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pack.yaml"), PACK).unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/ok.yml"), RULE_OK).unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = &loaded.diagnostics;
    let text = render::text(d, &loaded.sources);
    let pack_file = dir.path().join("pack.yaml").display().to_string();

    let missing = find(d, "missing-rule-folder");
    assert_eq!(missing.len(), 1, "{text}");
    assert_eq!(at(missing[0]), (pack_file.clone(), 3, 16), "{text}");
    assert!(missing[0].message.contains("missing-folder"));

    let empty = find(d, "empty-field-name");
    assert_eq!(empty.len(), 1, "{text}");
    assert_eq!(at(empty[0]), (pack_file.clone(), 9, 13), "{text}");

    let name = find(d, "invalid-source-name");
    assert_eq!(name.len(), 1, "{text}");
    assert_eq!(at(name[0]), (pack_file.clone(), 12, 5), "{text}");

    // The rule files are Sigma rules, not pack documents: no loader finding about them.
    assert!(
        d.iter().all(|x| x
            .location
            .as_ref()
            .is_none_or(|l| !l.file.ends_with("ok.yml"))),
        "{text}"
    );
    // With a folder missing, unknown rule ids are not reported on top.
    assert!(find(d, "unknown-sigma-rule").is_empty(), "{text}");
}

#[test]
fn alert_naming_an_unknown_rule_and_a_broken_rule_file() {
    let pack = PACK.replace("[rules, missing-folder]", "[rules]");
    let loaded = load_files([
        ("pack.yaml", pack.as_str()),
        ("rules/ok.yml", RULE_OK),
        ("rules/broken.yml", RULE_BROKEN),
    ]);
    let d = &loaded.diagnostics;
    let text = render::text(d, &loaded.sources);
    let unknown = find(d, "unknown-sigma-rule");
    assert_eq!(unknown.len(), 1, "{text}");
    assert_eq!(at(unknown[0]), ("pack.yaml".into(), 18, 15), "{text}");
    assert!(unknown[0].message.contains("no-such-rule"));

    let broken = find(d, "sigma-rule-not-loaded");
    assert_eq!(broken.len(), 1, "{text}");
    let (file, line, _) = at(broken[0]);
    assert_eq!(
        (Path::new(&file), line),
        (Path::new("rules/broken.yml"), 6),
        "{text}"
    );
    assert!(broken[0].message.contains("nosuchmodifier"), "{text}");

    // Naming the rule that exists clears the finding.
    let fixed = pack.replace("no-such-rule", "known-rule");
    let loaded = load_files([("pack.yaml", fixed.as_str()), ("rules/ok.yml", RULE_OK)]);
    assert!(find(&loaded.diagnostics, "unknown-sigma-rule").is_empty());
    assert!(find(&loaded.diagnostics, "missing-rule-folder").is_empty());
}

#[test]
fn duplicate_event_source_ids_are_refused() {
    let text = "kind: EventSource\nid: auditd\n---\nkind: EventSource\nid: auditd\n";
    let loaded = load_files([("s.yaml", text)]);
    assert!(
        loaded.has_errors(),
        "{}",
        render::text(&loaded.diagnostics, &loaded.sources)
    );
    assert_eq!(loaded.pack.event_sources().count(), 1);
}
