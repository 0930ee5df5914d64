//! The `gatehouse` binary: parses the command line, picks adapters (store, clock, HTTP client)
//! and hands control to a command. Each command lives in its own module under `commands/`.

mod client;
mod commands;
mod detection;
mod identity;
mod logging;
mod output;
mod runtime;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A self-hosted security release gate and security-operations control plane.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print version information.
    Version(commands::version::Args),
    /// Start the server with the example pack, demo records and an admin token (start here).
    Demo(commands::demo::Args),
    /// Run the HTTP API over a policy pack and a store.
    Serve(commands::serve::Args),
    /// Write the example policy pack into a folder.
    Init(commands::init::Args),
    /// Check a policy pack and report every finding (exit 0 clean, 1 findings, 2 error).
    Lint(commands::lint::Args),
    /// Print the JSON Schema of policy pack documents.
    Schema(commands::schema::Args),
    /// Offline administration of the data directory (`admin bootstrap`: first admin token).
    Admin(commands::admin::Args),
    /// The tamper-evident audit log, offline (`audit export FILE`, `audit verify FILE`).
    Audit(commands::audit::Args),
    /// Key-encryption keys of evidence encryption at rest (generate, rotate, list).
    Keys(commands::keys::Args),
    /// Release records on a running server (list, show, create, approve, reject, memo).
    Release(commands::release::Args),
    /// Local people who sign in with a password, offline on the data directory (add, list,
    /// disable).
    User(commands::user::Args),
    /// API tokens on a running server (create, list, revoke).
    Token(commands::token::Args),
    /// The pack a running server enforces (status, reload).
    Pack(commands::pack::Args),
    /// Evidence tools (`evidence inspect --kind KIND FILE`: parse offline, print the facts;
    /// `evidence add REL --kind KIND FILE`: attach to a release on a server).
    Evidence(commands::evidence::Args),
    /// The release gate on a running server (check, approve, reject, except, requirement,
    /// risk, bypass, memo, metrics).
    Gate(commands::gate::Args),
    /// Run Sigma rules over JSON / JSON-lines event files (offline hunting).
    Hunt(commands::hunt::Args),
    /// Sigma rule tools (`rules check DIR`: coverage report).
    Rules(commands::rules::Args),
    /// Send NDJSON events to a running server (`ingest FILE|-`).
    Ingest(commands::ingest::Args),
    /// Signals raised by Sigma rules over ingested events (`signals list`).
    Signals(commands::signals::Args),
    /// Check a document against its specification (e.g. `validate sabsa-l6 FILE`).
    Validate(commands::validate::Args),
    /// Render documents from the pack (e.g. `export sabsa-l6`).
    Export(commands::export::Args),
    /// Show the traceability graph, coverage matrix and suspect links of the pack.
    Trace(commands::trace::Args),
    /// List the improvement backlog by priority score.
    Backlog(commands::backlog::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Version(args) => commands::version::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Init(args) => commands::init::run(args),
        Command::Lint(args) => commands::lint::run(args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Admin(args) => commands::admin::run(args),
        Command::Audit(args) => commands::audit::run(args),
        Command::Keys(args) => commands::keys::run(args),
        Command::User(args) => commands::user::run(args),
        Command::Token(args) => commands::token::run(args),
        Command::Release(args) => commands::release::run(args),
        Command::Pack(args) => commands::pack::run(args),
        Command::Evidence(args) => commands::evidence::run(args),
        Command::Gate(args) => commands::gate::run(args),
        Command::Hunt(args) => commands::hunt::run(args),
        Command::Rules(args) => commands::rules::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Signals(args) => commands::signals::run(args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Trace(args) => commands::trace::run(args),
        Command::Backlog(args) => commands::backlog::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            // The binary edge: print the whole context chain, never a panic.
            eprintln!("error: {err:#}");
            commands::exit_error()
        }
    }
}
