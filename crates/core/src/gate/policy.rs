//! Rego policies of the release class, evaluated over the release and its evidence facts.
//!
//! Teams that already write OPA policies should not have to restate them as thresholds, so a
//! class may list `policies: [{file, query}]` (`docs/pack.md`, "Rego policies"). The pack
//! loader reads each file; this module only evaluates the text it was handed (with the
//! `regorus` interpreter), so the verdict stays a pure function of its arguments.
//!
//! The loader also keeps each policy parsed ([`RegoPolicy::prepared`]): a verdict clones that
//! engine and sets only its input, rather than parsing and analysing the text again (0.3 ms
//! for three policies, more than the rest of a 50-item verdict; docs/benchmarks.md). A policy
//! without a prepared engine for its current text is parsed here, so the outcome never
//! depends on which path ran.
//!
//! Conftest-style: each message in the `query` set (usually `data.<package>.deny`) is a
//! blocking reason in the findings category; each message in the sibling `warn` rule of the
//! same package is a warning. A message is a string, or an object with a string `msg`.
//!
//! Fail closed: a policy whose source the loader could not read, that does not parse, whose
//! query names no rule, that errors while evaluating (builtin errors are strict), or whose
//! deny rule yields anything but messages, blocks with the error.
//!
//! The input document (`input`) is:
//!
//! ```json
//! {
//!   "class": "normal",
//!   "now": "2026-11-20T10:00:00Z",
//!   "release": { "id": "…", "service": "…", "version": "…", "artifact_digests": ["sha256:…"], … },
//!   "evidence": [
//!     { "id": "…", "kind": "sarif", "sha256": "…", "size": 123, "attached_at": "…",
//!       "attached_by": "…", "revision": 3,
//!       "facts": { "status": "parsed", "facts": { "unsuppressed_by_level": { … }, … } } }
//!   ]
//! }
//! ```
//!
//! `evidence` holds the active items only (superseded ones and byte-identical duplicates are
//! left out, as for every other category); `facts.facts` is the normalized facts of the item's
//! kind as `gatehouse-evidence` serializes them, and `facts.status` is `unreadable` (with
//! `facts.reason`) for a file the parser could not read.

use std::borrow::Cow;

use gatehouse_pack::model::RegoPolicy;
use gatehouse_pack::rego::PreparedPolicy;
use regorus::Value;
use serde::Serialize;

use super::evaluate::{Ctx, with_evidence};
use super::model::EvidenceItem;
use super::verdict::{Reason, ReasonLevel};
use crate::release::Release;

/// The reasons from every policy of the class, in the order the class lists them.
pub(super) fn assess(ctx: &Ctx<'_>) -> Vec<Reason> {
    if ctx.class.policies.is_empty() {
        return Vec::new();
    }
    let items = ctx.active_items();
    let input = match input_document(ctx, &items) {
        Ok(input) => input,
        Err(error) => {
            return vec![ctx.reason(
                ReasonLevel::Block,
                "policy_error",
                "policies",
                format!("the Rego input document could not be built ({error}); blocked"),
            )];
        }
    };
    let mut reasons = Vec::new();
    for (index, policy) in ctx.class.policies.iter().enumerate() {
        let field = format!("policies[{index}]");
        let named = format!(
            "Rego policy `{}` (`{}`)",
            policy.file.as_str(),
            policy.query.as_str()
        );
        match run(policy, &input) {
            Ok(outcome) => {
                for message in outcome.deny {
                    reasons.push(with_evidence(
                        ctx.reason(
                            ReasonLevel::Block,
                            "policy_deny",
                            field.clone(),
                            format!("{named} denies: {message}"),
                        ),
                        &items,
                    ));
                }
                for message in outcome.warn {
                    reasons.push(with_evidence(
                        ctx.reason(
                            ReasonLevel::Warning,
                            "policy_warn",
                            field.clone(),
                            format!("{named} warns: {message}"),
                        ),
                        &items,
                    ));
                }
            }
            Err(error) => reasons.push(ctx.reason(
                ReasonLevel::Block,
                "policy_error",
                field,
                format!("{named} could not be evaluated, so the release is blocked: {error}"),
            )),
        }
    }
    reasons
}

/// The input document, built as JSON text and parsed by regorus (which shares the keys the 50
/// evidence items repeat): going through a `serde_json::Value` tree instead cost more than
/// the policies' evaluation.
fn input_document(ctx: &Ctx<'_>, items: &[&EvidenceItem]) -> Result<Value, String> {
    #[derive(Serialize)]
    struct Input<'a> {
        class: &'a str,
        now: String,
        release: &'a Release,
        evidence: &'a [&'a EvidenceItem],
    }
    let json = serde_json::to_string(&Input {
        class: ctx.class.id.as_str(),
        now: ctx.now.to_string(),
        release: &ctx.state.release,
        evidence: items,
    })
    .map_err(|e| e.to_string())?;
    Value::from_json_str(&json).map_err(|e| e.to_string())
}

/// Messages one policy produced.
struct Outcome {
    deny: Vec<String>,
    warn: Vec<String>,
}

fn run(policy: &RegoPolicy, input: &Value) -> Result<Outcome, String> {
    let Some(source) = &policy.source else {
        return Err(
            "the policy file was not loaded with the pack (see `gatehouse pack lint`)".into(),
        );
    };
    let prepared = match policy.prepared.as_ref().filter(|p| p.is_for(source)) {
        Some(prepared) => Cow::Borrowed(prepared),
        None => Cow::Owned(
            PreparedPolicy::prepare(policy.file.as_str(), source).map_err(|e| error_text(&e))?,
        ),
    };
    let package = prepared.package();
    let mut engine = prepared.engine();
    // A builtin given bad arguments is an error, not an undefined result that would
    // quietly skip a deny rule.
    engine.set_strict_builtin_errors(true);
    engine.set_input(input.clone());
    let query = policy.query.as_str();
    let deny = engine
        .eval_rule(query.to_owned())
        .map_err(|e| error_text(&e.to_string()))?;
    let deny = messages(&deny).map_err(|what| format!("`{query}` yielded {what}"))?;
    // The sibling `warn` rule, when the policy's own package declares one (a policy without
    // warnings is not an error).
    let warn_query = warn_rule(query).filter(|w| {
        w.rsplit_once('.').is_some_and(|(p, _)| p == package)
            && engine
                .has_declared_rule_rooted_at(policy.file.as_str(), "warn")
                .unwrap_or(false)
    });
    let warn = match warn_query {
        Some(warn_query) => {
            let warn = engine
                .eval_rule(warn_query.clone())
                .map_err(|e| error_text(&e.to_string()))?;
            messages(&warn).map_err(|what| format!("`{warn_query}` yielded {what}"))?
        }
        None => Vec::new(),
    };
    Ok(Outcome { deny, warn })
}

/// `data.pkg.deny` → `data.pkg.warn`; `None` when the query is itself a `warn` rule.
fn warn_rule(query: &str) -> Option<String> {
    let (package, rule) = query.rsplit_once('.')?;
    (rule != "warn").then(|| format!("{package}.warn"))
}

fn error_text(text: &str) -> String {
    let (line, column, message) = gatehouse_pack::rego::locate_error(text);
    if line == 0 {
        message
    } else {
        format!("{message} (line {line}, column {column})")
    }
}

/// The messages in a deny/warn result: a set or array of strings or `{msg: string}` objects.
/// An undefined rule (no message produced) is empty.
fn messages(value: &Value) -> Result<Vec<String>, String> {
    let elements: Vec<&Value> = match value {
        Value::Undefined => return Ok(Vec::new()),
        Value::Set(set) => set.iter().collect(),
        Value::Array(array) => array.iter().collect(),
        other => return Err(format!("{} instead of a set of messages", kind(other))),
    };
    elements
        .into_iter()
        .map(|element| match element {
            Value::String(s) => Ok(s.to_string()),
            Value::Object(fields) => match fields.get(&Value::from("msg")) {
                Some(Value::String(s)) => Ok(s.to_string()),
                _ => Err("an object without a string `msg`".to_owned()),
            },
            other => Err(format!("a {} message", kind(other))),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}
