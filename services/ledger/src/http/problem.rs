//! Every error the API answers is an RFC 9457 problem (`application/problem+json`), built here
//! and nowhere else. Internal details never reach the client; they go to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::commands::CommandError;
use crate::store::Rejection;
use crate::writer::{AppendError, CommandFailure};

/// The problem type of a response, for the metrics middleware.
#[derive(Debug, Clone, Copy)]
pub struct ProblemKind(pub &'static str);

/// An error answer.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable machine-readable kind; the `type` is `urn:handover:problem:<kind>`.
    pub kind: &'static str,
    pub detail: String,
    /// Extra members (e.g. `index` of the bad event in a batch).
    pub extra: Map<String, Value>,
    pub retry_after: Option<u32>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    fn title(&self) -> &'static str {
        match self.kind {
            "malformed_json" => "The body is not valid JSON",
            "invalid_request" => "The request has a missing or malformed field",
            "unprocessable" => "The request is well-formed but cannot be carried out",
            "not_found" => "Not found",
            "conflict" => "The request conflicts with the current state",
            "payload_too_large" => "The body is too large",
            "unsupported_media_type" => "The body must be JSON",
            "unauthorized" => "A valid bearer token is required",
            "forbidden" => "The token lacks the scope this endpoint needs",
            "queue_full" => "The ledger is busy; retry shortly",
            "method_not_allowed" => "Method not allowed",
            "unavailable" => "The ledger is not accepting writes",
            _ => "Internal error",
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("urn:handover:problem:{}", self.kind)),
        );
        body.insert("title".into(), json!(self.title()));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.extend(self.extra);
        let mut res = (self.status, Value::Object(body).to_string()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"handover\""),
            );
        }
        res.extensions_mut().insert(ProblemKind(self.kind));
        res
    }
}

impl From<AppendError> for Problem {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Rejected(Rejection::IdConflict { index, seq }) => {
                let p = Problem::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!(
                        "event {index}: its id was already used for an event with different content; nothing of the batch was written"
                    ),
                )
                .with("index", index);
                match seq {
                    Some(s) => p.with("original_seq", s),
                    None => p,
                }
            }
            AppendError::QueueFull => {
                let mut p = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "queue_full",
                    "the writer's queue is full; nothing was written",
                );
                p.retry_after = Some(1);
                p
            }
            AppendError::Closed => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the ledger is shutting down or has stopped",
            ),
            AppendError::Storage(why) => {
                tracing::error!(%why, "append failed in storage");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the ledger could not store the request; nothing was acknowledged",
                )
            }
        }
    }
}

impl From<CommandFailure> for Problem {
    fn from(e: CommandFailure) -> Self {
        match e {
            CommandFailure::Refused(CommandError::NotFound(d)) => Problem::not_found(d),
            CommandFailure::Refused(CommandError::Conflict(d)) => {
                Problem::new(StatusCode::CONFLICT, "conflict", d)
            }
            CommandFailure::Refused(CommandError::Unprocessable(d)) => Problem::unprocessable(d),
            CommandFailure::Append(a) => a.into(),
        }
    }
}
