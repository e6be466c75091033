//! Where the read side stands: `/v1/status`, `/v1/integrity`; and, running alone, health,
//! readiness, metrics and the OpenAPI document.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use ledger::http::auth::{Caller, Scope};
use ledger::http::problem::Problem;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::QueryState;
use crate::applier::Status;
use crate::store::IntegrityBreak;

pub fn status_router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(integrity))
}

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

fn break_json(b: &IntegrityBreak) -> Value {
    json!({
        "seq": b.seq,
        "code": b.code,
        "detail": b.detail,
        "source": b.source,
        "detected_at": crate::views::time(proto_types::Timestamp(b.detected_at)),
    })
}

/// Why the read side is not ready, if it is not: a broken chain.
pub fn not_ready(s: &Status) -> Option<String> {
    s.broken.as_ref().map(|b| {
        format!(
            "the chain is broken at seq {} ({}); nothing past it is applied",
            b.seq, b.code
        )
    })
}

/// How far the read side is, and how far behind the ledger.
#[utoipa::path(get, path = "/v1/status", tag = "operations",
    responses(
        (status = 200, description = "`applied_seq_next`, `as_of_seq`, `head_hash`, `ledger_seq_next`, `lag`, `integrity`, `backfilled`", body = Object),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn status(State(q): State<QueryState>, caller: Caller) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    let s = q.status.borrow().clone();
    Ok(Json(json!({
        "applied_seq_next": s.next_seq,
        "as_of_seq": s.next_seq.checked_sub(1),
        "head_hash": hex::encode(s.head),
        "ledger_seq_next": s.ledger_next,
        "lag": s.lag(),
        "integrity": if s.broken.is_some() { "broken" } else { "ok" },
        "backfilled": q.metrics.backfilled_total(),
    })))
}

/// Whether every applied entry verified, and where the chain broke if it did.
#[utoipa::path(get, path = "/v1/integrity", tag = "operations",
    responses(
        (status = 200, description = "`status` (`ok` or `broken`), `verified_through_seq`, `head_hash`, and `break` (seq, code, detail, source, detected_at)", body = Object),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn integrity(State(q): State<QueryState>, caller: Caller) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    let s = q.status.borrow().clone();
    Ok(Json(json!({
        "status": if s.broken.is_some() { "broken" } else { "ok" },
        "verified_through_seq": s.next_seq.checked_sub(1),
        "head_hash": hex::encode(s.head),
        "break": s.broken.as_ref().map(break_json),
    })))
}

/// Alive: the process answers. No token needed.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process answers", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the chain applied so far verifies. No token needed.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "Every applied entry verified", body = String, content_type = "text/plain"),
              (status = 503, description = "The chain is broken (see /v1/integrity)", body = ledger::http::ProblemDoc, content_type = "application/problem+json")))]
async fn readyz(State(q): State<QueryState>) -> Result<&'static str, Problem> {
    match not_ready(&q.status.borrow()) {
        None => Ok("ready\n"),
        Some(why) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "integrity_broken",
            why,
        )),
    }
}

/// Prometheus text; needs the `admin` scope.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
              (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
              (status = 403, description = "The token lacks the admin scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json")))]
async fn metrics(
    State(q): State<QueryState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Scope::Admin)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        q.metrics.render(),
    ))
}

/// This document. Any valid token may read it.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object),
              (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json")))]
async fn openapi_json(
    _caller: Caller,
    axum::Extension(doc): axum::Extension<Arc<Value>>,
) -> Json<Value> {
    Json((*doc).clone())
}
