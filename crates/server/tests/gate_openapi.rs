//! Every release-gate route is described in the OpenAPI document with its request and response
//! bodies, and the described verdict matches what the server really sends (a verdict computed
//! by the core is serialized and its keys compared with the schema, at every level).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_core::gate::{ReleaseGateState, evaluate};
use gatehouse_core::release::{ChangeContext, NewRelease, ReleaseId};
use serde_json::Value;

const GATE_ROUTES: &[(&str, &str, bool)] = &[
    ("post", "/api/v1/releases/{id}/evidence", true),
    ("get", "/api/v1/releases/{id}/verdict", false),
    ("get", "/api/v1/releases/{id}/memo", false),
    ("post", "/api/v1/releases/{id}/approvals", true),
    ("post", "/api/v1/releases/{id}/exceptions", true),
    (
        "post",
        "/api/v1/releases/{id}/requirements/{requirement}",
        true,
    ),
    ("post", "/api/v1/releases/{id}/risks", true),
    ("post", "/api/v1/releases/{id}/bypass", true),
    ("get", "/api/v1/metrics/gate", false),
];

#[test]
fn every_gate_route_is_described_with_its_bodies() {
    let doc = gatehouse_server::openapi::document();
    for (method, path, has_body) in GATE_ROUTES {
        let op = &doc["paths"][path][method];
        assert!(
            op.is_object(),
            "{method} {path} is not in the OpenAPI document"
        );
        assert_eq!(op["tags"][0], "gate", "{method} {path}");
        if *has_body {
            assert!(
                op["requestBody"]["content"].is_object(),
                "{method} {path} has no request body"
            );
        }
        let ok = op["responses"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(code, _)| code.starts_with('2'))
            .unwrap_or_else(|| panic!("{method} {path} has no 2xx response"));
        assert!(
            ok.1["content"].is_object(),
            "{method} {path}: 2xx without a body"
        );
        assert!(
            op["responses"]["403"].is_object(),
            "{method} {path} does not document its refusal"
        );
    }
}

fn schema<'d>(doc: &'d Value, name: &str) -> &'d Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

/// Every key of `value` is a property of schema `name`, and every required property is present.
fn assert_matches(doc: &Value, name: &str, value: &Value) {
    let schema = schema(doc, name);
    let properties = schema["properties"].as_object().unwrap();
    let object = value.as_object().unwrap();
    for key in object.keys() {
        assert!(
            properties.contains_key(key),
            "{name}: `{key}` is sent but not described"
        );
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        let key = required.as_str().unwrap();
        assert!(
            object.contains_key(key),
            "{name}: `{key}` is required but not sent"
        );
    }
}

#[test]
fn the_described_verdict_is_the_verdict_the_server_sends() {
    let loaded = gatehouse_pack::load_files([(
        "pack.yaml",
        "kind: Role\nid: approver\n---\nkind: Person\nid: bob\nname: Bob\nemail: b@example.com\n\
         roles: [approver]\n---\nkind: ReleaseClass\nid: normal\n\
         required_evidence: [{kind: sast}]\napprover_path: [{role: approver}]\n",
    )]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let now: jiff::Timestamp = "2026-11-20T10:00:00Z".parse().unwrap();
    let release = NewRelease {
        service: "payments".into(),
        version: "2.14.0".into(),
        release_class: "normal".into(),
        artifact_digests: vec![
            "sha256:44d1c14c89ea332a634c011849f710c9b61751be1c3f95d6b1a38cd90ed25031".into(),
        ],
        owner: "bob".into(),
        change: ChangeContext {
            summary: "x".into(),
            ticket: Some("T-1".into()),
            pull_request: None,
        },
        target_environment: "production".into(),
    }
    .into_release(ReleaseId::generate(now).unwrap(), "alice", now)
    .unwrap();
    let verdict = evaluate(
        loaded.pack.release_class("normal").unwrap(),
        None,
        &ReleaseGateState::new(release),
        now,
    );
    let json = serde_json::to_value(&verdict).unwrap();
    let doc = gatehouse_server::openapi::document();
    assert_matches(&doc, "GateVerdict", &json);
    assert_matches(&doc, "FindingTally", &json["findings"]);
    let mut reasons = 0;
    for category in json["categories"].as_array().unwrap() {
        assert_matches(&doc, "CategoryResult", category);
        let name = category["category"].as_str().unwrap();
        assert!(
            schema(&doc, "GateCategory")["enum"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == name),
            "category {name} is not described"
        );
        for reason in category["reasons"].as_array().unwrap() {
            reasons += 1;
            assert_matches(&doc, "Reason", reason);
            assert_matches(&doc, "RuleRef", &reason["rule"]);
        }
    }
    assert!(reasons > 0, "the verdict should carry reasons: {json}");
}
