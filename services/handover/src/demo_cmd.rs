//! `handover demo`: appends a [`crate::demo`] history through the real append path.

use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use ledger::{Ledger, LogStore, NewEntry, WriterConfig};

use crate::demo::{DemoConfig, DemoGenerator};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub data: crate::cli::DataArg,
    /// Employees in the simulated sales organisation.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub employees: u32,
    /// Customer records.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub customers: u32,
    /// Simulated days of activity.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,
    /// Seed: the same seed gives the same history.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print `SEQ HASH EVENT_ID` for each acknowledged event, as soon as it is acknowledged.
    #[arg(long)]
    pub print_acks: bool,
    /// Events per append request.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
}

/// Requests kept in flight, so that the writer always has the next group ready.
const IN_FLIGHT: usize = 8;

/// # Errors
/// When the store cannot be opened or a write fails.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let path = crate::data_dir::store_for_writing(&args.data.data)?;
    let store = LogStore::open_or_create(&path)?;
    let start = store.head().next_seq;
    // Ids name the seed and the position the run starts from: a rerun into the same store appends
    // a new history after the head instead of being taken for a retry of the first.
    let generator = DemoGenerator::new(DemoConfig {
        employees: args.employees,
        customers: args.customers,
        days: args.days,
        seed: args.seed,
        id_prefix: Some(format!("demo-s{}-h{start}", args.seed)),
    });
    let planted = generator.planted_exporter().cloned();
    let (ledger, writer) = Ledger::start(store, WriterConfig::default())?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let result = rt.block_on(append_all(
        &ledger,
        generator,
        args.batch as usize,
        args.print_acks,
    ));
    drop(ledger);
    writer.join();
    let (count, head) = result?;
    let summary = match head {
        Some((seq, hash)) => format!(
            "appended {count} events (seq {start}..={seq}) to {}; head hash {}{}",
            path.display(),
            hex::encode(hash),
            planted
                .map(|e| format!(
                    "; planted case: {e} exports the customer list in the notice period"
                ))
                .unwrap_or_default()
        ),
        None => "appended no events".to_string(),
    };
    // With --print-acks, stdout carries only ack lines.
    if args.print_acks {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn append_all(
    ledger: &Ledger,
    generator: DemoGenerator,
    batch: usize,
    print_acks: bool,
) -> anyhow::Result<(u64, Option<(u64, [u8; 32])>)> {
    let bar = crate::progress::bar(0, "demo");
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut pending: VecDeque<(Vec<String>, ledger::writer::PendingAck)> = VecDeque::new();
    let mut count = 0u64;
    let mut head = None;
    let mut events = generator;
    loop {
        let chunk: Vec<_> = events.by_ref().take(batch).collect();
        let done = chunk.is_empty();
        if !done {
            let ids = chunk
                .iter()
                .map(|e| e.id.as_ref().map(ToString::to_string).unwrap_or_default())
                .collect();
            let entries = chunk
                .iter()
                .map(NewEntry::from_event)
                .collect::<Result<Vec<_>, _>>()?;
            pending.push_back((ids, ledger.submit(entries).await?));
        }
        while pending.len() >= IN_FLIGHT || (done && !pending.is_empty()) {
            let (ids, ack) = pending.pop_front().expect("non-empty");
            let acks = ack
                .await
                .map_err(|_| anyhow::anyhow!("the ledger writer stopped"))??;
            if print_acks {
                for (a, id) in acks.iter().zip(&ids) {
                    writeln!(stdout, "{} {} {id}", a.seq, hex::encode(a.hash))?;
                }
                stdout.flush()?;
            }
            count += acks.len() as u64;
            if let Some(last) = acks.last() {
                head = Some((last.seq, last.hash));
            }
            bar.inc(acks.len() as u64);
        }
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    Ok((count, head))
}
