//! `handover bench` (filled in below).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// # Errors
/// Never yet.
pub fn run(_a: BenchArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
