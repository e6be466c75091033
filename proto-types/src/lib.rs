//! The vocabulary every Handover component shares, and the rules that make the log tamper-evident.
//!
//! # Layout
//! - [`ids`]: typed identifiers (`EmployeeId`, `CustomerId`, …), parsed and checked at the edge.
//! - [`time`]: [`Timestamp`] (µs since the Unix epoch) and [`Date`] (days since the epoch), the
//!   integer forms that go into hashed bytes; chrono conversions for the API edge.
//! - [`event`]: the [`Event`] envelope and the [`EventKind`] vocabulary, with the versioned postcard
//!   payload encoding.
//! - [`chain`]: the entry layout and the BLAKE3 hash-chain rule, and [`ChainVerifier`], the one
//!   walker every verifier (CLI, query service) uses.
//! - [`export`]: the export file format that compliance verifies offline.
//! - [`nats`]: subjects, headers and the CloudEvents 1.0 mapping of what the ledger publishes.
//!
//! **Architecture Invariant:** this crate does no I/O beyond `std::io::Read`/`Write` handed to it;
//! it knows nothing of redb, NATS or HTTP. `docs/log-format.md` is the byte-level contract of
//! [`chain`] and [`export`], and a test keeps the two in step.

pub mod chain;
pub mod event;
pub mod export;
pub mod ids;
pub mod nats;
pub mod time;

pub use chain::{ChainBreak, ChainVerifier, EntryRef, Hash32};
pub use event::{Actor, Event, EventKind};
pub use time::{Date, Timestamp};
