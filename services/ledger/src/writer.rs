//! The single writer: one thread owns the [`LogStore`]; callers hand it requests over a bounded
//! queue and await an acknowledgement that is sent only after the durable commit.
//!
//! Group commit: when the writer takes a request, it also takes every request already waiting
//! (up to [`WriterConfig::max_group_events`] events) and commits them all in one write
//! transaction. Under load, one fsync serves many callers; with one caller, nothing waits for a
//! timer.
//!
//! The writer is an OS thread rather than a tokio task because redb's commit blocks on fsync; the
//! async side only ever awaits a oneshot.

use std::thread;

use proto_types::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::store::{Appended, LogStore, NewEntry, Rejection};

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Requests that may wait for the writer; past that [`Ledger::try_submit`] answers
    /// [`AppendError::QueueFull`] and [`Ledger::submit`] waits.
    pub queue_capacity: usize,
    /// The most events one write transaction takes (a single larger request still goes alone).
    pub max_group_events: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            max_group_events: 16_384,
        }
    }
}

/// Why an append was not acknowledged. In every case nothing of the request was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the writer's queue is full")]
    QueueFull,
    #[error("the ledger is shut down")]
    Closed,
    #[error("storage failed; the ledger stopped accepting writes: {0}")]
    Storage(String),
}

type Ack = oneshot::Sender<Result<Vec<Appended>, AppendError>>;

struct Request {
    entries: Vec<NewEntry>,
    ack: Ack,
}

/// A cloneable handle to the writer. The writer stops once every handle is dropped, after it has
/// committed and acknowledged everything it accepted.
#[derive(Clone)]
pub struct Ledger {
    queue: mpsc::Sender<Request>,
}

/// Joins the writer thread.
pub struct WriterHandle {
    thread: thread::JoinHandle<()>,
}

impl WriterHandle {
    /// Waits until the writer has drained its queue and closed the store. Call it after dropping
    /// every [`Ledger`] handle.
    pub fn join(self) {
        // A panic in the writer has already failed every pending ack; nothing to add here.
        let _ = self.thread.join();
    }
}

/// An acknowledgement to await.
pub type PendingAck = oneshot::Receiver<Result<Vec<Appended>, AppendError>>;

impl Ledger {
    /// Starts the writer thread over `store`.
    pub fn start(store: LogStore, config: WriterConfig) -> (Ledger, WriterHandle) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let thread = thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || run_writer(store, rx, config.max_group_events.max(1)))
            .expect("spawn the ledger writer thread");
        (Ledger { queue: tx }, WriterHandle { thread })
    }

    /// Appends `entries` in order and returns their acknowledgements once they are durable.
    ///
    /// # Errors
    /// [`AppendError`]; nothing of the request was written.
    pub async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, AppendError> {
        self.submit(entries)
            .await?
            .await
            .unwrap_or(Err(AppendError::Closed))
    }

    /// Queues `entries`, waiting for room in the queue, and returns the pending acknowledgement.
    /// Requests are committed in the order they were queued, so a caller may keep several in
    /// flight.
    ///
    /// # Errors
    /// [`AppendError::Closed`] when the writer has stopped.
    pub async fn submit(&self, entries: Vec<NewEntry>) -> Result<PendingAck, AppendError> {
        let (ack, rx) = oneshot::channel();
        self.queue
            .send(Request { entries, ack })
            .await
            .map_err(|_| AppendError::Closed)?;
        Ok(rx)
    }

    /// Queues `entries` without waiting.
    ///
    /// # Errors
    /// [`AppendError::QueueFull`] when the queue is full (the caller should back off, e.g. answer
    /// HTTP 429), [`AppendError::Closed`] when the writer has stopped.
    pub fn try_submit(&self, entries: Vec<NewEntry>) -> Result<PendingAck, AppendError> {
        let (ack, rx) = oneshot::channel();
        self.queue
            .try_send(Request { entries, ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AppendError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => AppendError::Closed,
            })?;
        Ok(rx)
    }

    /// [`Ledger::append`] for synchronous callers. Must not be called from inside an async task.
    ///
    /// # Errors
    /// As [`Ledger::append`].
    pub fn append_blocking(&self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, AppendError> {
        let (ack, rx) = oneshot::channel();
        self.queue
            .blocking_send(Request { entries, ack })
            .map_err(|_| AppendError::Closed)?;
        rx.blocking_recv().unwrap_or(Err(AppendError::Closed))
    }
}

fn run_writer(mut store: LogStore, mut rx: mpsc::Receiver<Request>, max_group_events: usize) {
    let mut group: Vec<Request> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut events = first.entries.len();
        group.push(first);
        while events < max_group_events {
            match rx.try_recv() {
                Ok(r) => {
                    events += r.entries.len();
                    group.push(r);
                }
                Err(_) => break,
            }
        }
        let slices: Vec<&[NewEntry]> = group.iter().map(|r| r.entries.as_slice()).collect();
        match store.append_group(&slices, Timestamp::now()) {
            Ok(results) => {
                for (req, res) in group.drain(..).zip(results) {
                    // The caller may have gone away; the events are durable all the same.
                    let _ = req.ack.send(res.map_err(AppendError::from));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger commit failed; refusing further writes");
                let err = AppendError::Storage(e.to_string());
                for req in group.drain(..) {
                    let _ = req.ack.send(Err(err.clone()));
                }
                rx.close();
                while let Some(req) = rx.blocking_recv() {
                    let _ = req.ack.send(Err(err.clone()));
                }
                return;
            }
        }
    }
}
