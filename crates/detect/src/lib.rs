//! gatehouse-detect: a Sigma rule engine.
pub mod condition;
pub mod correlation;
pub mod engine;
pub mod event;
pub mod hunt;
pub mod rule;
pub mod value;
pub mod windows;
pub mod yaml;
