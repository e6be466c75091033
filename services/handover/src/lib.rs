//! The one Handover binary, as a library so that its parts are testable.
//!
//! # Layout
//! - [`cli`]: the command line (clap), exit codes, and the dispatch to each command.
//! - [`config`]: the configuration file (API tokens, hashed).
//! - [`serve_cmd`]: `handover serve`, ledger, write API and read side in one process; and
//!   `handover ledger`, the write side alone.
//! - [`query_cmd`]: `handover query`, the read side alone, fed by JetStream.
//! - [`rebuild_cmd`]: `handover rebuild`, the read side rebuilt from the log.
//! - [`token_cmd`]: `handover token add|list|revoke`.
//! - [`data_dir`]: where a data directory keeps its files.
//! - [`demo`]: the reproducible CRM history generator; [`demo_cmd`] appends it through the ledger.
//! - [`detection`]: the anomaly rules scored against the demo's planted cases.
//! - [`verify_cmd`]: `handover verify`, over a store or an export file.
//! - [`export_cmd`]: `handover export-log`; [`leaver_export_cmd`]: `handover export`, a leaver's
//!   data from the forensic API.
//! - [`bench`]: `handover bench`, the log's benchmark against its raw-redb and pure-BLAKE3 limits;
//!   [`bench_ingest`]: the write API over HTTP against appending directly; [`bench_query`]: the
//!   fan-out through NATS against raw JetStream, and forensic query latency.
//! - [`progress`]: progress bars that show on a terminal and stay silent when piped.
//!
//! Exit codes: 0 success, 1 a verification found a problem, 2 bad usage or unusable input.

pub mod bench;
pub mod bench_ingest;
pub mod bench_query;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod demo;
pub mod demo_cmd;
pub mod detection;
pub mod export_cmd;
pub mod leaver_export_cmd;
pub mod progress;
pub mod query_cmd;
pub mod rebuild_cmd;
pub mod serve_cmd;
pub mod token_cmd;
pub mod verify_cmd;
