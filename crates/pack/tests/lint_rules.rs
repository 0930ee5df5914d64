#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Each lint rule on a small named fixture, asserted at the exact `line:column`.
//!
//! A fixture states what it must produce in trailing comments, one finding per line:
//! `# expect: <code> <line>:<column>`. The test loads the fixture from a pack folder on disk
//! (the real loader) and requires exactly those findings, no more and no fewer.

use std::path::Path;

use gatehouse_pack::{Severity, load, render};

fn expectations(text: &str) -> Vec<(String, u32, u32)> {
    let mut expected: Vec<(String, u32, u32)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|e| {
            let (code, position) = e.split_once(' ').unwrap();
            let (line, column) = position.trim().split_once(':').unwrap();
            (
                code.to_owned(),
                line.parse().unwrap(),
                column.parse().unwrap(),
            )
        })
        .collect();
    expected.sort();
    expected
}

fn check(name: &str) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&fixture).unwrap();
    let expected = expectations(&text);
    assert!(
        !expected.is_empty(),
        "{name}: fixture states no expectation"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, &text).unwrap();
    let loaded = load(dir.path()).unwrap();

    let mut actual: Vec<(String, u32, u32)> = loaded
        .diagnostics
        .iter()
        .map(|d| {
            let l = d.location.as_ref().expect("every finding has a location");
            assert_eq!(l.file, file, "{name}: finding names the file");
            (d.code.to_owned(), l.line, l.column)
        })
        .collect();
    actual.sort();
    assert_eq!(
        actual,
        expected,
        "{name}:\n{}",
        render::text(&loaded.diagnostics, &loaded.sources)
    );
    // Every finding can be shown with a caret under the offending text, and says how to fix it.
    for d in &loaded.diagnostics {
        assert!(
            d.snippet(&text).is_some_and(|s| s.contains('^')),
            "{name}: {d:?}"
        );
        assert!(d.hint.is_some(), "{name}: {} has no hint", d.code);
    }
    assert!(
        loaded.has_errors()
            || loaded
                .diagnostics
                .iter()
                .all(|d| d.severity == Severity::Warning)
    );
}

macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            check(stringify!($name));
        }
    )*};
}

fixtures!(
    yaml_syntax,
    wrong_type,
    unknown_key,
    duplicate_id,
    duplicate_key,
    missing_and_unknown_kind,
    invalid_duration,
    dangling_reference,
    wrong_reference_kind,
    invalid_schedule_expressions,
    sla_order,
    kpi_threshold_order,
    role_without_holder,
    overlapping_phases,
    improvement_scores,
    alert_shape,
    risk_model_bands,
    support_tiers,
    schedule_times,
    health_check,
    release_class_shape,
    playbook_and_kpi_warnings,
    trace_cycle,
    several_unknown_keys,
    wrong_shapes,
    duplicates_and_band_gaps,
    unknown_permission,
    identity_provider,
);

#[test]
fn unknown_keys_get_a_spelling_suggestion() {
    let loaded = gatehouse_pack::load_files([(
        "a.yaml",
        "kind: Role\nid: r\nresponsibilites: [x]\nzzz: 1\n",
    )]);
    let hints: Vec<&str> = loaded
        .diagnostics
        .iter()
        .map(|d| d.hint.as_deref().unwrap())
        .collect();
    assert_eq!(hints[0], "did you mean `responsibilities`?");
    assert!(hints[1].contains("fields of Role"), "{}", hints[1]);
    // Both unknown keys are reported, and the document is still loaded.
    assert_eq!(loaded.diagnostics.len(), 2);
    assert!(loaded.pack.role("r").is_some());
}

#[test]
fn misspelt_values_get_a_suggestion_too() {
    let loaded = gatehouse_pack::load_files([(
        "a.yaml",
        "kind: Improvement\nid: i\nrisk_reduction: 1\neffort: 1\nstatus: in-progress\n",
    )]);
    assert_eq!(loaded.diagnostics.len(), 1, "{:?}", loaded.diagnostics);
    let d = &loaded.diagnostics[0];
    assert_eq!(d.code, "invalid-value");
    assert_eq!(d.hint.as_deref(), Some("did you mean `in_progress`?"));
    assert_eq!(
        d.location.as_ref().map(|l| (l.line, l.column)),
        Some((5, 9))
    );
}
