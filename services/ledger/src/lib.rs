//! The write side of Handover: the hash-chained log in redb and its single writer.
//!
//! # Layout
//! - [`store`]: [`LogStore`], the redb file — tables, format check, and `append_group`, the one
//!   function that extends the chain (one write transaction, `Durability::Immediate`).
//! - [`writer`]: [`Ledger`], the cloneable handle callers append through, and the writer thread
//!   that owns the [`LogStore`] and commits many requests together (group commit).
//! - [`commands`]: the rules: each HR/IdP command, checked against the projections, becomes the
//!   events that record it (offboarding among them), or an error and nothing written.
//! - [`idempotency`]: the index that makes a retried event return its original seq, kept at
//!   one insert per commit.
//! - [`http`]: the write API: ingest, HR commands, health and metrics (axum).
//! - [`metrics`]: counters and the commit latency histogram, as Prometheus text.
//! - [`outbox`]: the publisher of committed entries to NATS JetStream (and departures as
//!   CloudEvents), its cursor advanced only after JetStream's acks.
//! - [`reader`]: read-only access for operators and compliance: verify the chain in a store,
//!   export a range as the documented export file.
//!
//! **Architecture Invariant:** an append is acknowledged only after the write transaction that
//! holds it has committed with `Durability::Immediate`. Nothing else writes the `log` table, and
//! nothing ever rewrites or deletes one of its entries.

pub mod commands;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod outbox;
pub mod reader;
pub mod store;
pub mod writer;

pub use store::{Appended, LogReader, LogStore, NewEntry, OpenError, STORE_FILE};
pub use writer::{AppendError, CommandFailure, Ledger, Recorded, WriterConfig, WriterHandle};
