//! The outbox publisher: every committed entry, in seq order, to the JetStream stream `HANDOVER`
//! on `handover.v1.log.<kind>` (payload: the entry's stored bytes; `Nats-Msg-Id`: the entry hash;
//! `Handover-Seq`: the seq), and departure-related entries also as CloudEvents on
//! `handover.v1.departures`.
//!
//! The cursor (the first seq not yet acknowledged by JetStream) lives in the store's `meta` table
//! and moves only after JetStream's acks. Publishing is pipelined: many acks are in flight, and
//! they are awaited in order. When NATS is away the ledger goes on accepting writes; the publisher
//! retries with backoff and catches up. A crash between publish and cursor update resends a few
//! entries, which JetStream drops as duplicates within its duplicate window (the `Nats-Msg-Id`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use bytes::Bytes;
use proto_types::chain::{EntryRef, Hash32};
use proto_types::event::kind_name_of;
use proto_types::ids::EmployeeId;
use proto_types::{Event, nats};
use tokio::sync::watch;

use crate::writer::Ledger;

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// NATS server URL(s), e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// JetStream drops a resent message with a `Nats-Msg-Id` seen within this window.
    pub duplicate_window: Duration,
    /// How long the stream keeps messages (zero: forever).
    pub max_age: Duration,
    /// The stream's size limit in bytes (-1: none).
    pub max_bytes: i64,
    /// Stream replicas (3 on a cluster).
    pub replicas: usize,
    /// Acks awaited at once.
    pub max_in_flight: usize,
}

impl OutboxConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            duplicate_window: Duration::from_secs(10 * 60),
            max_age: Duration::ZERO,
            max_bytes: -1,
            replicas: 1,
            max_in_flight: 512,
        }
    }
}

/// A running publisher.
pub struct Publisher {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    published: watch::Receiver<u64>,
}

impl Publisher {
    /// Starts publishing from the stored cursor.
    pub fn start(ledger: Ledger, config: OutboxConfig) -> Publisher {
        let (stop, stop_rx) = watch::channel(false);
        let (published_tx, published) = watch::channel(0);
        let task = tokio::spawn(run(ledger, config, stop_rx, published_tx));
        Publisher {
            stop,
            task,
            published,
        }
    }

    /// The first seq not yet acknowledged by JetStream, as it moves.
    pub fn published(&self) -> watch::Receiver<u64> {
        self.published.clone()
    }

    /// Stops after the acks in flight, and records the cursor.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(
    ledger: Ledger,
    config: OutboxConfig,
    mut stop: watch::Receiver<bool>,
    published: watch::Sender<u64>,
) {
    let reader = ledger.reader().clone();
    let mut cursor = match tokio::task::spawn_blocking(move || reader.outbox_cursor()).await {
        Ok(Ok(c)) => c,
        other => {
            tracing::error!(?other, "cannot read the outbox cursor; not publishing");
            return;
        }
    };
    published.send_replace(cursor);
    let mut backoff = Duration::from_millis(100);
    while !*stop.borrow() {
        let js = match connect(&config).await {
            Ok(js) => js,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "NATS unavailable; the ledger keeps accepting writes");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        match pump(&js, &ledger, &config, &mut cursor, &mut stop, &published).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, cursor, "publishing interrupted; resuming from the cursor");
            }
        }
    }
    let _ = ledger.advance_outbox(cursor).await;
}

async fn connect(config: &OutboxConfig) -> Result<jetstream::Context, BoxError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(config.url.as_str())
        .await?;
    let js = jetstream::new(client);
    js.create_or_update_stream(jetstream::stream::Config {
        name: nats::STREAM.to_string(),
        subjects: vec![nats::STREAM_SUBJECTS.to_string()],
        storage: jetstream::stream::StorageType::File,
        duplicate_window: config.duplicate_window,
        max_age: config.max_age,
        max_bytes: config.max_bytes,
        num_replicas: config.replicas,
        ..Default::default()
    })
    .await?;
    Ok(js)
}

/// Publishes from `cursor` until stopped (Ok) or until NATS fails (Err, to reconnect).
///
/// Acks stay in flight across reads of the log (up to `max_in_flight`); the cursor follows the
/// acks: once the ack of a message of entry `s` is in, every entry below `s` is out (messages go
/// out in seq order, an entry's CloudEvent right after its log message).
async fn pump(
    js: &jetstream::Context,
    ledger: &Ledger,
    config: &OutboxConfig,
    cursor: &mut u64,
    stop: &mut watch::Receiver<bool>,
    published: &watch::Sender<u64>,
) -> Result<(), BoxError> {
    let mut head = ledger.head_watch();
    let mut reported = *cursor;
    let mut reported_at = Instant::now();
    // The next seq to send (ahead of `cursor` by what is in flight).
    let mut next = *cursor;
    let mut inflight: VecDeque<(u64, PublishAckFuture)> = VecDeque::new();
    loop {
        if *stop.borrow() {
            // Settle what is in flight, so that the cursor recorded at stop is exact.
            while let Some((s, ack)) = inflight.pop_front() {
                count(ledger, &ack.await?);
                *cursor = (*cursor).max(s);
            }
            *cursor = next;
            return Ok(());
        }
        let committed = *head.borrow_and_update();
        if next >= committed {
            // Everything committed is sent: collect the acks, record the cursor, wait for more.
            while let Some((s, ack)) = inflight.pop_front() {
                count(ledger, &ack.await?);
                *cursor = (*cursor).max(s);
            }
            *cursor = next;
            note(ledger, published, *cursor);
            if reported != *cursor {
                ledger.advance_outbox(*cursor).await?;
                reported = *cursor;
                reported_at = Instant::now();
            }
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return Ok(()) },
                _ = stop.changed() => {},
            }
            continue;
        }
        let reader = ledger.reader().clone();
        let from = next;
        // Owned as `Bytes`, so that each publish shares the bytes read instead of copying them.
        let batch: Vec<(u64, Bytes)> =
            tokio::task::spawn_blocking(move || reader.entries(from, 1024))
                .await??
                .into_iter()
                .map(|(seq, bytes)| (seq, Bytes::from(bytes)))
                .collect();
        // Most entries need only their kind (the subject) and hash: the rest of the event is
        // decoded only for the few that also become CloudEvents.
        let heads: Vec<(&'static str, Hash32)> = batch
            .iter()
            .map(|(seq, bytes)| {
                let entry = EntryRef::parse(bytes).map_err(|e| format!("entry {seq}: {e}"))?;
                let name =
                    kind_name_of(entry.payload()).map_err(|e| format!("entry {seq}: {e}"))?;
                Ok((name, *entry.hash()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        for (i, ((seq, bytes), (name, hash))) in batch.iter().zip(&heads).enumerate() {
            let msg = PublishMessage::build()
                .payload(bytes.clone())
                .message_id(hex::encode(hash))
                .header(nats::SEQ_HEADER, seq.to_string().as_str());
            inflight.push_back((*seq, js.send_publish(nats::log_subject(name), msg).await?));
            if nats::CLOUD_EVENT_KINDS.contains(name) {
                let event = decode(*seq, bytes)?;
                let successors = successors_after(ledger, &batch, i, &event).await?;
                if let Some(ce) = nats::cloud_event(*seq, hash, &event, &successors) {
                    let msg = PublishMessage::build()
                        .payload(Bytes::from(ce.to_string()))
                        .message_id(nats::cloud_event_id(hash))
                        .header("Content-Type", "application/cloudevents+json");
                    inflight.push_back((*seq, js.send_publish(nats::DEPARTURES, msg).await?));
                }
            }
            while inflight.len() >= config.max_in_flight {
                let (s, ack) = inflight.pop_front().expect("non-empty");
                count(ledger, &ack.await?);
                *cursor = (*cursor).max(s);
            }
            next = seq + 1;
        }
        note(ledger, published, *cursor);
        if *cursor - reported >= 4096 || reported_at.elapsed() >= Duration::from_millis(200) {
            ledger.advance_outbox(*cursor).await?;
            reported = *cursor;
            reported_at = Instant::now();
        }
    }
}

/// Makes the cursor visible: to watchers, and in the metrics.
fn note(ledger: &Ledger, published: &watch::Sender<u64>, cursor: u64) {
    published.send_if_modified(|p| {
        let moved = *p != cursor;
        *p = cursor;
        moved
    });
    ledger
        .metrics()
        .outbox_cursor
        .store(cursor, std::sync::atomic::Ordering::Relaxed);
}

fn count(ledger: &Ledger, ack: &async_nats::jetstream::publish::PublishAck) {
    let m = ledger.metrics();
    m.outbox_published
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if ack.duplicate {
        m.outbox_duplicates
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The event of a stored entry.
fn decode(seq: u64, bytes: &[u8]) -> Result<Event, String> {
    let entry = EntryRef::parse(bytes).map_err(|e| format!("entry {seq}: {e}"))?;
    Event::decode(entry.payload()).map_err(|e| format!("entry {seq}: {e}"))
}

/// The successors the handover plan following a departure names (same commit, a few entries on).
async fn successors_after(
    ledger: &Ledger,
    batch: &[(u64, Bytes)],
    i: usize,
    event: &Event,
) -> Result<Vec<EmployeeId>, BoxError> {
    let proto_types::event::EventKind::EmployeeDeparted { employee, .. } = &event.kind else {
        return Ok(Vec::new());
    };
    for (seq, bytes) in &batch[i + 1..] {
        if let Some(s) = nats::planned_successors(&decode(*seq, bytes)?, employee) {
            return Ok(s);
        }
    }
    // The plan lies past this batch: read a little further.
    let reader = ledger.reader().clone();
    let from = batch[i].0 + 1;
    let more = tokio::task::spawn_blocking(move || reader.entries(from, 64)).await??;
    for (_, bytes) in more {
        if let Ok(entry) = EntryRef::parse(&bytes)
            && let Ok(e) = Event::decode(entry.payload())
            && let Some(s) = nats::planned_successors(&e, employee)
        {
            return Ok(s);
        }
    }
    Ok(Vec::new())
}
