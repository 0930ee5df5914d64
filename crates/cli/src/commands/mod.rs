//! One module per subcommand. Each exposes `Args` (clap) and `run(Args) -> anyhow::Result<ExitCode>`.
//!
//! Exit codes are shared by every command so CI scripts can rely on them.

use std::process::ExitCode;

/// Success / clean / pass.
pub const EXIT_OK: ExitCode = ExitCode::SUCCESS;
/// Findings or a blocked verdict: the command worked, the answer is "no" (exit status 1).
pub const EXIT_FINDINGS: ExitCode = ExitCode::FAILURE;
/// Usage, I/O or connection error: the command could not give an answer (exit status 2).
///
/// A function because `ExitCode::from` is not `const`; only 0 and 1 have constants.
pub fn exit_error() -> ExitCode {
    ExitCode::from(2)
}

pub mod admin;
pub mod audit;
pub mod backlog;
pub mod demo;
pub mod evidence;
pub mod evidence_add;
pub mod export;
pub mod gate;
pub mod hunt;
pub mod ingest;
pub mod init;
pub mod keys;
pub mod lint;
pub mod pack;
pub mod release;
pub mod rules;
pub mod schema;
pub mod serve;
pub mod signals;
pub mod token;
pub mod trace;
pub mod user;
pub mod validate;
pub mod version;
