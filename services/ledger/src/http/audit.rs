//! `POST /v1/audit-log-queries` (scope `ingest`): a read side that runs apart from the ledger
//! records here who asked it what. (In one process the query service calls [`record_query`]
//! directly.) The auditors are audited: a forensic read is answered only once it is recorded.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use proto_types::event::EventKind;
use proto_types::ids::{EventId, IdError, SystemId};
use proto_types::{Actor, Event, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Scope};
use super::problem::Problem;
use super::{AppState, json_body};
use crate::store::NewEntry;
use crate::writer::{AppendError, Ledger};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record))
}

/// A forensic read to record.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRecord {
    /// Who asked: the name of the token the read side authenticated.
    pub principal: String,
    /// What was asked: method, path and parameters (never a credential).
    pub query: String,
    /// How many results the answer held.
    pub results: u64,
}

/// Where the record went.
#[derive(Serialize, ToSchema)]
pub struct Recorded {
    pub seq: u64,
    pub hash: String,
}

/// The longest query text recorded.
pub const MAX_QUERY_LEN: usize = 4096;

/// The `AuditLogQueried` event of a read by `principal` (recorded as actor `system:PRINCIPAL`).
///
/// # Errors
/// When the principal is not a usable name.
pub fn query_event(principal: &str, query: &str, results: u64) -> Result<Event, IdError> {
    let mut id = [0u8; 12];
    getrandom::fill(&mut id).expect("the OS random number generator");
    Ok(Event {
        id: Some(EventId::parse(format!("audit-{}", hex::encode(id)))?),
        actor: Actor::System(SystemId::parse(principal)?),
        occurred_at: Timestamp::now(),
        kind: EventKind::AuditLogQueried {
            query: query.chars().take(MAX_QUERY_LEN).collect(),
            results,
        },
    })
}

/// Records a read and waits for its commit: `(seq, hash)`.
///
/// # Errors
/// The append failed (nothing is recorded then), or the principal is not a usable name.
pub async fn record_query(
    ledger: &Ledger,
    principal: &str,
    query: &str,
    results: u64,
) -> Result<(u64, [u8; 32]), AppendError> {
    let event = query_event(principal, query, results)
        .map_err(|e| AppendError::Storage(format!("principal: {e}")))?;
    let entry = NewEntry::new(event).map_err(|e| AppendError::Storage(e.to_string()))?;
    let acks = ledger.append(vec![entry]).await?;
    let a = acks.first().ok_or(AppendError::Closed)?;
    Ok((a.seq, a.hash))
}

/// Records a forensic read made on a query service.
#[utoipa::path(post, path = "/v1/audit-log-queries", tag = "audit", request_body = QueryRecord,
    responses(
        (status = 201, description = "Recorded and committed", body = Recorded),
        (status = 400, description = "Malformed JSON or fields", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the ingest scope", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "An unusable principal", body = super::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn record(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Recorded>), Problem> {
    caller.require(Scope::Ingest)?;
    let r: QueryRecord = json_body(&headers, body)?;
    let event = query_event(&r.principal, &r.query, r.results).map_err(|e| {
        Problem::unprocessable(format!("principal: {e}")).with("field", "principal")
    })?;
    let entry = NewEntry::new(event).map_err(|e| Problem::unprocessable(e.to_string()))?;
    let acks = app.ledger.try_submit(vec![entry])?;
    let acks = acks
        .await
        .map_err(|_| Problem::from(AppendError::Closed))??;
    let a = acks.first().ok_or(AppendError::Closed)?;
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            seq: a.seq,
            hash: hex::encode(a.hash),
        }),
    ))
}
