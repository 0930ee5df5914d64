#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `json_schema()` is what editors validate pack files with: it must accept every document of
//! the (lint-clean) example pack and reject what the loader rejects.

use gatehouse_pack::{example, json_schema};
use serde_json::Value;

fn validator() -> (boon::Schemas, boon::SchemaIndex) {
    let schema = json_schema();
    let url = schema["$id"].as_str().unwrap().to_owned();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(&url, schema).unwrap();
    let index = compiler.compile(&url, &mut schemas).unwrap();
    (schemas, index)
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml).unwrap()
}

#[test]
fn schema_accepts_every_example_document() {
    let (schemas, index) = validator();
    let mut count = 0;
    for (path, text) in example::files() {
        // Sigma rules in the pack's rule folder are not pack documents.
        if path.starts_with("rules/") {
            continue;
        }
        for doc in documents(text) {
            if let Err(e) = schemas.validate(&doc, index) {
                panic!("{path}: {} rejected:\n{e:#}", doc["id"]);
            }
            count += 1;
        }
    }
    assert!(count > 30, "validated {count} documents");
}

#[test]
fn schema_rejects_unknown_keys_wrong_kinds_and_bad_durations() {
    let (schemas, index) = validator();
    let good = documents("kind: EscalationPolicy\nid: p\nsteps: [{ wait: 5m, notify: [ops] }]\n");
    assert!(schemas.validate(&good[0], index).is_ok());
    for bad in [
        "kind: EscalationPolicy\nid: p\nsteps: [{ wait: 5m, notify: [ops] }]\nsevrity: 1\n",
        "kind: EscalationPolize\nid: p\nsteps: [{ wait: 5m, notify: [ops] }]\n",
        "kind: EscalationPolicy\nid: p\nsteps: [{ wait: 5 minutes, notify: [ops] }]\n",
        "kind: EscalationPolicy\nid: p\nsteps: [{ wait: 5m }]\n",
        "kind: Alert\nid: a\nseverity: Urgent\n",
    ] {
        let doc = &documents(bad)[0];
        assert!(schemas.validate(doc, index).is_err(), "accepted:\n{bad}");
    }
}
