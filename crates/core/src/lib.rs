//! gatehouse-core: the domain of gatehouse and the ports its adapters implement.
//!
//! This crate is pure: it performs no I/O and never reads the wall clock. Time enters as a
//! [`clock::Clock`] or a `jiff::Timestamp` argument so that every decision (token expiry, release
//! timestamps, later gate verdicts) is reproducible in tests. Persistence is reached only through
//! the [`store::Store`] port, implemented by `gatehouse-store` for SQLite and PostgreSQL.

pub mod audit;
pub mod audit_log;
pub mod authz;
pub mod blobs;
pub mod clock;
pub mod credential;
pub mod events;
pub mod gate;
pub mod identity;
pub mod identity_store;
pub mod password;
pub mod random;
pub mod release;
pub mod session;
pub mod store;
