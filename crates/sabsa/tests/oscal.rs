#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! OSCAL POA&M and assessment plan of the example pack, checked against the structure of the
//! NIST OSCAL 1.1.2 models: required members, no members the model does not define, and the
//! data type patterns (uuid, dateTime-with-timezone, token, uri) of NIST's JSON Schema.
//!
//! The NIST JSON Schema files themselves are not vendored (they cannot be fetched by a test
//! offline); the required/allowed members below are transcribed from the NIST model for
//! exactly the assemblies gatehouse writes. `scripts/sabsa-oscal-check.py` re-checks an export
//! against the full NIST model when the `oscal` Python package is installed.

use gatehouse_sabsa::oscal::{OscalError, assessment_plan, poam};
use serde_json::Value;

fn example() -> gatehouse_pack::Pack {
    gatehouse_pack::load_files(gatehouse_pack::example::files()).pack
}

fn at() -> jiff::Timestamp {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

/// (json path with `[]` for array items, required members, allowed members)
type Shape = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const PROP: (&[&str], &[&str]) = (
    &["name", "value"],
    &["name", "uuid", "ns", "value", "class", "group", "remarks"],
);

const METADATA: (&[&str], &[&str]) = (
    &["title", "last-modified", "version", "oscal-version"],
    &[
        "title",
        "published",
        "last-modified",
        "version",
        "oscal-version",
        "revisions",
        "document-ids",
        "props",
        "links",
        "roles",
        "locations",
        "parties",
        "responsible-parties",
        "actions",
        "remarks",
    ],
);

const POAM_SHAPES: &[Shape] = &[
    (
        "/plan-of-action-and-milestones",
        &["uuid", "metadata", "poam-items"],
        &[
            "uuid",
            "metadata",
            "import-ssp",
            "system-id",
            "local-definitions",
            "observations",
            "risks",
            "findings",
            "poam-items",
            "back-matter",
        ],
    ),
    (
        "/plan-of-action-and-milestones/metadata",
        METADATA.0,
        METADATA.1,
    ),
    (
        "/plan-of-action-and-milestones/metadata/props[]",
        PROP.0,
        PROP.1,
    ),
    (
        "/plan-of-action-and-milestones/system-id",
        &["id"],
        &["id", "identifier-type"],
    ),
    (
        "/plan-of-action-and-milestones/poam-items[]",
        &["title", "description"],
        &[
            "uuid",
            "title",
            "description",
            "props",
            "links",
            "origins",
            "related-findings",
            "related-observations",
            "related-risks",
            "remarks",
        ],
    ),
    (
        "/plan-of-action-and-milestones/poam-items[]/props[]",
        PROP.0,
        PROP.1,
    ),
];

const AP_SHAPES: &[Shape] = &[
    (
        "/assessment-plan",
        &["uuid", "metadata", "import-ssp", "reviewed-controls"],
        &[
            "uuid",
            "metadata",
            "import-ssp",
            "local-definitions",
            "terms-and-conditions",
            "reviewed-controls",
            "assessment-subjects",
            "assessment-assets",
            "tasks",
            "back-matter",
        ],
    ),
    ("/assessment-plan/metadata", METADATA.0, METADATA.1),
    ("/assessment-plan/metadata/props[]", PROP.0, PROP.1),
    (
        "/assessment-plan/import-ssp",
        &["href"],
        &["href", "remarks"],
    ),
    (
        "/assessment-plan/local-definitions",
        &[],
        &[
            "components",
            "inventory-items",
            "users",
            "objectives-and-methods",
            "activities",
            "remarks",
        ],
    ),
    (
        "/assessment-plan/local-definitions/activities[]",
        &["uuid", "description"],
        &[
            "uuid",
            "title",
            "description",
            "props",
            "links",
            "steps",
            "related-controls",
            "responsible-roles",
            "remarks",
        ],
    ),
    (
        "/assessment-plan/local-definitions/activities[]/props[]",
        PROP.0,
        PROP.1,
    ),
    (
        "/assessment-plan/reviewed-controls",
        &["control-selections"],
        &[
            "description",
            "props",
            "links",
            "control-selections",
            "control-objective-selections",
            "remarks",
        ],
    ),
    (
        "/assessment-plan/reviewed-controls/control-selections[]",
        &[],
        &[
            "description",
            "props",
            "links",
            "include-all",
            "include-controls",
            "exclude-controls",
            "remarks",
        ],
    ),
    (
        "/assessment-plan/tasks[]",
        &["uuid", "type", "title"],
        &[
            "uuid",
            "type",
            "title",
            "description",
            "props",
            "links",
            "timing",
            "dependencies",
            "tasks",
            "associated-activities",
            "subjects",
            "responsible-roles",
            "remarks",
        ],
    ),
    (
        "/assessment-plan/tasks[]/timing",
        &[],
        &["on-date", "within-date-range", "at-frequency"],
    ),
    (
        "/assessment-plan/tasks[]/timing/at-frequency",
        &["period", "unit"],
        &["period", "unit"],
    ),
    (
        "/assessment-plan/tasks[]/associated-activities[]",
        &["activity-uuid", "subjects"],
        &[
            "activity-uuid",
            "props",
            "links",
            "responsible-roles",
            "subjects",
            "remarks",
        ],
    ),
    (
        "/assessment-plan/tasks[]/associated-activities[]/subjects[]",
        &["type"],
        &[
            "type",
            "description",
            "props",
            "links",
            "include-all",
            "include-subjects",
            "exclude-subjects",
            "remarks",
        ],
    ),
];

fn is_uuid(s: &str) -> bool {
    // NIST UUIDDatatype: version 4 or 5, RFC 4122 variant.
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
        && matches!(parts[2].as_bytes()[0], b'4' | b'5')
        && matches!(
            parts[3].as_bytes()[0],
            b'8' | b'9' | b'a' | b'b' | b'A' | b'B'
        )
}

fn is_token(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn is_datetime_with_tz(s: &str) -> bool {
    s.parse::<jiff::Timestamp>().is_ok() && (s.ends_with('Z') || s.contains('+'))
}

/// Walks `value`, checking every object against its shape and every typed member.
fn check(value: &Value, path: &str, shapes: &[Shape], errors: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some((_, required, allowed)) = shapes.iter().find(|(p, _, _)| *p == path) {
                for r in *required {
                    if !map.contains_key(*r) {
                        errors.push(format!("{path}: missing required `{r}`"));
                    }
                }
                for k in map.keys() {
                    if !allowed.contains(&k.as_str()) {
                        errors.push(format!("{path}: `{k}` is not defined by the model"));
                    }
                }
            }
            for (k, v) in map {
                let child = format!("{path}/{k}");
                match (k.as_str(), v) {
                    ("uuid" | "activity-uuid", Value::String(s)) if !is_uuid(s) => {
                        errors.push(format!("{child}: `{s}` is not a v4/v5 UUID"))
                    }
                    ("last-modified", Value::String(s)) if !is_datetime_with_tz(s) => {
                        errors.push(format!("{child}: `{s}` is not dateTime-with-timezone"))
                    }
                    ("name" | "type", Value::String(s)) if !is_token(s) => {
                        errors.push(format!("{child}: `{s}` is not a token"))
                    }
                    ("ns" | "identifier-type", Value::String(s)) if !s.starts_with("https://") => {
                        errors.push(format!("{child}: `{s}` is not an absolute URI"))
                    }
                    ("value" | "title" | "description", Value::String(s))
                        if s.trim().is_empty() =>
                    {
                        errors.push(format!("{child}: empty"))
                    }
                    (_, Value::Array(items)) if items.is_empty() => {
                        errors.push(format!("{child}: OSCAL arrays need at least one item"))
                    }
                    _ => {}
                }
                check(v, &child, shapes, errors);
            }
        }
        Value::Array(items) => {
            for item in items {
                check(item, &format!("{path}[]"), shapes, errors);
            }
        }
        _ => {}
    }
}

#[test]
fn poam_of_the_example_backlog_has_the_structure_of_the_nist_model() {
    let document = poam(&example(), "POL-2026-001", at()).unwrap();
    let value = serde_json::to_value(&document).unwrap();
    let mut errors = Vec::new();
    check(&value, "", POAM_SHAPES, &mut errors);
    assert!(errors.is_empty(), "{errors:#?}\n{value:#}");
    let items = value["plan-of-action-and-milestones"]["poam-items"]
        .as_array()
        .unwrap();
    assert_eq!(items.len(), 3);
    // Ordered by priority score, with the score and decision as properties.
    let score = |i: usize| {
        items[i]["props"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "priority-score")
            .unwrap()["value"]
            .clone()
    };
    assert_eq!([score(0), score(1), score(2)], ["9", "6", "2"]);
    assert_eq!(
        value["plan-of-action-and-milestones"]["metadata"]["last-modified"],
        "2026-11-27T12:00:00Z"
    );
}

#[test]
fn assessment_plan_of_the_example_kpis_has_the_structure_of_the_nist_model() {
    let document = assessment_plan(&example(), "POL-2026-001", "#", at()).unwrap();
    let value = serde_json::to_value(&document).unwrap();
    let mut errors = Vec::new();
    check(&value, "", AP_SHAPES, &mut errors);
    assert!(errors.is_empty(), "{errors:#?}\n{value:#}");
    let plan = &value["assessment-plan"];
    let activities = plan["local-definitions"]["activities"].as_array().unwrap();
    let tasks = plan["tasks"].as_array().unwrap();
    assert_eq!(activities.len(), 2);
    // Every task points at a defined activity.
    for task in tasks {
        let target = &task["associated-activities"][0]["activity-uuid"];
        assert!(activities.iter().any(|a| &a["uuid"] == target));
        assert!(
            ["days", "months", "hours", "years"]
                .contains(&task["timing"]["at-frequency"]["unit"].as_str().unwrap())
        );
    }
    let target = activities[0]["props"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "target")
        .unwrap();
    assert_eq!(target["value"], "100");
}

#[test]
fn oscal_exports_are_deterministic_apart_from_the_given_time() {
    let pack = example();
    let a = serde_json::to_string(&poam(&pack, "POL-2026-001", at()).unwrap()).unwrap();
    let b = serde_json::to_string(&poam(&pack, "POL-2026-001", at()).unwrap()).unwrap();
    assert_eq!(a, b);
    let other = serde_json::to_string(&poam(&pack, "POL-2026-002", at()).unwrap()).unwrap();
    assert_ne!(a, other, "UUIDs are scoped to the policy");
}

#[test]
fn the_checker_itself_rejects_a_broken_document() {
    let mut value = serde_json::to_value(poam(&example(), "POL-2026-001", at()).unwrap()).unwrap();
    let root = value["plan-of-action-and-milestones"]
        .as_object_mut()
        .unwrap();
    root.remove("metadata");
    root.insert("uuid".into(), Value::String("not-a-uuid".into()));
    root.insert("extra".into(), Value::Bool(true));
    let mut errors = Vec::new();
    check(&value, "", POAM_SHAPES, &mut errors);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn empty_backlog_or_kpis_are_refused() {
    let loaded = gatehouse_pack::load_files([("a.yaml", "kind: Role\nid: viewer\n")]);
    assert_eq!(
        poam(&loaded.pack, "POL-1", at()).unwrap_err(),
        OscalError::NoImprovements
    );
    assert_eq!(
        assessment_plan(&loaded.pack, "POL-1", "#", at()).unwrap_err(),
        OscalError::NoKpis
    );
}
