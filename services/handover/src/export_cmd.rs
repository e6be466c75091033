//! `handover export-log [--data DIR] [--from SEQ] [--to SEQ] --out FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: crate::cli::DataArg,
    /// First seq to export (default 0).
    #[arg(long, value_name = "SEQ")]
    pub from: Option<u64>,
    /// Last seq to export, inclusive (default: the head).
    #[arg(long, value_name = "SEQ")]
    pub to: Option<u64>,
    /// The export file to write. It appears only once complete.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// # Errors
/// When the store cannot be read, the range is outside the log, or `--out` cannot be written;
/// `--out` is then left as it was.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = crate::data_dir::existing_store(&args.data.data)?;
    let parent = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        anyhow::bail!(
            "{}: the directory {} does not exist",
            args.out.display(),
            parent.display()
        );
    }
    if args.out.is_dir() {
        anyhow::bail!("{}: is a directory", args.out.display());
    }
    // Write beside the target and rename: a failed export leaves no partial file behind.
    let tmp = tempfile::NamedTempFile::new_in(&parent)
        .map_err(|e| anyhow::anyhow!("{}: cannot write there: {e}", parent.display()))?;
    let bar = crate::progress::bar(0, "export");
    let summary = ledger::reader::export_store(
        &store,
        args.from,
        args.to,
        std::io::BufWriter::with_capacity(1 << 20, tmp.as_file()),
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", store.display()))?;
    bar.finish_and_clear();
    tmp.as_file().sync_all()?;
    tmp.persist(&args.out)
        .map_err(|e| anyhow::anyhow!("{}: {}", args.out.display(), e.error))?;
    let h = &summary.header;
    println!(
        "exported {} entries (seq {}..{}) to {}, {} bytes; anchor {}, head {}",
        h.count,
        h.first_seq,
        h.first_seq + h.count,
        args.out.display(),
        summary.bytes,
        hex::encode(h.anchor),
        hex::encode(h.head)
    );
    Ok(ExitCode::SUCCESS)
}
