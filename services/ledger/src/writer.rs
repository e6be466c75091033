//! The single writer: one thread owns the [`LogStore`] and the projections ([`State`]); callers
//! hand it jobs over a bounded queue and await an answer that is sent only after the durable
//! commit.
//!
//! Jobs: appends (events reported by the CRM), commands (HR and identity-provider requests,
//! decided by [`commands::decide`] against the state *including every job before it*, so two
//! racing commands cannot both pass a check that only one should), and reads of the state.
//!
//! Group commit: when the writer takes a job, it also takes every job already waiting (up to
//! [`WriterConfig::max_group_events`] events) and commits them all in one write transaction.
//! Under load, one fsync serves many callers; with one caller, nothing waits for a timer.
//!
//! The writer is an OS thread rather than a tokio task because redb's commit blocks on fsync; the
//! async side only ever awaits a oneshot.

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use projections::State;
use projections::flags;
use proto_types::{Actor, Event, Timestamp};
use tokio::sync::{mpsc, oneshot, watch};

use crate::commands::{self, Command, CommandError};
use crate::metrics::Metrics;
use crate::store::{Appended, LogReader, LogStore, NewEntry, Rejection};

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Jobs that may wait for the writer; past that [`Ledger::try_submit`] answers
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

/// Why a command was not recorded. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandFailure {
    #[error(transparent)]
    Refused(#[from] CommandError),
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// An event a command recorded, with its acknowledgement.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub event: Event,
    pub ack: Appended,
}

type AppendReply = oneshot::Sender<Result<Vec<Appended>, AppendError>>;
type ReadJob = Box<dyn FnOnce(&State) + Send>;
type CommandReply = oneshot::Sender<Result<Vec<Recorded>, CommandFailure>>;

enum Job {
    Append {
        entries: Vec<NewEntry>,
        reply: AppendReply,
    },
    Command {
        actor: Actor,
        command: Command,
        reply: CommandReply,
    },
    Read(ReadJob),
    /// Every entry below this seq has been published downstream.
    OutboxCursor(u64),
}

impl Job {
    fn events(&self) -> usize {
        match self {
            Job::Append { entries, .. } => entries.len(),
            Job::Command { .. } | Job::Read(_) | Job::OutboxCursor(_) => 1,
        }
    }
}

/// A cloneable handle to the writer. The writer stops once every handle is dropped, after it has
/// committed and answered everything it accepted.
#[derive(Clone)]
pub struct Ledger {
    queue: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    reader: LogReader,
    head: watch::Receiver<u64>,
}

/// Joins the writer thread.
pub struct WriterHandle {
    thread: thread::JoinHandle<()>,
}

impl WriterHandle {
    /// Waits until the writer has drained its queue and closed the store. Call it after dropping
    /// every [`Ledger`] handle.
    pub fn join(self) {
        // A panic in the writer has already failed every pending answer; nothing to add here.
        let _ = self.thread.join();
    }
}

/// An acknowledgement to await.
pub type PendingAck = oneshot::Receiver<Result<Vec<Appended>, AppendError>>;

impl Ledger {
    /// Rebuilds the projections from the log, then starts the writer thread over `store`.
    ///
    /// # Errors
    /// When the log cannot be read or holds a payload this build cannot decode.
    pub fn start(
        store: LogStore,
        config: WriterConfig,
    ) -> Result<(Ledger, WriterHandle), redb::Error> {
        let mut state = State::default();
        store.fold_events(|e| state.apply(e))?;
        let reader = store.reader();
        let (head_tx, head) = watch::channel(store.head().next_seq);
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let metrics = Arc::new(Metrics::default());
        metrics
            .entries
            .store(store.head().next_seq, std::sync::atomic::Ordering::Relaxed);
        let m = metrics.clone();
        let thread = thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                run_writer(
                    store,
                    state,
                    rx,
                    config.max_group_events.max(1),
                    &m,
                    &head_tx,
                );
            })
            .expect("spawn the ledger writer thread");
        let ledger = Ledger {
            queue: tx,
            metrics,
            reader,
            head,
        };
        Ok((ledger, WriterHandle { thread }))
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
    /// Jobs are committed in the order they were queued, so a caller may keep several in flight.
    ///
    /// # Errors
    /// [`AppendError::Closed`] when the writer has stopped.
    pub async fn submit(&self, entries: Vec<NewEntry>) -> Result<PendingAck, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Job::Append { entries, reply })
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
        let (reply, rx) = oneshot::channel();
        self.queue
            .try_send(Job::Append { entries, reply })
            .map_err(full_or_closed)?;
        Ok(rx)
    }

    /// [`Ledger::append`] for synchronous callers. Must not be called from inside an async task.
    ///
    /// # Errors
    /// As [`Ledger::append`].
    pub fn append_blocking(&self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .blocking_send(Job::Append { entries, reply })
            .map_err(|_| AppendError::Closed)?;
        rx.blocking_recv().unwrap_or(Err(AppendError::Closed))
    }

    /// Decides `command` against the state as of every job queued before it and, if it fits,
    /// records its events (by `actor`, at the ledger's clock) in one commit.
    ///
    /// # Errors
    /// [`CommandFailure::Refused`] when the command does not fit the state; nothing is written.
    /// A full queue is [`AppendError::QueueFull`]: commands are not worth waiting on a backlog.
    pub async fn command(
        &self,
        actor: Actor,
        command: Command,
    ) -> Result<Vec<Recorded>, CommandFailure> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .try_send(Job::Command {
                actor,
                command,
                reply,
            })
            .map_err(full_or_closed)?;
        rx.await.unwrap_or(Err(AppendError::Closed.into()))
    }

    /// Reads the projections as of the last commit (after every job queued before this one).
    ///
    /// # Errors
    /// [`AppendError::QueueFull`] or [`AppendError::Closed`].
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> T + Send + 'static,
    ) -> Result<T, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .try_send(Job::Read(Box::new(move |state| {
                let _ = reply.send(f(state));
            })))
            .map_err(full_or_closed)?;
        rx.await.map_err(|_| AppendError::Closed)
    }

    /// Jobs waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Whether the writer still accepts work (it stops for good after a storage failure).
    pub fn is_running(&self) -> bool {
        !self.queue.is_closed()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Reads the committed log beside the writer.
    pub fn reader(&self) -> &LogReader {
        &self.reader
    }

    /// The number of committed entries (the next seq), updated after each commit.
    pub fn head_watch(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    /// Records (with the next commit) that every entry below `next` has been published
    /// downstream. Not awaited: a cursor lost in a crash only means a resend, which the
    /// downstream de-duplicates.
    ///
    /// # Errors
    /// [`AppendError::Closed`] when the writer has stopped.
    pub async fn advance_outbox(&self, next: u64) -> Result<(), AppendError> {
        self.queue
            .send(Job::OutboxCursor(next))
            .await
            .map_err(|_| AppendError::Closed)
    }
}

fn full_or_closed<T>(e: mpsc::error::TrySendError<T>) -> AppendError {
    match e {
        mpsc::error::TrySendError::Full(_) => AppendError::QueueFull,
        mpsc::error::TrySendError::Closed(_) => AppendError::Closed,
    }
}

/// An answer held back until the commit is durable.
enum Reply {
    Append(AppendReply, Result<Vec<Appended>, AppendError>),
    Command(CommandReply, Result<Vec<Recorded>, CommandFailure>),
}

impl Reply {
    fn send(self) {
        // A caller that went away does not undo the commit; the events are durable all the same.
        match self {
            Reply::Append(tx, r) => drop(tx.send(r)),
            Reply::Command(tx, r) => drop(tx.send(r)),
        }
    }

    fn fail(self, err: &AppendError) {
        match self {
            Reply::Append(tx, _) => drop(tx.send(Err(err.clone()))),
            Reply::Command(tx, _) => drop(tx.send(Err(err.clone().into()))),
        }
    }
}

fn run_writer(
    mut store: LogStore,
    mut state: State,
    mut rx: mpsc::Receiver<Job>,
    max_group_events: usize,
    metrics: &Metrics,
    head: &watch::Sender<u64>,
) {
    let mut group: Vec<Job> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut events = first.events();
        group.push(first);
        while events < max_group_events {
            match rx.try_recv() {
                Ok(job) => {
                    events += job.events();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let now = Timestamp::now();
        let mut replies: Vec<Reply> = Vec::with_capacity(group.len());
        let mut reads: Vec<ReadJob> = Vec::new();
        let jobs = std::mem::take(&mut group);
        let started = Instant::now();
        let (mut appended, mut duplicates) = (0u64, 0u64);
        // The requests' events, freed only once every caller has its answer.
        let mut spent: Vec<Vec<NewEntry>> = Vec::new();
        let outcome = store.with_group(now, |g| {
            for job in jobs {
                match job {
                    Job::Append { entries, reply } => {
                        let result = g.append(&entries)?.map(|mut acks| {
                            for (ack, entry) in acks.iter_mut().zip(&entries) {
                                if ack.duplicate {
                                    duplicates += 1;
                                } else {
                                    appended += 1;
                                    ack.flag = flags::immediate(&state.directory, &entry.event);
                                    if let Some(f) = &ack.flag {
                                        metrics.flag(f.rule());
                                    }
                                    state.apply(&entry.event);
                                }
                            }
                            acks
                        });
                        replies.push(Reply::Append(reply, result.map_err(AppendError::from)));
                        spent.push(entries);
                    }
                    Job::Command {
                        actor,
                        command,
                        reply,
                    } => {
                        let result = match commands::decide(&state, &command) {
                            Err(refused) => Err(CommandFailure::Refused(refused)),
                            Ok(kinds) => {
                                let events: Vec<Event> = kinds
                                    .into_iter()
                                    .map(|kind| Event {
                                        id: None,
                                        actor: actor.clone(),
                                        occurred_at: now,
                                        kind,
                                    })
                                    .collect();
                                let r = record(g, &mut state, events)?;
                                if let Ok(recorded) = &r {
                                    appended += recorded.len() as u64;
                                }
                                r
                            }
                        };
                        replies.push(Reply::Command(reply, result));
                    }
                    Job::Read(f) => reads.push(f),
                    Job::OutboxCursor(next) => g.set_outbox_cursor(next),
                }
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                metrics.observe_commit(
                    started.elapsed(),
                    appended,
                    duplicates,
                    store.head().next_seq,
                );
                head.send_replace(store.head().next_seq);
                for r in replies {
                    r.send();
                }
                drop(spent);
                for read in reads {
                    read(&state);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger commit failed; refusing further writes");
                let err = AppendError::Storage(e.to_string());
                for r in replies {
                    r.fail(&err);
                }
                rx.close();
                while let Some(job) = rx.blocking_recv() {
                    match job {
                        Job::Append { reply, .. } => drop(reply.send(Err(err.clone()))),
                        Job::Command { reply, .. } => drop(reply.send(Err(err.clone().into()))),
                        Job::Read(_) | Job::OutboxCursor(_) => {}
                    }
                }
                return;
            }
        }
    }
}

/// Appends a command's events and folds them into the state.
fn record(
    g: &mut crate::store::Group<'_>,
    state: &mut State,
    events: Vec<Event>,
) -> Result<Result<Vec<Recorded>, CommandFailure>, redb::Error> {
    let entries = match events
        .into_iter()
        .map(NewEntry::new)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(e) => e,
        Err(e) => {
            return Ok(Err(
                AppendError::Storage(format!("cannot encode: {e}")).into()
            ));
        }
    };
    Ok(match g.append(&entries)? {
        Ok(acks) => Ok(entries
            .into_iter()
            .zip(acks)
            .map(|(entry, ack)| {
                state.apply(&entry.event);
                Recorded {
                    event: entry.event,
                    ack,
                }
            })
            .collect()),
        Err(rejection) => Err(AppendError::from(rejection).into()),
    })
}
