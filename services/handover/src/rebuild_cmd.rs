//! `handover rebuild --data DIR`: rebuilds the read side — the query store's verified copy of
//! the log, its indexes and its read models (`DATA/query.redb`) — from the ledger's log, with a
//! progress bar. The new store is built beside the old one and replaces it only when complete;
//! a log that does not verify stops the rebuild (exit 1) and leaves the old store as it was.
//! (The ledger's own projections need no command: they are rebuilt from the log at every start.)
//! Run it with the ledger and the query service stopped.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use query::applier::Outcome;
use query::store::IntegrityBreak;

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub data: crate::cli::DataArg,
    /// Print the result as one JSON object (entries, seconds, entries_per_s, peak_rss_bytes).
    #[arg(long)]
    pub json: bool,
    /// The configuration file (default: DATA/handover.toml): the anomaly thresholds.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `handover replay-projections --store FILE` (hidden; for `handover bench`): folds every event
/// of a store into the projections, one core, and prints one JSON object: events, seconds,
/// events_per_s, peak_rss_bytes.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[arg(long, value_name = "FILE")]
    pub store: std::path::PathBuf,
}

/// # Errors
/// An unusable store, or an entry that does not decode.
pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut state = projections::State::default();
    let mut bad = None;
    let n =
        ledger::reader::for_each_entry(
            &args.store,
            |seq, bytes| match proto_types::EntryRef::parse(bytes)
                .map_err(|e| e.to_string())
                .and_then(|e| proto_types::Event::decode(e.payload()).map_err(|e| e.to_string()))
            {
                Ok(event) => {
                    state.apply(&event);
                    true
                }
                Err(e) => {
                    bad = Some(format!("entry {seq}: {e}"));
                    false
                }
            },
        )?;
    if let Some(b) = bad {
        anyhow::bail!("{}: {b}", args.store.display());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "events": n,
            "seconds": secs,
            "events_per_s": n as f64 / secs.max(1e-9),
            "peak_rss_bytes": peak_memory(),
            "employees": state.directory.len(),
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// Entries applied per transaction.
const BATCH: usize = 8192;

/// Applies one batch: `Ok(Some(break))` when the chain breaks in it.
fn apply(
    read: &query::ReadSide,
    batch: &mut Vec<(u64, Vec<u8>)>,
) -> Result<Option<IntegrityBreak>, anyhow::Error> {
    let outcome = read
        .applier
        .lock()
        .expect("applier lock")
        .apply(batch, "local");
    batch.clear();
    match outcome? {
        Outcome::Applied { .. } => Ok(None),
        Outcome::Broken(b) => Ok(Some(b)),
        Outcome::Gap { expected, found } => {
            anyhow::bail!("the log skips from {expected} to {found}")
        }
    }
}

/// # Errors
/// An unusable data directory or store (exit 2).
pub fn run(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let ledger = crate::data_dir::existing_store(&args.data.data)?;
    let target = ledger.with_file_name(query::store::STORE_FILE);
    let building = ledger.with_file_name(format!("{}.rebuilding", query::store::STORE_FILE));
    let _ = std::fs::remove_file(&building);
    let dir = ledger.parent().unwrap_or(std::path::Path::new("."));
    let cfg = crate::config::load(&crate::config::path(dir, args.config.as_deref()))?;
    let read = query::ReadSide::open_with(&building, cfg.anomalies.clone())?;
    let started = Instant::now();
    let total = ledger::store::open_read_only(&ledger)?.1.next_seq;
    let bar = crate::progress::bar(total, "rebuild");
    let mut batch: Vec<(u64, Vec<u8>)> = Vec::with_capacity(BATCH);
    // The first thing that stops the rebuild: an error, or a break in the chain.
    let mut stopped: Result<Option<IntegrityBreak>, anyhow::Error> = Ok(None);
    let mut done = 0;
    ledger::reader::for_each_entry(&ledger, |seq, bytes| {
        batch.push((seq, bytes.to_vec()));
        done += 1;
        if batch.len() == BATCH {
            bar.set_position(done);
            stopped = apply(&read, &mut batch);
            return matches!(stopped, Ok(None));
        }
        true
    })?;
    if !batch.is_empty() && matches!(stopped, Ok(None)) {
        stopped = apply(&read, &mut batch);
    }
    bar.finish_and_clear();
    let broken = match stopped {
        Ok(b) => b,
        Err(e) => {
            drop(read);
            let _ = std::fs::remove_file(&building);
            return Err(e);
        }
    };
    let mut applier = read.applier.lock().expect("applier lock");
    if let Some(b) = broken {
        drop(applier);
        drop(read);
        let _ = std::fs::remove_file(&building);
        println!(
            "the log is broken at seq {}: {}; {} left as it was",
            b.seq,
            b.detail,
            target.display()
        );
        return Ok(ExitCode::from(1));
    }
    applier.flush()?;
    let applied = applier.next_seq();
    drop(applier);
    drop(read);
    std::fs::rename(&building, &target)
        .map_err(|e| anyhow::anyhow!("{}: {e}", target.display()))?;
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "entries": applied,
                "seconds": secs,
                "entries_per_s": applied as f64 / secs.max(1e-9),
                "peak_rss_bytes": peak_memory(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "rebuilt {} from {applied} entries in {secs:.1} s ({:.0} entries/s); peak memory {}",
        target.display(),
        applied as f64 / secs.max(1e-9),
        peak_memory().map_or_else(
            || "unknown".into(),
            |m| format!("{:.0} MiB", m as f64 / 1048576.0)
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// The process's peak resident memory in bytes (Linux: `VmHWM`).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
