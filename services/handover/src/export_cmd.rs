//! `handover export-log [--data DIR | --url URL] [--from SEQ] [--to SEQ] --out FILE`.
//!
//! From a store (`--data`, read-only: the ledger must not be running on it), or from a running
//! ledger over HTTP (`--url`, pages of `GET /v1/log` with a token of scope `audit:read` from
//! `HANDOVER_TOKEN`). Either way the file appears only once complete; `handover verify --file`
//! checks it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: crate::cli::DataArg,
    /// Export from a running ledger at this address (http://HOST:PORT) instead of a store; the
    /// token (scope audit:read) comes from HANDOVER_TOKEN.
    #[arg(long, value_name = "URL", conflicts_with = "data")]
    pub url: Option<String>,
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
    if let Some(url) = args.url.clone() {
        let token = std::env::var("HANDOVER_TOKEN").map_err(|_| {
            anyhow::anyhow!("set HANDOVER_TOKEN to a ledger token with the audit:read scope")
        })?;
        let client = query::ledger_client::LedgerClient::new(&url, token)?;
        let tmp = temp_beside(&args.out)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let header = rt.block_on(export_remote(&client, args.from, args.to, tmp.as_file()))?;
        return finish(tmp, &args.out, &header);
    }
    let store = crate::data_dir::existing_store(&args.data.data)?;
    // Write beside the target and rename: a failed export leaves no partial file behind.
    let tmp = temp_beside(&args.out)?;
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
    finish(tmp, &args.out, &summary.header)
}

/// A temporary file beside `out`, after checking `out` can be written there.
pub(crate) fn temp_beside(out: &std::path::Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        anyhow::bail!(
            "{}: the directory {} does not exist",
            out.display(),
            parent.display()
        );
    }
    if out.is_dir() {
        anyhow::bail!("{}: is a directory", out.display());
    }
    tempfile::NamedTempFile::new_in(&parent)
        .map_err(|e| anyhow::anyhow!("{}: cannot write there: {e}", parent.display()))
}

fn finish(
    tmp: tempfile::NamedTempFile,
    out: &std::path::Path,
    h: &proto_types::export::ExportHeader,
) -> anyhow::Result<ExitCode> {
    tmp.as_file().sync_all()?;
    let bytes = tmp.as_file().metadata()?.len();
    tmp.persist(out)
        .map_err(|e| anyhow::anyhow!("{}: {}", out.display(), e.error))?;
    println!(
        "exported {} entries (seq {}..{}) to {}, {} bytes; anchor {}, head {}",
        h.count,
        h.first_seq,
        h.first_seq + h.count,
        out.display(),
        bytes,
        hex::encode(h.anchor),
        hex::encode(h.head)
    );
    Ok(ExitCode::SUCCESS)
}

/// Pages `GET /v1/log` into `file`: the header (rewritten at the end, once the count and the
/// head are known), then the records as the ledger stores them.
async fn export_remote(
    client: &query::ledger_client::LedgerClient,
    from: Option<u64>,
    to: Option<u64>,
    file: &std::fs::File,
) -> anyhow::Result<proto_types::export::ExportHeader> {
    use std::io::{Seek, SeekFrom, Write};
    const PAGE: u64 = 10_000;
    let from = from.unwrap_or(0);
    let first = client
        .log(from, 1)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let next = first
        .ledger_next
        .ok_or_else(|| anyhow::anyhow!("the ledger did not say how long its log is"))?;
    let end = match to {
        Some(t) if t >= next => {
            anyhow::bail!("--to {t} is past the end of the log ({next} entries)")
        }
        Some(t) if t < from => anyhow::bail!("--from {from} is after --to {t}"),
        Some(t) => t + 1,
        None => next,
    };
    let mut header = proto_types::export::ExportHeader {
        first_seq: from,
        count: end - from,
        anchor: first.anchor,
        head: first.anchor,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(&header.encode())?;
    let bar = crate::progress::bar(end - from, "export");
    let mut at = from;
    while at < end {
        let page = client
            .log(at, PAGE.min(end - at))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            !page.entries.is_empty(),
            "the ledger returned no entry at seq {at}"
        );
        for (_, bytes) in &page.entries {
            let len = u32::try_from(bytes.len())?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(bytes)?;
            header.head = *proto_types::EntryRef::parse(bytes)
                .map_err(|e| anyhow::anyhow!("entry {at}: {e}"))?
                .hash();
            at += 1;
        }
        bar.set_position(at - from);
    }
    bar.finish_and_clear();
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header.encode())?;
    Ok(header)
}
