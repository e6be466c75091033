//! `handover export --employee ID [--what customers|deals|activity] [--format csv|json|ndjson]
//! [--days N] --out FILE [--url URL]`: a leaver's data, from a running Handover (the forensic
//! API: `handover serve`, or `handover query`), streamed to a file that appears only once
//! complete. The token (scope `audit:read`) comes from `HANDOVER_TOKEN`; the export is recorded
//! in the log like every forensic read.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
    Ndjson,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportWhat {
    Customers,
    Deals,
    Activity,
}

#[derive(Debug, Args)]
pub struct LeaverExportArgs {
    /// The employee whose data to export.
    #[arg(long, value_name = "ID")]
    pub employee: String,
    #[arg(long, value_enum, default_value = "customers")]
    pub what: ExportWhat,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Customers owned, deals held, actions done within the last N days (customers owned now
    /// are always in).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where the forensic API answers.
    #[arg(
        long,
        env = "HANDOVER_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub url: String,
}

/// # Errors
/// Bad usage, an unreachable service, a refused export (exit 2); `--out` is then untouched.
pub fn run(args: LeaverExportArgs) -> anyhow::Result<ExitCode> {
    let token = std::env::var("HANDOVER_TOKEN")
        .map_err(|_| anyhow::anyhow!("set HANDOVER_TOKEN to a token with the audit:read scope"))?;
    let client = query::ledger_client::LedgerClient::new(&args.url, token)?;
    let name = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    let mut employee = String::new();
    for b in args.employee.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            employee.push(b as char);
        } else {
            employee.push_str(&format!("%{b:02X}"));
        }
    }
    let path = format!(
        "/v1/employees/{employee}/export?format={}&what={}&days={}",
        name(&args.format),
        name(&args.what),
        args.days
    );
    let tmp = crate::export_cmd::temp_beside(&args.out)?;
    let mut file = std::io::BufWriter::new(tmp.as_file());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(client.download(&path, &mut file))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::io::Write::flush(&mut file)?;
    drop(file);
    tmp.as_file().sync_all()?;
    let bytes = tmp.as_file().metadata()?.len();
    tmp.persist(&args.out)
        .map_err(|e| anyhow::anyhow!("{}: {}", args.out.display(), e.error))?;
    println!(
        "exported the {} of {} to {} ({bytes} bytes)",
        name(&args.what),
        args.employee,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
