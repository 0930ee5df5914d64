//! gatehouse-detect: a Sigma rule engine, pure (no async runtime, no database).
//!
//! Security teams write and share detections as Sigma rules; this crate runs them, offline
//! over files (`gatehouse hunt`) and online over ingested events (the server), with one
//! compiled plan. The path of a rule: [`yaml`] (YAML with line numbers) → [`rule`] (Sigma
//! documents: detection rules, correlations, filters; [`condition`] and [`value`] for the
//! condition language and the value modifiers) → [`engine`] (the compiled, shared plan) →
//! [`event`] (binding JSON event values to rule fields, [`windows`] for event-log mappings,
//! [`mapping`] for the declared event sources and their field mappings).
//! [`hunt`] reads files, [`correlation`] evaluates correlation rules over matches, and
//! [`stream`] turns matches of a live stream into signals. See `docs/detect.md`.
pub mod condition;
pub mod correlation;
pub mod engine;
pub mod event;
pub mod hunt;
pub mod json;
pub mod mapping;
pub mod rule;
pub mod stream;
pub mod value;
pub mod windows;
pub mod yaml;
