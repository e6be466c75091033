//! `handover verify (--data DIR | --file EXPORT) [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use proto_types::chain::{ChainBreak, Hash32};
use serde_json::json;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The data directory (or store file) to verify.
    #[arg(
        long,
        env = "HANDOVER_DATA",
        default_value = "./data",
        value_name = "DIR",
        conflicts_with = "file"
    )]
    pub data: PathBuf,
    /// An export file (from `handover export-log`) to verify instead of a store.
    #[arg(long, value_name = "EXPORT")]
    pub file: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// What a verification found, whatever was verified.
struct Outcome {
    source: String,
    first_seq: u64,
    verified: u64,
    head_hash: Hash32,
    broken: Option<ChainBreak>,
}

/// # Errors
/// When the input cannot be read as a store or an export (exit 2).
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let outcome = if let Some(file) = &args.file {
        let f = std::fs::File::open(file)
            .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), io_reason(&e)))?;
        let bar = crate::progress::bar(0, "verify");
        let report = proto_types::export::verify_export(
            std::io::BufReader::with_capacity(1 << 20, f),
            |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            },
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        bar.finish_and_clear();
        Outcome {
            source: file.display().to_string(),
            first_seq: report.header.first_seq,
            verified: report.verified,
            head_hash: report.head_hash,
            broken: report.broken,
        }
    } else {
        let store = crate::data_dir::existing_store(&args.data)?;
        let bar = crate::progress::bar(0, "verify");
        let report = ledger::reader::verify_store(&store, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        Outcome {
            source: store.display().to_string(),
            first_seq: 0,
            verified: report.verified,
            head_hash: report.head_hash,
            broken: report.broken,
        }
    };
    let head_seq = (outcome.verified > 0).then(|| outcome.first_seq + outcome.verified - 1);
    if args.json {
        let b = outcome.broken.as_ref();
        println!(
            "{}",
            json!({
                "ok": b.is_none(),
                "source": outcome.source,
                "first_seq": outcome.first_seq,
                "entries": outcome.verified,
                "head_seq": head_seq,
                "head_hash": hex::encode(outcome.head_hash),
                "first_bad_seq": b.map(|b| b.seq),
                "problem": b.map(|b| b.kind.code()),
                "detail": b.map(|b| b.to_string()),
            })
        );
    } else {
        match (&outcome.broken, head_seq) {
            (None, Some(h)) => println!(
                "ok: {} entries verified in {}; head seq {h}, head hash {}",
                outcome.verified,
                outcome.source,
                hex::encode(outcome.head_hash)
            ),
            (None, None) => println!("ok: {} holds no entries", outcome.source),
            (Some(b), _) => println!(
                "BROKEN: {} — first bad entry is seq {}: {}. {} entries before it verified.",
                outcome.source, b.seq, b.kind, outcome.verified
            ),
        }
    }
    Ok(if outcome.broken.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
