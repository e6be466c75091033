//! The ledger's HTTP API: the CRM reports user actions, HR and identity providers send
//! commands, operators check health and metrics. JSON in and out, versioned under `/v1`; every
//! error is a problem document (see [`problem`]); every endpoint but the health checks needs a
//! bearer token with the right scope (see [`auth`]).
//!
//! # Layout
//! - [`ingest`]: `POST /v1/events`.
//! - [`employees`]: the HR commands under `/v1/employees`.
//! - [`audit`]: `POST /v1/audit-log-queries`, where a separate read side records its reads.
//! - [`log`]: `GET /v1/log`, a range of the log as stored (for backfill and audits).
//! - [`scim`]: SCIM 2.0 Users under `/scim/v2`, for identity providers.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//!
//! Routes are registered with their OpenAPI annotations (`utoipa_axum::routes!`), and
//! `/v1/openapi.json` serves the document generated from them.

pub mod audit;
pub mod auth;
pub mod employees;
pub mod ingest;
pub mod log;
pub mod ops;
pub mod problem;
pub mod scim;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;

use crate::writer::Ledger;
use auth::TokenSet;
use problem::{Problem, ProblemKind};

/// The largest request body accepted (a batch of 10,000 events fits easily).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Ledger,
    pub tokens: Arc<TokenSet>,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct ProblemDoc {
    /// `urn:handover:problem:<kind>`, stable per kind.
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    /// What is wrong, for a person.
    detail: String,
    /// The index of the bad event in a batch.
    index: Option<u64>,
    /// The field that is wrong, e.g. `events[3].occurred_at`.
    field: Option<String>,
}

/// The OpenAPI document of the routes below, generated from the handlers' annotations, so that
/// a route cannot exist without its documentation or the other way round.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// An OpenAPI document with its info and bearer-token security, for each service's routes.
pub fn api_doc(title: &str, description: &str) -> utoipa::openapi::OpenApi {
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(description))
                .build(),
        )
        .build();
    let mut components = utoipa::openapi::Components::new();
    components.add_security_scheme(
        "bearer",
        utoipa::openapi::security::SecurityScheme::Http(utoipa::openapi::security::Http::new(
            utoipa::openapi::security::HttpAuthScheme::Bearer,
        )),
    );
    doc.components = Some(components);
    doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    doc
}

fn api_routes() -> OpenApiRouter<AppState> {
    let doc = api_doc(
        "Handover write API",
        "Reports of CRM user actions, HR commands and SCIM provisioning, recorded in a tamper-evident log.",
    );
    OpenApiRouter::with_openapi(doc)
        .merge(ops::router())
        .merge(ingest::router())
        .merge(log::router())
        .merge(audit::router())
        .merge(employees::router())
        .merge(scim::router())
        .routes(utoipa_axum::routes!(openapi_json))
}

/// This document. Any valid token may read it.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object),
              (status = 401, description = "No valid token", body = ProblemDoc, content_type = "application/problem+json")))]
async fn openapi_json(
    _caller: auth::Caller,
    axum::Extension(doc): axum::Extension<Arc<serde_json::Value>>,
) -> axum::Json<serde_json::Value> {
    axum::Json((*doc).clone())
}

/// The whole write API.
pub fn router(state: AppState) -> Router {
    router_with(state, None)
}

/// Another service's routes served beside the write API on one listener (the embedded default
/// serves the forensic API this way): its routes, their documentation, and what it adds to
/// `/readyz` and `/metrics`.
#[derive(Clone)]
pub struct Beside {
    pub routes: Router,
    pub doc: utoipa::openapi::OpenApi,
    /// Why it is not ready, if it is not.
    pub not_ready: Arc<dyn Fn() -> Option<String> + Send + Sync>,
    /// Its Prometheus text.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
}

/// The write API, with `beside` served on the same listener.
pub fn router_with(state: AppState, beside: Option<Beside>) -> Router {
    let (routes, mut doc) = api_routes().split_for_parts();
    let mut router = routes.with_state(state.clone());
    if let Some(b) = &beside {
        doc.merge(b.doc.clone());
        router = router.merge(b.routes.clone());
    }
    let mut router = finish(router, &doc)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state, count_problems));
    if let Some(b) = beside {
        router = router.layer(axum::Extension(b));
    }
    router
}

/// What every service's router ends with: its OpenAPI document (served by `openapi_json`), and
/// problem documents for an unknown path (404) and a method a path does not take (405).
pub fn finish<S>(router: Router<S>, doc: &utoipa::openapi::OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let doc = Arc::new(serde_json::to_value(doc).expect("the OpenAPI document serialises"));
    router
        .layer(axum::Extension(doc))
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
}

async fn count_problems(
    axum::extract::State(app): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let res = next.run(req).await;
    if let Some(ProblemKind(kind)) = res.extensions().get::<ProblemKind>() {
        app.ledger.metrics().reject(kind);
    }
    res
}

/// Reads a JSON body: 415 unless the content type is JSON, 413 over the limit, 400 for bad JSON
/// or a field of the wrong shape (naming it).
///
/// # Errors
/// The problem to answer.
pub fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Problem> {
    let bytes = read_json_bytes(headers, body)?;
    parse_json(&bytes)
}

/// The body's bytes, after the content-type and size checks of [`json_body`].
///
/// # Errors
/// 415 or 413 (or 400 when the body cannot be read).
pub fn read_json_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Problem> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false);
    if !is_json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            Problem::bad_request("the body could not be read")
        }
    })
}

/// Parses JSON; syntax errors are `malformed_json`, shape errors `invalid_request`.
///
/// # Errors
/// 400 naming where the problem is.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| json_problem(&e, ""))
}

pub(crate) fn json_problem(e: &serde_json::Error, at: &str) -> Problem {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("{at}{e}"),
        ),
        Category::Data => Problem::bad_request(format!("{at}{e}")),
    }
}
