//! The forensic HTTP API (scope `audit:read`), and the read side's operations endpoints.
//!
//! # Layout
//! - [`forensic`]: events, timelines, employees, permissions at a time, owners, handovers,
//!   single entries. Every answer names the log position it reflects (`as_of_seq`,
//!   `head_hash`), and is given only once the read is recorded as an `AuditLogQueried` event.
//! - [`anomalies`]: the anomaly reports and a leaver's risk summary.
//! - [`export`]: a leaver's customers, deals or activity as CSV, JSON or NDJSON, streamed.
//! - [`ops`]: `/v1/status`, `/v1/integrity`, and, when the query service runs alone,
//!   `/healthz`, `/readyz`, `/metrics` and `/v1/openapi.json`.
//!
//! Authentication and problem documents are the ledger's (`ledger::http::auth`,
//! `ledger::http::problem`): one token file, one error format for the whole product.

pub mod anomalies;
pub mod export;
pub mod forensic;
pub mod ops;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use ledger::Ledger;
use ledger::http::auth::{Caller, TokenSet};
use ledger::http::problem::Problem;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;

use crate::applier::Status;
use crate::ledger_client::LedgerClient;
use crate::metrics::Metrics;
use crate::store::{QueryStore, Snapshot};

/// Where reads are recorded.
#[derive(Clone)]
pub enum AuditSink {
    /// The ledger in this process.
    Local(Ledger),
    /// A ledger over HTTP (`POST /v1/audit-log-queries`).
    Remote(LedgerClient),
}

/// What every handler shares.
#[derive(Clone)]
pub struct QueryState {
    pub store: QueryStore,
    pub status: watch::Receiver<Status>,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<TokenSet>,
    pub audit: AuditSink,
}

impl FromRef<QueryState> for Arc<TokenSet> {
    fn from_ref(q: &QueryState) -> Self {
        q.tokens.clone()
    }
}

impl QueryState {
    /// Runs `f` on a snapshot of the store, off the async threads.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Snapshot) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let snap = store.snapshot().map_err(storage_problem)?;
            f(&snap)
        })
        .await
        .map_err(|_| storage_problem("the read was cancelled"))?
    }

    /// Records a read by `caller`; the answer is given only if this succeeds.
    pub(crate) async fn record(
        &self,
        caller: &Caller,
        query: &str,
        results: u64,
    ) -> Result<(), Problem> {
        let outcome = match &self.audit {
            AuditSink::Local(ledger) => {
                ledger::http::audit::record_query(ledger, &caller.name, query, results)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            AuditSink::Remote(client) => client
                .record_query(&caller.name, query, results)
                .await
                .map_err(|e| e.to_string()),
        };
        outcome.map_err(|why| {
            tracing::error!(%why, "a forensic read could not be recorded; it is refused");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the read could not be recorded in the audit log, so it is not answered; try again",
            )
        })
    }
}

pub(crate) fn storage_problem(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "query store read failed");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage",
        "the query store could not be read",
    )
}

/// The forensic routes and `/v1/status`, `/v1/integrity`: what the embedded default adds to the
/// ledger's router.
pub fn forensic_routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .merge(forensic::router())
        .merge(export::router())
        .merge(anomalies::router())
        .merge(ops::status_router())
}

/// The OpenAPI document of the query service running alone.
pub fn openapi() -> utoipa::openapi::OpenApi {
    standalone_routes().split_for_parts().1
}

fn standalone_routes() -> OpenApiRouter<QueryState> {
    let doc = ledger::http::api_doc(
        "Handover forensic API",
        "Forensic queries over the verified copy of the Handover log. Every read is recorded.",
    );
    OpenApiRouter::with_openapi(doc)
        .merge(forensic_routes())
        .merge(ops::router())
}

/// The query service's whole router, when it runs alone (`handover query`).
pub fn router(state: QueryState) -> Router {
    let (routes, doc) = standalone_routes().split_for_parts();
    ledger::http::finish(routes, &doc).with_state(state)
}
