//! One module per subcommand. Each exposes `Args` (clap) and `run(Args) -> anyhow::Result<ExitCode>`.
//!
//! Exit codes are shared by every command so CI scripts can rely on them.

use std::process::ExitCode;

/// Success / clean / pass.
pub const EXIT_OK: ExitCode = ExitCode::SUCCESS;
/// Findings or a blocked verdict: the command worked, the answer is "no".
#[allow(dead_code)]
pub const EXIT_FINDINGS: ExitCode = ExitCode::from(1);
/// Usage, I/O or connection error: the command could not give an answer.
pub const EXIT_ERROR: ExitCode = ExitCode::from(2);

pub mod backlog;
pub mod evidence;
pub mod export;
pub mod hunt;
pub mod rules;
pub mod trace;
pub mod validate;
pub mod version;
