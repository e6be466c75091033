//! The command line: the contract scripts and operators rely on (see `docs/cli.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Handover: a tamper-evident record of what employees do in the CRM, and their offboarding.
#[derive(Debug, Parser)]
#[command(name = "handover", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct DataArg {
    /// The data directory (or the store file itself).
    #[arg(
        long,
        env = "HANDOVER_DATA",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ledger, its HTTP API and the forensic read side (the embedded default).
    Serve(crate::serve_cmd::ServeArgs),
    /// Run the write side alone, publishing to NATS (`--nats URL` required).
    Ledger(crate::serve_cmd::ServeArgs),
    /// Run the read side alone: consume the stream, verify, serve forensic queries.
    Query(crate::query_cmd::QueryArgs),
    /// Export a leaver's customers, deals or activity (CSV, JSON, NDJSON) from a running Handover.
    Export(crate::leaver_export_cmd::LeaverExportArgs),
    /// Rebuild the read side (DATA/query.redb) from the log.
    Rebuild(crate::rebuild_cmd::RebuildArgs),
    /// Fold a store's events into the projections and report the rate (for `handover bench`).
    #[command(hide = true)]
    ReplayProjections(crate::rebuild_cmd::ReplayArgs),
    /// Manage API tokens (stored hashed in the configuration file).
    Token(crate::token_cmd::TokenArgs),
    /// Append a reproducible, realistic CRM history through the real append path.
    Demo(crate::demo_cmd::DemoArgs),
    /// Walk the hash chain of a store or an export file and report the first bad entry.
    Verify(crate::verify_cmd::VerifyArgs),
    /// Write a range of the log to the documented export file.
    ExportLog(crate::export_cmd::ExportArgs),
    /// Measure everything against its limits in one run (tables, and JSON in target/bench/).
    Bench(crate::bench::BenchArgs),
}

/// Runs the command line and maps the outcome to an exit code: 0 success, 1 a check found a
/// problem, 2 bad usage or unusable input (with a one-line message on stderr).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let outcome = match cli.command {
        Command::Serve(a) => crate::serve_cmd::run(a, true),
        Command::Ledger(a) if a.nats.is_none() => Err(anyhow::anyhow!(
            "handover ledger publishes to NATS: give --nats URL (or HANDOVER_NATS_URL)"
        )),
        Command::Ledger(a) => crate::serve_cmd::run(a, false),
        Command::Query(a) => crate::query_cmd::run(a),
        Command::Rebuild(a) => crate::rebuild_cmd::run(a),
        Command::Export(a) => crate::leaver_export_cmd::run(a),
        Command::ReplayProjections(a) => crate::rebuild_cmd::replay(a),
        Command::Token(a) => crate::token_cmd::run(a),
        Command::Demo(a) => crate::demo_cmd::run(a),
        Command::Verify(a) => crate::verify_cmd::run(a),
        Command::ExportLog(a) => crate::export_cmd::run(a),
        Command::Bench(a) => crate::bench::run(a),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("handover: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
