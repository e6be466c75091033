//! Health and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Scope};
use super::problem::Problem;

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

/// Ready: the writer accepts work. No token needed.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "The writer accepts work", body = String, content_type = "text/plain"),
              (status = 503, description = "The writer has stopped", body = super::ProblemDoc, content_type = "application/problem+json")))]
async fn readyz(State(app): State<AppState>) -> Result<&'static str, Problem> {
    if app.ledger.is_running() {
        Ok("ready\n")
    } else {
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the ledger writer has stopped",
        ))
    }
}

/// Prometheus text; needs the `admin` scope.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
              (status = 401, description = "No valid token", body = super::ProblemDoc, content_type = "application/problem+json"),
              (status = 403, description = "The token lacks the admin scope", body = super::ProblemDoc, content_type = "application/problem+json")))]
async fn metrics(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Scope::Admin)?;
    let body = app.ledger.metrics().render(app.ledger.queue_depth());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
