//! HTTP handlers, one module per API area.

pub mod audit;
pub mod events;
pub mod gate;
pub mod gate_metrics;
pub mod gate_schema;
pub mod health;
pub mod pack;
pub mod releases;
pub mod session;
pub mod tokens;
