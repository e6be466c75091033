//! The read side of Handover: takes the committed log (from JetStream, or from the ledger in the
//! same process), verifies every entry against the one before it, and keeps its own copy with
//! indexes and projections for the security team's forensic queries.
//!
//! # Layout
//! - [`applier`]: [`Applier`](applier::Applier), the one place entries are verified and filed;
//!   its [`Status`](applier::Status) (position, the ledger's head, a break if one was found).
//! - [`source`]: the feeds — a durable JetStream pull consumer with backfill from the ledger,
//!   and the in-process bus of the embedded default.
//! - [`store`]: [`QueryStore`](store::QueryStore), the redb file: entries, indexes, documents,
//!   position, one transaction per batch.
//! - [`index`]: which keys an entry is filed under (actor, employees, customers, kind, time).
//! - [`views`]: the JSON documents answers are made of.
//! - [`ledger_client`]: calls to a ledger running apart (backfill, recording reads).
//! - [`http`]: the forensic API and the read side's operations endpoints.
//! - [`metrics`]: Prometheus text.
//!
//! **Architecture Invariant:** nothing is written to the query store that did not verify against
//! the entry before it; after a break nothing more is written, so nothing past a break is ever
//! served. **Architecture Invariant:** the store's position (`next_seq`) commits in the same
//! transaction as the entries, indexes and documents it covers.

pub mod applier;
pub mod http;
pub mod index;
pub mod ledger_client;
pub mod metrics;
pub mod source;
pub mod store;
pub mod views;

use std::path::Path;
use std::sync::{Arc, Mutex};

use ledger::OpenError;
use ledger::http::auth::TokenSet;

use crate::applier::Applier;
use crate::http::{AuditSink, QueryState};
use crate::source::SharedApplier;

/// An opened read side: its applier (to feed) and what its HTTP handlers need.
pub struct ReadSide {
    pub applier: SharedApplier,
    pub store: store::QueryStore,
    pub status: tokio::sync::watch::Receiver<applier::Status>,
    pub metrics: Arc<metrics::Metrics>,
}

impl ReadSide {
    /// Opens (or creates) the query store at `path` and rebuilds the projections from it.
    ///
    /// # Errors
    /// [`OpenError`] naming the path and the problem.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, projections::anomaly::Thresholds::default())
    }

    /// [`ReadSide::open`] with the anomaly rules' thresholds.
    ///
    /// # Errors
    /// [`OpenError`] naming the path and the problem.
    pub fn open_with(
        path: &Path,
        thresholds: projections::anomaly::Thresholds,
    ) -> Result<Self, OpenError> {
        let (store, progress) = store::QueryStore::open_or_create(path)?;
        let metrics = Arc::new(metrics::Metrics::default());
        let applier = Applier::open_with(store.clone(), progress, metrics.clone(), thresholds)
            .map_err(|e| OpenError::Storage {
                path: path.to_path_buf(),
                source: e.0,
            })?;
        let status = applier.status();
        Ok(Self {
            applier: Arc::new(Mutex::new(applier)),
            store,
            status,
            metrics,
        })
    }

    /// The state of the forensic API over this read side.
    pub fn http_state(&self, tokens: Arc<TokenSet>, audit: AuditSink) -> QueryState {
        QueryState {
            store: self.store.clone(),
            status: self.status.clone(),
            metrics: self.metrics.clone(),
            tokens,
            audit,
        }
    }
}
