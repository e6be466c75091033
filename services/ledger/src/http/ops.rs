//! Health and metrics.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;
use super::auth::{Caller, Scope};
use super::problem::Problem;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Alive: the process answers. No token needed.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the writer accepts work. No token needed.
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
