#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The three renderings of the same findings: text for people, JSON for scripts, SARIF 2.1.0
//! for code-scanning UIs.

use gatehouse_pack::{LoadedPack, load, render};

const ALERT: &str = "\
kind: Role
id: operator
---
kind: Person
id: pat
name: Pat
email: pat@example.com
roles: [operator]
---
kind: Alert
id: KMS-CRIT-001
severity: Critical
trigger: { sigma_rule: kms-key-disabled }
routing: { notify: [operator] }
sla: { acknowledge: 15m, initial_response: 5m, resolution: 1h }
auto_remediation: { mode: none }
sevrity: High
";

fn loaded() -> (tempfile::TempDir, LoadedPack) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alerts.yaml"), ALERT).unwrap();
    std::fs::write(dir.path().join("huge.yaml"), vec![b'#'; 17 * 1024 * 1024]).unwrap();
    let loaded = load(dir.path()).unwrap();
    (dir, loaded)
}

#[test]
fn text_shows_position_snippet_caret_hint_and_summary() {
    let (dir, loaded) = loaded();
    let text = render::text(&loaded.diagnostics, &loaded.sources);
    let file = dir.path().join("alerts.yaml");
    assert!(
        text.contains("error[unknown-key]: unknown field `sevrity`"),
        "{text}"
    );
    assert!(
        text.contains(&format!(" --> {}:17:1\n", file.display())),
        "{text}"
    );
    assert!(
        text.contains("17 | sevrity: High\n   | ^^^^^^^\n"),
        "{text}"
    );
    assert!(
        text.contains("  = hint: did you mean `severity`?"),
        "{text}"
    );
    // The alert is still checked past its unknown key.
    assert!(text.contains("error[sla-order]"), "{text}");
    assert!(text.contains("error[file-too-large]"), "{text}");
    assert!(text.ends_with("3 errors, 0 warnings\n"), "{text}");
}

#[test]
fn json_has_one_object_per_finding_with_position() {
    let (_dir, loaded) = loaded();
    let json = render::json(&loaded.diagnostics, &loaded.sources);
    assert_eq!(json["errors"], 3);
    assert_eq!(json["warnings"], 0);
    let items = json["diagnostics"].as_array().unwrap();
    let unknown = items.iter().find(|d| d["code"] == "unknown-key").unwrap();
    assert_eq!(unknown["severity"], "error");
    assert_eq!(unknown["line"], 17);
    assert_eq!(unknown["column"], 1);
    assert!(unknown["file"].as_str().unwrap().ends_with("alerts.yaml"));
    assert!(unknown["snippet"].as_str().unwrap().contains('^'));
    let huge = items
        .iter()
        .find(|d| d["code"] == "file-too-large")
        .unwrap();
    assert!(huge["line"].is_null(), "whole-file findings have no line");
}

#[test]
fn sarif_is_2_1_0_with_rules_and_located_results() {
    let (_dir, loaded) = loaded();
    let sarif = render::sarif(&loaded.diagnostics, &loaded.sources);
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "gatehouse");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), loaded.diagnostics.len());
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            rules[index]["id"], result["ruleId"],
            "ruleIndex points at its rule"
        );
        assert!(
            !rules[index]["shortDescription"]["text"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        assert_eq!(result["level"], "error");
        let physical = &result["locations"][0]["physicalLocation"];
        assert!(physical["artifactLocation"]["uri"].is_string());
    }
    let unknown = results
        .iter()
        .find(|r| r["ruleId"] == "unknown-key")
        .unwrap();
    let region = &unknown["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 17);
    assert_eq!(region["startColumn"], 1);
    assert_eq!(region["snippet"]["text"], "sevrity: High");
    let huge = results
        .iter()
        .find(|r| r["ruleId"] == "file-too-large")
        .unwrap();
    assert!(huge["locations"][0]["physicalLocation"]["region"].is_null());
    let ids: std::collections::HashSet<&str> =
        rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), rules.len(), "each rule listed once");
}

#[test]
fn clean_pack_renders_as_empty() {
    let text = render::text(&[], &gatehouse_pack::Sources::new());
    assert_eq!(text, "0 errors, 0 warnings\n");
    let sarif = render::sarif(&[], &gatehouse_pack::Sources::new());
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 0);
}
