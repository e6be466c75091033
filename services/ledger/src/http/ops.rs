//! Health and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Scope};
use super::problem::Problem;
use super::{AppState, Beside};
use axum::Extension;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Alive: the process answers. No token needed.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process answers", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the writer accepts work (and a read side served beside it verified its chain). No token
/// needed.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "The writer accepts work", body = String, content_type = "text/plain"),
              (status = 503, description = "The writer has stopped", body = super::ProblemDoc, content_type = "application/problem+json")))]
async fn readyz(
    State(app): State<AppState>,
    beside: Option<Extension<Beside>>,
) -> Result<&'static str, Problem> {
    if !app.ledger.is_running() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the ledger writer has stopped",
        ));
    }
    if let Some(why) = beside.and_then(|b| (b.not_ready)()) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "integrity_broken",
            why,
        ));
    }
    Ok("ready\n")
}

/// Prometheus text; needs the `admin` scope.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
              (status = 401, description = "No valid token", body = super::ProblemDoc, content_type = "application/problem+json"),
              (status = 403, description = "The token lacks the admin scope", body = super::ProblemDoc, content_type = "application/problem+json")))]
async fn metrics(
    State(app): State<AppState>,
    caller: Caller,
    beside: Option<Extension<Beside>>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Scope::Admin)?;
    let mut body = app.ledger.metrics().render(app.ledger.queue_depth());
    if let Some(b) = beside {
        body.push_str(&(b.metrics)());
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
