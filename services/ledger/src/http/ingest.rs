//! `POST /v1/events`: the CRM reports user actions, 1 to 10,000 per request.
//!
//! The answer comes only after the durable commit: each event's seq and entry hash, in the order
//! sent, and the anomalies flagged the moment they were recorded. A retried batch gets the
//! original seqs (`duplicate: true`) and writes nothing new. One bad event rejects the whole
//! batch, naming its index; nothing is written then.
//!
//! Only user actions are taken here. What changes an account (hires, grants, departures, …) goes
//! through the HR commands, which check it against the state first.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use proto_types::event::{DealOutcome, EventKind, Module, Money};
use proto_types::ids::{CustomerId, DealId, EmployeeId, EventId, IdError, ReportId, SystemId};
use proto_types::{Actor, Event, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Scope};
use super::problem::Problem;
use super::{AppState, json_problem, read_json_bytes};
use crate::store::NewEntry;

/// The most events one request may carry.
pub const MAX_BATCH: usize = 10_000;
/// How far in the future an event's time may lie (clock skew between the CRM and us).
pub const MAX_FUTURE_MICROS: i64 = 5 * 60 * 1_000_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest))
}

#[derive(Deserialize)]
struct Batch {
    events: Vec<Value>,
}

/// The fast path: a well-formed batch parses in one pass, straight into its DTOs. Only a batch
/// that fails it is parsed again, event by event, to name the bad one.
#[derive(Deserialize, ToSchema)]
pub struct TypedBatch {
    /// 1 to 10,000 user actions.
    pub events: Vec<EventDto>,
}

/// One reported action, as JSON.
#[derive(Deserialize, ToSchema)]
pub struct EventDto {
    /// The client's id for the event; a retry must carry the same id (and time).
    pub id: String,
    /// An employee id, or `system:NAME` for a non-human principal.
    pub actor: String,
    /// RFC 3339.
    pub occurred_at: String,
    #[serde(flatten)]
    pub action: ActionDto,
}

#[derive(Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModuleDto {
    Customers,
    Deals,
    Reports,
    Export,
    Settings,
}

impl From<ModuleDto> for Module {
    fn from(m: ModuleDto) -> Module {
        match m {
            ModuleDto::Customers => Module::Customers,
            ModuleDto::Deals => Module::Deals,
            ModuleDto::Reports => Module::Reports,
            ModuleDto::Export => Module::Export,
            ModuleDto::Settings => Module::Settings,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct MoneyDto {
    /// In minor units (cents).
    pub minor_units: i64,
    pub currency: String,
}

#[derive(Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeDto {
    Won,
    Lost,
}

/// The user actions the CRM reports, tagged by `type`.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActionDto {
    LoggedIn {
        #[serde(default)]
        ip: String,
        #[serde(default)]
        user_agent: String,
    },
    LoginFailed {
        username: String,
        #[serde(default)]
        ip: String,
        #[serde(default)]
        reason: String,
    },
    LoggedOut,
    ModuleAccessed {
        module: ModuleDto,
    },
    CustomerCreated {
        customer: String,
        name: String,
        owner: String,
    },
    CustomerViewed {
        customer: String,
    },
    CustomerUpdated {
        customer: String,
        fields: Vec<String>,
    },
    CustomersExported {
        count: u64,
        #[serde(default)]
        filter: String,
        #[serde(default)]
        format: String,
    },
    CustomerDeleted {
        customer: String,
    },
    CustomerContactRecorded {
        customer: String,
        name: String,
        #[serde(default)]
        role: String,
        #[serde(default)]
        email: String,
        #[serde(default)]
        phone: String,
    },
    DealCreated {
        deal: String,
        customer: String,
        owner: String,
        amount: MoneyDto,
        stage: String,
    },
    DealUpdated {
        deal: String,
        #[serde(default)]
        fields: Vec<String>,
        stage: Option<String>,
    },
    DealClosed {
        deal: String,
        outcome: OutcomeDto,
        amount: MoneyDto,
    },
    ReportExported {
        report: String,
        rows: u64,
        #[serde(default)]
        format: String,
    },
}

/// Why one event of a batch is refused, and where.
struct Bad {
    unprocessable: bool,
    field: &'static str,
    why: String,
}

fn id<T>(
    field: &'static str,
    parse: impl FnOnce(String) -> Result<T, IdError>,
    s: String,
) -> Result<T, Bad> {
    parse(s).map_err(|e| Bad {
        unprocessable: true,
        field,
        why: e.to_string(),
    })
}

fn money(field: &'static str, m: MoneyDto) -> Result<Money, Bad> {
    let currency = proto_types::event::currency(&m.currency).map_err(|_| Bad {
        unprocessable: true,
        field,
        why: format!("currency {:?} is not an ISO 4217 code", m.currency),
    })?;
    Ok(Money {
        minor_units: m.minor_units,
        currency,
    })
}

/// Parses an actor: an employee id, or `system:NAME`.
///
/// # Errors
/// When the actor is empty or not a valid id.
pub fn parse_actor(s: String) -> Result<Actor, IdError> {
    match s.strip_prefix("system:") {
        Some(name) => Ok(Actor::System(SystemId::parse(name)?)),
        None => Ok(Actor::Employee(EmployeeId::parse(s)?)),
    }
}

/// Parses an RFC 3339 time.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Timestamp::from_chrono(t.with_timezone(&chrono::Utc)))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

impl EventDto {
    fn into_event(self, now: Timestamp) -> Result<Event, Bad> {
        let occurred_at = parse_time(&self.occurred_at).map_err(|why| Bad {
            unprocessable: false,
            field: "occurred_at",
            why,
        })?;
        if occurred_at.0 > now.0 + MAX_FUTURE_MICROS {
            return Err(Bad {
                unprocessable: true,
                field: "occurred_at",
                why: format!("{} is more than 5 minutes in the future", self.occurred_at),
            });
        }
        let event_id = id("id", EventId::parse, self.id)?;
        let actor = id("actor", parse_actor, self.actor)?;
        let kind = match self.action {
            ActionDto::LoggedIn { ip, user_agent } => EventKind::LoggedIn { ip, user_agent },
            ActionDto::LoginFailed {
                username,
                ip,
                reason,
            } => EventKind::LoginFailed {
                username,
                ip,
                reason,
            },
            ActionDto::LoggedOut => EventKind::LoggedOut,
            ActionDto::ModuleAccessed { module } => EventKind::ModuleAccessed {
                module: module.into(),
            },
            ActionDto::CustomerCreated {
                customer,
                name,
                owner,
            } => EventKind::CustomerCreated {
                customer: id("customer", CustomerId::parse, customer)?,
                name,
                owner: id("owner", EmployeeId::parse, owner)?,
            },
            ActionDto::CustomerViewed { customer } => EventKind::CustomerViewed {
                customer: id("customer", CustomerId::parse, customer)?,
            },
            ActionDto::CustomerUpdated { customer, fields } => EventKind::CustomerUpdated {
                customer: id("customer", CustomerId::parse, customer)?,
                fields,
            },
            ActionDto::CustomersExported {
                count,
                filter,
                format,
            } => EventKind::CustomersExported {
                count,
                filter,
                format,
            },
            ActionDto::CustomerDeleted { customer } => EventKind::CustomerDeleted {
                customer: id("customer", CustomerId::parse, customer)?,
            },
            ActionDto::CustomerContactRecorded {
                customer,
                name,
                role,
                email,
                phone,
            } => EventKind::CustomerContactRecorded {
                customer: id("customer", CustomerId::parse, customer)?,
                name,
                role,
                email,
                phone,
            },
            ActionDto::DealCreated {
                deal,
                customer,
                owner,
                amount,
                stage,
            } => EventKind::DealCreated {
                deal: id("deal", DealId::parse, deal)?,
                customer: id("customer", CustomerId::parse, customer)?,
                owner: id("owner", EmployeeId::parse, owner)?,
                amount: money("amount", amount)?,
                stage,
            },
            ActionDto::DealUpdated {
                deal,
                fields,
                stage,
            } => EventKind::DealUpdated {
                deal: id("deal", DealId::parse, deal)?,
                fields,
                stage,
            },
            ActionDto::DealClosed {
                deal,
                outcome,
                amount,
            } => EventKind::DealClosed {
                deal: id("deal", DealId::parse, deal)?,
                outcome: match outcome {
                    OutcomeDto::Won => DealOutcome::Won,
                    OutcomeDto::Lost => DealOutcome::Lost,
                },
                amount: money("amount", amount)?,
            },
            ActionDto::ReportExported {
                report,
                rows,
                format,
            } => EventKind::ReportExported {
                report: id("report", ReportId::parse, report)?,
                rows,
                format,
            },
        };
        Ok(Event {
            id: Some(event_id),
            actor,
            occurred_at,
            kind,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct Ack {
    seq: u64,
    hash: String,
    duplicate: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Flagged {
    index: usize,
    seq: u64,
    rule: &'static str,
    severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_since_disable: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct IngestResponse {
    results: Vec<Ack>,
    anomalies: Vec<Flagged>,
}

/// The HR and account kinds that only commands may record.
const COMMAND_KINDS: &[&str] = &[
    "employee_hired",
    "employee_updated",
    "role_granted",
    "role_revoked",
    "permission_granted",
    "permission_revoked",
    "resignation_submitted",
    "employee_departed",
    "account_disabled",
    "account_reenabled",
    "account_deleted",
    "handover_planned",
    "ownership_transferred",
    "handover_item_completed",
    "handover_completed",
    "audit_log_queried",
    "retention_policy_set",
];

/// The slow path for a batch that did not parse: finds the first bad event and says why.
fn locate_error(bytes: &[u8]) -> Problem {
    let batch: Batch = match serde_json::from_slice(bytes) {
        Ok(b) => b,
        Err(e) => return json_problem(&e, ""),
    };
    for (index, raw) in batch.events.into_iter().enumerate() {
        if let Some(t) = raw.get("type").and_then(Value::as_str)
            && COMMAND_KINDS.contains(&t)
        {
            return Problem::unprocessable(format!(
                "events[{index}]: {t} is recorded through the HR commands (/v1/employees/...), not reported"
            ))
            .with("index", index)
            .with("field", format!("events[{index}].type"));
        }
        if let Err(e) = serde_json::from_value::<EventDto>(raw) {
            return json_problem(&e, &format!("events[{index}]: ")).with("index", index);
        }
    }
    Problem::bad_request("the batch is malformed")
}

/// Records user actions reported by the CRM. The answer comes after the durable commit.
#[utoipa::path(post, path = "/v1/events", tag = "ingest", request_body = TypedBatch,
    responses(
        (status = 200, description = "Every event recorded (or recognised as a retry)", body = IngestResponse),
        (status = 400, description = "Malformed JSON or a missing or mistyped field (index and field named)", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the ingest scope", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "An event id reused for other content", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 16 MiB", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Impossible values (future time, empty actor, batch size, HR event types)", body = super::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "The writer's queue is full; see Retry-After", body = super::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn ingest(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, Problem> {
    caller.require(Scope::Ingest)?;
    let bytes = read_json_bytes(&headers, body)?;
    let dtos = match serde_json::from_slice::<TypedBatch>(&bytes) {
        Ok(batch) => batch.events,
        Err(_) => return Err(locate_error(&bytes)),
    };
    if dtos.is_empty() || dtos.len() > MAX_BATCH {
        return Err(Problem::unprocessable(format!(
            "a batch holds 1 to {MAX_BATCH} events; this one holds {}",
            dtos.len()
        ))
        .with("field", "events"));
    }
    let now = Timestamp::now();
    let mut entries = Vec::with_capacity(dtos.len());
    for (index, dto) in dtos.into_iter().enumerate() {
        let at = |field: &str| format!("events[{index}].{field}");
        let event = dto.into_event(now).map_err(|bad| {
            let p = if bad.unprocessable {
                Problem::unprocessable(format!("{}: {}", at(bad.field), bad.why))
            } else {
                Problem::bad_request(format!("{}: {}", at(bad.field), bad.why))
            };
            p.with("index", index).with("field", at(bad.field))
        })?;
        let entry = NewEntry::new(event).map_err(|e| {
            Problem::unprocessable(format!("events[{index}]: {e}")).with("index", index)
        })?;
        entries.push(entry);
    }
    let pending = app.ledger.try_submit(entries)?;
    let acks = pending
        .await
        .map_err(|_| Problem::from(crate::AppendError::Closed))??;
    let mut anomalies = Vec::new();
    for (index, a) in acks.iter().enumerate() {
        if let Some(flag) = &a.flag {
            let (disabled_at, secs) = match flag {
                projections::flags::Flag::ActivityAfterDisable {
                    gap_micros,
                    disabled_at,
                } => (
                    Some(disabled_at.to_rfc3339()),
                    Some(*gap_micros as f64 / 1e6),
                ),
                projections::flags::Flag::UnknownActor => (None, None),
            };
            anomalies.push(Flagged {
                index,
                seq: a.seq,
                rule: flag.rule(),
                severity: flag.severity(),
                disabled_at,
                seconds_since_disable: secs,
            });
        }
    }
    Ok(Json(IngestResponse {
        results: acks
            .iter()
            .map(|a| Ack {
                seq: a.seq,
                hash: hex::encode(a.hash),
                duplicate: a.duplicate,
            })
            .collect(),
        anomalies,
    }))
}
