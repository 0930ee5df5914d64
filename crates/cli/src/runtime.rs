//! The async runtime for commands that do network or database I/O.
//!
//! Commands stay plain `fn run(Args) -> Result<ExitCode>`; the few that need async build a
//! runtime here, so offline commands (`lint`, `schema`, `init`) never start one.

use std::future::Future;

use anyhow::Context;

/// Runs `future` to completion on a multi-threaded tokio runtime.
pub fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}
