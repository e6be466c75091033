//! The HR commands (scope `hr`): hire, grant and revoke, resignation, departure, handover
//! transfers and checklist, re-enable, delete. Each is decided against the current state and
//! recorded in one commit, or refused with a problem and nothing written: 404 for an unknown
//! employee, 409 for a command that contradicts the state, 422 for one that names something
//! that cannot take part.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, post};
use proto_types::event::{ChecklistItem, Level, Module, Resource};
use proto_types::ids::{CustomerId, DealId, EmployeeId, IdError, RoleName, SystemId};
use proto_types::{Actor, Date, Timestamp};
use serde::{Deserialize, Serialize};

use super::auth::{Caller, Scope};
use super::ingest::{ModuleDto, parse_time};
use super::problem::Problem;
use super::{AppState, json_body};
use crate::commands::{Command, Transfer};
use crate::writer::Recorded;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/employees", post(hire))
        .route("/v1/employees/{id}", delete(delete_account))
        .route("/v1/employees/{id}/roles", post(grant_role))
        .route("/v1/employees/{id}/roles/{role}", delete(revoke_role))
        .route("/v1/employees/{id}/permissions", post(grant_permission))
        .route(
            "/v1/employees/{id}/permissions/{module}",
            delete(revoke_permission),
        )
        .route("/v1/employees/{id}/resignation", post(resign))
        .route("/v1/employees/{id}/departure", post(depart))
        .route("/v1/employees/{id}/handover/transfers", post(transfer))
        .route(
            "/v1/employees/{id}/handover/items/{item}/complete",
            post(complete_item),
        )
        .route("/v1/employees/{id}/reenable", post(reenable))
}

/// What a command recorded.
#[derive(Serialize)]
pub struct Outcome {
    pub recorded: Vec<RecordedDto>,
}

#[derive(Serialize)]
pub struct RecordedDto {
    pub seq: u64,
    pub hash: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl Outcome {
    fn of(recorded: &[Recorded]) -> Self {
        Outcome {
            recorded: recorded
                .iter()
                .map(|r| RecordedDto {
                    seq: r.ack.seq,
                    hash: hex::encode(r.ack.hash),
                    kind: r.event.kind.name(),
                })
                .collect(),
        }
    }
}

fn field<T>(name: &str, r: Result<T, IdError>) -> Result<T, Problem> {
    r.map_err(|e| Problem::unprocessable(format!("{name}: {e}")).with("field", name.to_string()))
}

fn path_employee(id: String) -> Result<EmployeeId, Problem> {
    EmployeeId::parse(id).map_err(|e| Problem::not_found(format!("no employee has that id ({e})")))
}

fn date(name: &str, s: &str) -> Result<Date, Problem> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Date::from_chrono)
        .map_err(|e| {
            Problem::bad_request(format!("{name}: {s:?} is not a date (YYYY-MM-DD): {e}"))
                .with("field", name.to_string())
        })
}

/// Runs a command for `caller` (recorded as the system principal the token names).
pub(crate) async fn run(
    app: &AppState,
    caller: &Caller,
    command: Command,
) -> Result<Vec<Recorded>, Problem> {
    caller.require(Scope::Hr)?;
    Ok(run_refusals(app, caller, command).await?)
}

/// [`run`], handing back the ledger's refusal as it is (for callers with their own error format).
pub(crate) async fn run_refusals(
    app: &AppState,
    caller: &Caller,
    command: Command,
) -> Result<Vec<Recorded>, crate::CommandFailure> {
    let name = command_name(&command);
    let actor = Actor::System(SystemId::parse(caller.name.clone()).map_err(|_| {
        crate::CommandFailure::Refused(crate::commands::CommandError::Unprocessable(
            "the token's name is not a valid principal".into(),
        ))
    })?);
    let result = app.ledger.command(actor, command).await;
    let outcome = if result.is_ok() {
        "recorded"
    } else {
        "refused"
    };
    app.ledger.metrics().command(name, outcome);
    result
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Hire { .. } => "hire",
        Command::UpdateEmployee { .. } => "update_employee",
        Command::GrantRole { .. } => "grant_role",
        Command::RevokeRole { .. } => "revoke_role",
        Command::GrantPermission { .. } => "grant_permission",
        Command::RevokePermission { .. } => "revoke_permission",
        Command::SubmitResignation { .. } => "submit_resignation",
        Command::Depart { .. } => "depart",
        Command::Transfer { .. } => "transfer",
        Command::CompleteItem { .. } => "complete_item",
        Command::Reenable { .. } => "reenable",
        Command::Disable { .. } => "disable",
        Command::Delete { .. } => "delete",
    }
}

#[derive(Deserialize)]
struct HireDto {
    id: String,
    name: String,
    #[serde(default)]
    email: String,
    manager: Option<String>,
    #[serde(default)]
    department: String,
    #[serde(default)]
    title: String,
}

async fn hire(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Outcome>), Problem> {
    caller.require(Scope::Hr)?;
    let dto: HireDto = json_body(&headers, body)?;
    if dto.name.trim().is_empty() {
        return Err(Problem::unprocessable("name: must not be empty").with("field", "name"));
    }
    let command = Command::Hire {
        employee: field("id", EmployeeId::parse(dto.id))?,
        name: dto.name,
        email: dto.email,
        manager: dto
            .manager
            .map(|m| field("manager", EmployeeId::parse(m)))
            .transpose()?,
        department: dto.department,
        title: dto.title,
    };
    let recorded = run(&app, &caller, command).await?;
    Ok((StatusCode::CREATED, Json(Outcome::of(&recorded))))
}

#[derive(Deserialize)]
struct RoleDto {
    role: String,
}

async fn grant_role(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let employee = path_employee(id)?;
    let dto: RoleDto = json_body(&headers, body)?;
    let role = field("role", RoleName::parse(dto.role))?;
    let r = run(&app, &caller, Command::GrantRole { employee, role }).await?;
    Ok(Json(Outcome::of(&r)))
}

#[derive(Deserialize)]
struct ReasonQuery {
    reason: Option<String>,
}

async fn revoke_role(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, role)): Path<(String, String)>,
    Query(q): Query<ReasonQuery>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let employee = path_employee(id)?;
    let role =
        RoleName::parse(role).map_err(|e| Problem::not_found(format!("no such role ({e})")))?;
    let reason = q.reason.unwrap_or_else(|| "revoked".into());
    let r = run(
        &app,
        &caller,
        Command::RevokeRole {
            employee,
            role,
            reason,
        },
    )
    .await?;
    Ok(Json(Outcome::of(&r)))
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum LevelDto {
    None,
    Read,
    Write,
    Admin,
}

#[derive(Deserialize)]
struct PermissionDto {
    module: ModuleDto,
    level: LevelDto,
}

async fn grant_permission(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let employee = path_employee(id)?;
    let dto: PermissionDto = json_body(&headers, body)?;
    let level = match dto.level {
        LevelDto::None => Level::None,
        LevelDto::Read => Level::Read,
        LevelDto::Write => Level::Write,
        LevelDto::Admin => Level::Admin,
    };
    let command = Command::GrantPermission {
        employee,
        module: dto.module.into(),
        level,
    };
    let r = run(&app, &caller, command).await?;
    Ok(Json(Outcome::of(&r)))
}

async fn revoke_permission(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, module)): Path<(String, String)>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let employee = path_employee(id)?;
    let module: ModuleDto = serde_json::from_value(serde_json::Value::String(module.clone()))
        .map_err(|_| Problem::not_found(format!("no such module {module:?}")))?;
    let module: Module = module.into();
    let r = run(
        &app,
        &caller,
        Command::RevokePermission { employee, module },
    )
    .await?;
    Ok(Json(Outcome::of(&r)))
}

#[derive(Deserialize)]
struct ResignationDto {
    /// YYYY-MM-DD; defaults to today.
    notice_date: Option<String>,
    /// YYYY-MM-DD.
    last_day: String,
    #[serde(default)]
    reason: String,
}

async fn resign(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let employee = path_employee(id)?;
    let dto: ResignationDto = json_body(&headers, body)?;
    let notice_date = match &dto.notice_date {
        Some(d) => date("notice_date", d)?,
        None => Date::of(Timestamp::now()),
    };
    let command = Command::SubmitResignation {
        employee,
        notice_date,
        last_day: date("last_day", &dto.last_day)?,
        reason: dto.reason,
    };
    let r = run(&app, &caller, command).await?;
    Ok(Json(Outcome::of(&r)))
}

#[derive(Deserialize)]
struct DepartureDto {
    /// RFC 3339; defaults to now.
    effective_at: Option<String>,
    #[serde(default)]
    reason: String,
    /// Customer id → successor employee id.
    #[serde(default)]
    successors: BTreeMap<String, String>,
    /// Successor for everything not named (default: the leaver's manager).
    default_successor: Option<String>,
}

async fn depart(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let employee = path_employee(id)?;
    let dto: DepartureDto = json_body(&headers, body)?;
    let effective_at = match &dto.effective_at {
        Some(t) => parse_time(t).map_err(|why| {
            Problem::bad_request(format!("effective_at: {why}")).with("field", "effective_at")
        })?,
        None => Timestamp::now(),
    };
    let mut successors = BTreeMap::new();
    for (c, s) in dto.successors {
        successors.insert(
            field("successors", CustomerId::parse(c))?,
            field("successors", EmployeeId::parse(s))?,
        );
    }
    let command = Command::Depart {
        employee,
        effective_at,
        reason: dto.reason,
        successors,
        default_successor: dto
            .default_successor
            .map(|s| field("default_successor", EmployeeId::parse(s)))
            .transpose()?,
    };
    let r = run(&app, &caller, command).await?;
    Ok(Json(Outcome::of(&r)))
}

#[derive(Deserialize)]
struct TransferDto {
    customer: Option<String>,
    deal: Option<String>,
    /// Default: the successor in the plan.
    to: Option<String>,
}

#[derive(Deserialize)]
struct TransfersDto {
    transfers: Vec<TransferDto>,
}

async fn transfer(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let leaver = path_employee(id)?;
    let dto: TransfersDto = json_body(&headers, body)?;
    let mut transfers = Vec::with_capacity(dto.transfers.len());
    for (i, t) in dto.transfers.into_iter().enumerate() {
        let resource = match (t.customer, t.deal) {
            (Some(c), None) => Resource::Customer(field("customer", CustomerId::parse(c))?),
            (None, Some(d)) => Resource::Deal(field("deal", DealId::parse(d))?),
            _ => {
                return Err(Problem::bad_request(format!(
                    "transfers[{i}]: name exactly one of customer or deal"
                ))
                .with("index", i));
            }
        };
        transfers.push(Transfer {
            resource,
            to: t
                .to
                .map(|s| field("to", EmployeeId::parse(s)))
                .transpose()?,
        });
    }
    let r = run(&app, &caller, Command::Transfer { leaver, transfers }).await?;
    Ok(Json(Outcome::of(&r)))
}

async fn complete_item(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let leaver = path_employee(id)?;
    let item = match item.as_str() {
        "customers_transferred" => ChecklistItem::CustomersTransferred,
        "deals_reassigned" => ChecklistItem::DealsReassigned,
        "export_delivered" => ChecklistItem::ExportDelivered,
        "access_reviewed" => ChecklistItem::AccessReviewed,
        other => {
            return Err(Problem::not_found(format!(
                "no checklist item {other:?} (items: customers_transferred, deals_reassigned, export_delivered, access_reviewed)"
            )));
        }
    };
    let r = run(&app, &caller, Command::CompleteItem { leaver, item }).await?;
    Ok(Json(Outcome::of(&r)))
}

#[derive(Deserialize, Default)]
struct ReasonDto {
    #[serde(default)]
    reason: String,
}

async fn reenable(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let employee = path_employee(id)?;
    // The body is optional here.
    let dto: ReasonDto = match &body {
        Ok(b) if b.is_empty() => ReasonDto::default(),
        _ => json_body(&headers, body)?,
    };
    let reason = if dto.reason.is_empty() {
        "re-enabled".into()
    } else {
        dto.reason
    };
    let r = run(&app, &caller, Command::Reenable { employee, reason }).await?;
    Ok(Json(Outcome::of(&r)))
}

async fn delete_account(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ReasonQuery>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let employee = path_employee(id)?;
    let reason = q.reason.unwrap_or_else(|| "deleted".into());
    let r = run(&app, &caller, Command::Delete { employee, reason }).await?;
    Ok(Json(Outcome::of(&r)))
}
