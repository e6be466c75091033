//! `GET /v1/log?from=SEQ&limit=N` (scope `audit:read`): a range of the log as stored, in the
//! export file format of `docs/log-format.md` — the same bytes the query service verifies, and
//! what it backfills from when JetStream lost messages.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use proto_types::chain::{EntryRef, GENESIS};
use proto_types::export::{ExportHeader, ExportWriter};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Scope};
use super::problem::Problem;

/// The most entries one request returns.
pub const MAX_LIMIT: u64 = 10_000;
/// The response header that names the ledger's next seq (its entry count) when it answered.
pub const NEXT_SEQ_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static("handover-next-seq");
/// The media type of an export file.
pub const EXPORT_MEDIA_TYPE: &str = "application/vnd.handover.log-export";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(log_range))
}

#[derive(Deserialize, IntoParams)]
pub struct LogQuery {
    /// The first seq (default 0).
    from: Option<u64>,
    /// How many entries at most (1 to 10,000; default 1,000).
    limit: Option<u64>,
}

/// Entries `from..from+limit` (fewer at the head), as an export file.
#[utoipa::path(get, path = "/v1/log", tag = "log", params(LogQuery),
    responses(
        (status = 200, description = "An export file (docs/log-format.md) of the range; its header names the anchor and head hashes", body = Vec<u8>, content_type = "application/vnd.handover.log-export"),
        (status = 401, description = "No valid token", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A limit out of range, or a start past the head", body = super::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn log_range(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<LogQuery>,
) -> Result<Response, Problem> {
    caller.require(Scope::AuditRead)?;
    let from = q.from.unwrap_or(0);
    let limit = q.limit.unwrap_or(1_000);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(
            Problem::unprocessable(format!("limit must be 1 to {MAX_LIMIT}"))
                .with("field", "limit"),
        );
    }
    let head = *app.ledger.head_watch().borrow();
    if from > head {
        return Err(Problem::unprocessable(format!(
            "from {from} is past the head (the log holds {head} entries)"
        ))
        .with("field", "from"));
    }
    let reader = app.ledger.reader().clone();
    let start = from.saturating_sub(1);
    let rows = tokio::task::spawn_blocking(move || reader.entries(start, (limit + 1) as usize))
        .await
        .map_err(|_| Problem::from(crate::AppendError::Closed))?
        .map_err(|e| crate::AppendError::Storage(e.to_string()))?;
    let hash_of = |bytes: &[u8]| -> Result<[u8; 32], Problem> {
        EntryRef::parse(bytes)
            .map(|e| *e.hash())
            .map_err(|e| crate::AppendError::Storage(e.to_string()).into())
    };
    // From seq 0 the anchor is the genesis value; otherwise the entry before `from` was read too.
    let (anchor, entries) = match (from, rows.split_first()) {
        (0, _) => (GENESIS, &rows[..]),
        (_, Some((before, rest))) => (hash_of(&before.1)?, rest),
        (_, None) => (GENESIS, &rows[..0]),
    };
    let entries = &entries[..entries.len().min(limit as usize)];
    let last = match entries.last() {
        Some((_, bytes)) => hash_of(bytes)?,
        None => anchor,
    };
    let header = ExportHeader {
        first_seq: from,
        count: entries.len() as u64,
        anchor,
        head: last,
    };
    let mut out = ExportWriter::new(
        Vec::with_capacity(96 + entries.iter().map(|(_, b)| b.len() + 4).sum::<usize>()),
        &header,
    )
    .map_err(|e| crate::AppendError::Storage(e.to_string()))?;
    for (_, bytes) in entries {
        out.write_entry(bytes)
            .map_err(|e| crate::AppendError::Storage(e.to_string()))?;
    }
    let body = out
        .finish()
        .map_err(|e| crate::AppendError::Storage(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, EXPORT_MEDIA_TYPE.to_string()),
            (NEXT_SEQ_HEADER, head.to_string()),
        ],
        body,
    )
        .into_response())
}
