//! Where the entries come from: JetStream (a durable pull consumer), or the ledger in the same
//! process (the in-process bus of the embedded default). Both feed the same [`Applier`].
//!
//! JetStream acknowledges a publish before it fsyncs, so an OS crash can lose messages the
//! ledger already counts as published. The consumer therefore trusts the stream for nothing but
//! delivery: a seq past the one it needs means a gap, which it backfills from the ledger
//! (`GET /v1/log`, the stored bytes, verified like the rest); and when the stream is quiet it
//! asks the ledger for anything past its position, so that a lost tail is found too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use ledger::{Ledger, LogReader};
use proto_types::{EntryRef, nats};
use tokio::sync::watch;

use crate::applier::{Applier, Outcome};
use crate::ledger_client::LedgerClient;

/// The applier, shared between its feed and the HTTP handlers that read its status.
pub type SharedApplier = Arc<Mutex<Applier>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where missing entries are fetched from.
#[derive(Clone, Debug)]
pub enum Backfill {
    /// The ledger's store, in this process.
    Local(LogReaderHandle),
    /// A ledger over HTTP.
    Remote(LedgerClient),
    /// Nowhere: a gap stops the applier until the entries arrive.
    None,
}

/// A [`LogReader`] with the ledger's head beside it.
#[derive(Clone)]
pub struct LogReaderHandle {
    pub reader: LogReader,
    pub head: watch::Receiver<u64>,
}

impl std::fmt::Debug for LogReaderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogReaderHandle")
    }
}

impl LogReaderHandle {
    pub fn of(ledger: &Ledger) -> Self {
        Self {
            reader: ledger.reader().clone(),
            head: ledger.head_watch(),
        }
    }
}

impl Backfill {
    /// Up to `limit` entries from `from`, and the ledger's next seq if it said.
    async fn fetch(
        &self,
        from: u64,
        limit: u64,
    ) -> Result<Option<(Vec<(u64, Vec<u8>)>, Option<u64>)>, BoxError> {
        match self {
            Backfill::None => Ok(None),
            Backfill::Local(h) => {
                let reader = h.reader.clone();
                let next = *h.head.borrow();
                let rows =
                    tokio::task::spawn_blocking(move || reader.entries(from, limit as usize))
                        .await??;
                Ok(Some((rows, Some(next))))
            }
            Backfill::Remote(c) => {
                let r = c.log(from, limit).await?;
                Ok(Some((r.entries, r.ledger_next)))
            }
        }
    }
}

/// Applies on a blocking thread (redb commits block).
async fn apply<B: AsRef<[u8]> + Send + Sync + 'static>(
    applier: &SharedApplier,
    entries: Arc<Vec<(u64, B)>>,
    source: &'static str,
) -> Result<Outcome, BoxError> {
    let a = applier.clone();
    Ok(
        tokio::task::spawn_blocking(move || {
            a.lock().expect("applier lock").apply(&entries, source)
        })
        .await??,
    )
}

fn next_seq(applier: &SharedApplier) -> u64 {
    applier.lock().expect("applier lock").next_seq()
}

/// Applies `entries`, filling any gap before them from `backfill`. Returns false once the chain
/// is broken; an error when a gap cannot be filled.
async fn apply_filling_gaps(
    applier: &SharedApplier,
    entries: Vec<(u64, Bytes)>,
    source: &'static str,
    backfill: &Backfill,
) -> Result<bool, BoxError> {
    let entries = Arc::new(entries);
    loop {
        match apply(applier, entries.clone(), source).await? {
            Outcome::Applied { .. } => return Ok(true),
            Outcome::Broken(_) => return Ok(false),
            Outcome::Gap { expected, found } => {
                tracing::warn!(
                    expected,
                    found,
                    "entries missing from the stream; backfilling from the ledger"
                );
                let Some((rows, head)) = backfill
                    .fetch(expected, (found - expected).min(10_000))
                    .await?
                else {
                    // Unacknowledged messages come again: retry from the stream.
                    return Err(format!(
                        "entries {expected} to {found} are missing from the stream and no ledger is configured to backfill from"
                    )
                    .into());
                };
                if let Some(h) = head {
                    applier.lock().expect("applier lock").saw_ledger_head(h);
                }
                if rows.is_empty() {
                    return Err(format!("the ledger has no entry {expected}").into());
                }
                let n = rows.len() as u64;
                // Counted as fetched, before it is applied (and seen applied).
                applier
                    .lock()
                    .expect("applier lock")
                    .metrics()
                    .backfilled(n);
                let outcome = apply(applier, Arc::new(rows), "ledger").await?;
                if matches!(outcome, Outcome::Broken(_)) {
                    return Ok(false);
                }
            }
        }
    }
}

/// Makes what was applied durable (an fsync), on a blocking thread: the runtime's workers go on
/// moving messages meanwhile.
async fn flush(applier: &SharedApplier) -> Result<(), BoxError> {
    let a = applier.clone();
    Ok(tokio::task::spawn_blocking(move || a.lock().expect("applier lock").flush()).await??)
}

/// How long applied entries may wait for a flush while more keep coming.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Entries read from the ledger at once by the in-process bus.
const LOCAL_BATCH: usize = 8192;
/// Entries applied in one transaction at most, when fetches have piled up.
const MAX_APPLY: usize = 16_384;
/// Below this many, the applier waits a moment for more before it commits (under load).
const MIN_APPLY: usize = 8192;
/// At least this many entries at hand (or in the last batch) mean the applier is behind.
const BEHIND: usize = 512;
/// How long it waits then.
const GATHER: Duration = Duration::from_millis(50);

/// The in-process bus: follows the ledger's head and applies what it commits, until `stop`.
pub async fn follow_ledger(
    applier: SharedApplier,
    ledger: LogReaderHandle,
    mut stop: watch::Receiver<bool>,
) {
    let mut head = ledger.head.clone();
    let mut flushed_at = Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        let committed = *head.borrow_and_update();
        applier
            .lock()
            .expect("applier lock")
            .saw_ledger_head(committed);
        let next = next_seq(&applier);
        if next < committed {
            let reader = ledger.reader.clone();
            let rows = match tokio::task::spawn_blocking(move || reader.entries(next, LOCAL_BATCH))
                .await
            {
                Ok(Ok(rows)) => rows,
                other => {
                    tracing::error!(?other, "cannot read the ledger's log; the read side stops");
                    return;
                }
            };
            match apply(&applier, Arc::new(rows), "local").await {
                Ok(Outcome::Applied { .. }) => {
                    if flushed_at.elapsed() >= FLUSH_EVERY {
                        if let Err(e) = flush(&applier).await {
                            tracing::error!(error = %e, "the query store failed; the read side stops");
                            return;
                        }
                        flushed_at = Instant::now();
                    }
                    continue;
                }
                Ok(Outcome::Gap { expected, found }) => {
                    tracing::error!(
                        expected,
                        found,
                        "the ledger's own log has a gap; the read side stops"
                    );
                    return;
                }
                Ok(Outcome::Broken(_)) => {
                    let _ = stop.changed().await;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the query store failed; the read side stops");
                    return;
                }
            }
        }
        // Caught up: make it durable before waiting.
        if let Err(e) = flush(&applier).await {
            tracing::error!(error = %e, "the query store failed; the read side stops");
            return;
        }
        flushed_at = Instant::now();
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// How to consume the stream.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    /// The durable consumer's name (one per query replica).
    pub durable: String,
    /// Messages fetched at once.
    pub batch: usize,
    /// How long a fetch waits on a quiet stream before the ledger is asked for anything newer.
    pub idle: Duration,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            durable: "handover-query".into(),
            batch: 4096,
            idle: Duration::from_millis(500),
        }
    }
}

/// Consumes stream `HANDOVER` until `stop`, reconnecting with backoff.
pub async fn follow_nats(
    applier: SharedApplier,
    config: NatsConfig,
    backfill: Backfill,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    while !*stop.borrow() {
        match consume(&applier, &config, &backfill, &mut stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "consuming the stream failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What the fetching loop hands the applying task.
enum Fetched {
    /// Messages as `(seq, bytes)`, and the last message (acknowledged once they are durable).
    Rows(Vec<(u64, Bytes)>, Box<jetstream::Message>),
    /// The stream was quiet for a whole fetch.
    Quiet,
}

async fn consume(
    applier: &SharedApplier,
    config: &NatsConfig,
    backfill: &Backfill,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), BoxError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(config.url.as_str())
        .await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(nats::STREAM).await?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &config.durable,
            pull::Config {
                durable_name: Some(config.durable.clone()),
                filter_subject: "handover.v1.log.>".into(),
                ack_policy: jetstream::consumer::AckPolicy::All,
                max_ack_pending: 100_000,
                ..Default::default()
            },
        )
        .await?;
    tracing::info!(durable = %config.durable, "consuming stream {}", nats::STREAM);
    // Fetching and applying overlap: while one batch is verified and written, the next arrives.
    let (tx, rx) = tokio::sync::mpsc::channel::<Fetched>(16);
    let worker = tokio::spawn(apply_fetched(applier.clone(), backfill.clone(), rx));
    // A continuous pull: the server keeps up to `batch` messages coming; the loop hands over
    // whatever has arrived, and says when nothing came for `idle`.
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(config.batch)
        .messages()
        .await?;
    let fetching = async {
        loop {
            if *stop.borrow() || tx.is_closed() {
                return Ok::<(), BoxError>(());
            }
            let first = tokio::select! {
                m = tokio::time::timeout(config.idle, messages.next()) => m,
                _ = stop.changed() => return Ok(()),
            };
            let first = match first {
                Err(_) => {
                    if tx.send(Fetched::Quiet).await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
                Ok(None) => return Err("the consumer's message stream ended".into()),
                Ok(Some(m)) => m?,
            };
            let mut rows = Vec::new();
            let mut last = first;
            loop {
                let seq = last
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(nats::SEQ_HEADER))
                    .and_then(|v| v.as_str().parse::<u64>().ok())
                    .or_else(|| EntryRef::parse(&last.payload).ok().map(|e| e.seq()))
                    // An unreadable message takes the place of the next entry: it breaks there.
                    .unwrap_or_else(|| next_seq(applier));
                // The message's own buffer: no copy per entry.
                rows.push((seq, last.payload.clone()));
                if rows.len() >= config.batch {
                    break;
                }
                match messages.next().now_or_never() {
                    Some(Some(m)) => last = m?,
                    _ => break,
                }
            }
            if tx.send(Fetched::Rows(rows, Box::new(last))).await.is_err() {
                return Ok(());
            }
        }
    };
    let fetched = fetching.await;
    drop(tx);
    let applied = worker.await?;
    fetched?;
    applied
}

/// Applies what the fetching loop hands over, fills gaps from `backfill`, and acknowledges the
/// stream once what it applied is durable.
async fn apply_fetched(
    applier: SharedApplier,
    backfill: Backfill,
    mut rx: tokio::sync::mpsc::Receiver<Fetched>,
) -> Result<(), BoxError> {
    let mut unacked: Option<Box<jetstream::Message>> = None;
    let mut flushed_at = Instant::now();
    let mut held: Option<Fetched> = None;
    let mut last_batch = 0;
    loop {
        let item = match held.take() {
            Some(i) => i,
            None => match rx.recv().await {
                Some(i) => i,
                None => break,
            },
        };
        match item {
            Fetched::Rows(mut rows, mut last) => {
                // Whatever arrived while the last batch was applied goes into one transaction.
                // Behind (the last batch was large, or much is queued already), wait a moment
                // for a batch worth a transaction: each commit rewrites every index page it
                // touched, so a few large ones cost less than many small ones. A light load is
                // applied at once, for a short lag.
                let mut deadline: Option<Instant> = None;
                while rows.len() < MAX_APPLY {
                    let next = match rx.try_recv() {
                        Ok(item) => Some(item),
                        Err(_) if rows.len() < MIN_APPLY => {
                            let behind = last_batch >= BEHIND || rows.len() >= BEHIND;
                            let until = *deadline.get_or_insert_with(|| Instant::now() + GATHER);
                            if !behind || Instant::now() >= until {
                                break;
                            }
                            tokio::time::timeout_at(until.into(), rx.recv())
                                .await
                                .ok()
                                .flatten()
                        }
                        Err(_) => None,
                    };
                    match next {
                        Some(Fetched::Rows(more, m)) => {
                            rows.extend(more);
                            last = m;
                        }
                        Some(quiet) => {
                            held = Some(quiet);
                            break;
                        }
                        None => break,
                    }
                }
                last_batch = rows.len();
                let top = rows.iter().map(|(s, _)| *s).max().unwrap_or(0);
                applier
                    .lock()
                    .expect("applier lock")
                    .saw_ledger_head(top + 1);
                if !apply_filling_gaps(&applier, rows, "nats", &backfill).await? {
                    // Broken (or a gap nothing can fill): apply nothing more, ack nothing more.
                    flush(&applier).await?;
                    return Ok(());
                }
                unacked = Some(last);
            }
            Fetched::Quiet => {
                // A quiet stream: ask the ledger whether it holds more than we have.
                let next = next_seq(&applier);
                let fetched = backfill.fetch(next, 1024).await.unwrap_or_else(|e| {
                    tracing::debug!(error = %e, "the ledger could not be asked for its head");
                    None
                });
                if let Some((more, head)) = fetched {
                    if let Some(h) = head {
                        applier.lock().expect("applier lock").saw_ledger_head(h);
                    }
                    if !more.is_empty() {
                        let n = more.len() as u64;
                        tracing::warn!(
                            from = next,
                            n,
                            "the stream lacks entries the ledger holds; backfilling"
                        );
                        // Counted as fetched, before it is applied (and seen applied).
                        applier
                            .lock()
                            .expect("applier lock")
                            .metrics()
                            .backfilled(n);
                        apply(&applier, Arc::new(more), "ledger").await?;
                    }
                }
            }
        }
        // Durable, then acknowledged: when the stream goes quiet, or every FLUSH_EVERY under load.
        if unacked.is_some()
            && ((rx.is_empty() && held.is_none()) || flushed_at.elapsed() >= FLUSH_EVERY)
        {
            flush(&applier).await?;
            flushed_at = Instant::now();
            if let Some(m) = unacked.take() {
                // AckPolicy::All: this acknowledges every message before it too.
                m.ack().await?;
            }
        }
    }
    flush(&applier).await?;
    if let Some(m) = unacked {
        m.ack().await?;
    }
    Ok(())
}
