//! JSON Schema of a pack document, generated from the Rust types, for `gatehouse schema`.
//!
//! Editors with YAML language servers validate and complete pack files against it: a document
//! is `oneOf` the kinds, each selected by its `kind` constant.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::model::{
    Alert, Control, DetectionRules, EscalationPolicy, EventSource, HealthCheck, IdentityProvider,
    Improvement, Kpi, Maintenance, Person, Playbook, ReleaseClass, RiskModel, Role, Runbook,
    Schedule, SupportTier, Team,
};

/// The JSON Schema (draft 2020-12) of one pack document.
pub fn json_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut variants = Vec::new();
    macro_rules! variant {
        ($($kind:ident),*) => {$(
            let schema = generator.subschema_for::<$kind>();
            variants.push((stringify!($kind), schema.to_value()));
        )*};
    }
    variant!(
        Role,
        Person,
        Team,
        ReleaseClass,
        Control,
        RiskModel,
        Alert,
        Schedule,
        EscalationPolicy,
        SupportTier,
        HealthCheck,
        Runbook,
        Playbook,
        Maintenance,
        Kpi,
        Improvement,
        IdentityProvider,
        EventSource,
        DetectionRules
    );
    let mut definitions = serde_json::Map::new();
    for (name, schema) in generator.take_definitions(true) {
        definitions.insert(name, schema);
    }
    // Pin each kind's `kind` property to its name so validators pick the right branch.
    for (kind, _) in &variants {
        if let Some(properties) = definitions
            .get_mut(*kind)
            .and_then(|d| d.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            properties.insert("kind".into(), json!({ "const": kind }));
        }
    }
    let one_of: Vec<Value> = variants.into_iter().map(|(_, s)| s).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/gatehouse/pack.schema.json",
        "title": "gatehouse policy pack document",
        "description": "One YAML document of a gatehouse policy pack. Files may hold several documents separated by `---`.",
        "oneOf": one_of,
        "$defs": definitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_branch_with_a_const_kind() {
        let schema = json_schema();
        let branches = schema["oneOf"].as_array().unwrap();
        assert_eq!(branches.len(), crate::Kind::ALL.len());
        for kind in crate::Kind::ALL {
            let def = &schema["$defs"][kind.as_str()];
            assert_eq!(def["properties"]["kind"]["const"], kind.as_str(), "{kind}");
            assert_eq!(
                def["additionalProperties"], false,
                "{kind} denies unknown keys"
            );
        }
    }

    #[test]
    fn durations_are_patterned_strings() {
        let schema = json_schema();
        let duration = &schema["$defs"]["Duration"]["anyOf"];
        assert_eq!(duration[0]["type"], "string");
        assert_eq!(duration[1]["const"], 0);
    }
}
