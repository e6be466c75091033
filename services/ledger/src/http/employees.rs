//! The HR commands (scope `hr`): hire, grant and revoke, resignation, departure, handover
//! transfers and checklist, re-enable, delete. Each is decided against the current state and
//! recorded in one commit, or refused with a problem and nothing written: 404 for an unknown
//! employee, 409 for a command that contradicts the state, 422 for one that names something
//! that cannot take part.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use proto_types::event::{ChecklistItem, Level, Module, Resource};
use proto_types::ids::{CustomerId, DealId, EmployeeId, IdError, RoleName, SystemId};
use proto_types::{Actor, Date, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Scope};
use super::ingest::{ModuleDto, parse_time};
use super::problem::Problem;
use super::{AppState, json_body};
use crate::commands::{Command, Transfer};
use crate::writer::Recorded;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hire))
        .routes(routes!(delete_account))
        .routes(routes!(grant_role))
        .routes(routes!(revoke_role))
        .routes(routes!(grant_permission))
        .routes(routes!(revoke_permission))
        .routes(routes!(resign))
        .routes(routes!(depart))
        .routes(routes!(transfer))
        .routes(routes!(complete_item))
        .routes(routes!(reenable))
        .routes(routes!(define_role))
}

/// How a command can be refused; nothing is written then.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum CommandRefusals {
    /// Malformed JSON, or a missing or mistyped field.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(super::ProblemDoc),
    /// No valid token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(super::ProblemDoc),
    /// The token lacks the hr scope.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(super::ProblemDoc),
    /// The employee (or checklist item) does not exist.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(super::ProblemDoc),
    /// The command contradicts the state (e.g. departing twice).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(super::ProblemDoc),
    /// The command names something that cannot take part (e.g. a successor who has left).
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(super::ProblemDoc),
    /// The writer's queue is full; see Retry-After.
    #[response(status = 429, content_type = "application/problem+json")]
    Busy(super::ProblemDoc),
}

/// What a command recorded.
#[derive(Serialize, ToSchema)]
pub struct Outcome {
    pub recorded: Vec<RecordedDto>,
}

#[derive(Serialize, ToSchema)]
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

/// Runs a command for `caller` (recorded as the system principal the token names). Handlers
/// check the scope first, before they read the body.
pub(crate) async fn run(
    app: &AppState,
    caller: &Caller,
    command: Command,
) -> Result<Vec<Recorded>, Problem> {
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
        Command::DefineRole { .. } => "define_role",
        Command::SubmitResignation { .. } => "submit_resignation",
        Command::Depart { .. } => "depart",
        Command::Transfer { .. } => "transfer",
        Command::CompleteItem { .. } => "complete_item",
        Command::Reenable { .. } => "reenable",
        Command::Disable { .. } => "disable",
        Command::Delete { .. } => "delete",
    }
}

#[derive(Deserialize, ToSchema)]
pub struct HireDto {
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

#[utoipa::path(post, path = "/v1/employees", tag = "hr", request_body = HireDto,
    responses((status = 201, description = "Hired", body = Outcome), CommandRefusals))]
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

#[derive(Deserialize, ToSchema)]
pub struct RoleDto {
    role: String,
}

#[utoipa::path(post, path = "/v1/employees/{id}/roles", tag = "hr", params(("id" = String, Path, description = "The employee id")), request_body = RoleDto,
    responses((status = 200, description = "Granted", body = Outcome), CommandRefusals))]
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

#[derive(Deserialize, IntoParams)]
pub struct ReasonQuery {
    /// Why (recorded with the event).
    reason: Option<String>,
}

#[utoipa::path(delete, path = "/v1/employees/{id}/roles/{role}", tag = "hr", params(("id" = String, Path, description = "The employee id"), ("role" = String, Path, description = "The role"), ReasonQuery),
    responses((status = 200, description = "Revoked", body = Outcome), CommandRefusals))]
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

#[derive(Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelDto {
    None,
    Read,
    Write,
    Admin,
}

#[derive(Deserialize, ToSchema)]
pub struct PermissionDto {
    module: ModuleDto,
    level: LevelDto,
}

#[utoipa::path(post, path = "/v1/employees/{id}/permissions", tag = "hr", params(("id" = String, Path, description = "The employee id")), request_body = PermissionDto,
    responses((status = 200, description = "Granted", body = Outcome), CommandRefusals))]
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
    let level = level_of(dto.level);
    let command = Command::GrantPermission {
        employee,
        module: dto.module.into(),
        level,
    };
    let r = run(&app, &caller, command).await?;
    Ok(Json(Outcome::of(&r)))
}

/// What a role grants: each module named, with its level.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDefinitionDto {
    /// Module → level, e.g. `{"customers": "write", "export": "read"}`.
    permissions: std::collections::BTreeMap<String, LevelDto>,
}

/// Defines (or redefines) what a role grants to everyone who holds it, from now on. Scope `hr`.
/// A definition equal to the current one records nothing.
#[utoipa::path(put, path = "/v1/roles/{role}", tag = "hr", params(("role" = String, Path, description = "The role name")), request_body = RoleDefinitionDto,
    responses((status = 200, description = "Defined", body = Outcome), CommandRefusals))]
async fn define_role(
    State(app): State<AppState>,
    caller: Caller,
    Path(role): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(Scope::Hr)?;
    let role = RoleName::parse(role)
        .map_err(|e| Problem::bad_request(format!("role: {e}")).with("field", "role"))?;
    let dto: RoleDefinitionDto = json_body(&headers, body)?;
    let mut permissions = Vec::with_capacity(dto.permissions.len());
    for (module, level) in dto.permissions {
        let m: ModuleDto = serde_json::from_value(serde_json::Value::String(module.clone()))
            .map_err(|_| {
                Problem::bad_request(format!(
                    "permissions.{module}: not a module (customers, deals, reports, export, settings)"
                ))
                .with("field", format!("permissions.{module}"))
            })?;
        permissions.push((Module::from(m), level_of(level)));
    }
    let r = run(&app, &caller, Command::DefineRole { role, permissions }).await?;
    Ok(Json(Outcome::of(&r)))
}

fn level_of(l: LevelDto) -> Level {
    match l {
        LevelDto::None => Level::None,
        LevelDto::Read => Level::Read,
        LevelDto::Write => Level::Write,
        LevelDto::Admin => Level::Admin,
    }
}

#[utoipa::path(delete, path = "/v1/employees/{id}/permissions/{module}", tag = "hr", params(("id" = String, Path, description = "The employee id"), ("module" = ModuleDto, Path, description = "The module")),
    responses((status = 200, description = "Revoked", body = Outcome), CommandRefusals))]
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

#[derive(Deserialize, ToSchema)]
pub struct ResignationDto {
    /// YYYY-MM-DD; defaults to today.
    notice_date: Option<String>,
    /// YYYY-MM-DD.
    last_day: String,
    #[serde(default)]
    reason: String,
}

#[utoipa::path(post, path = "/v1/employees/{id}/resignation", tag = "hr", params(("id" = String, Path, description = "The employee id")), request_body = ResignationDto,
    responses((status = 200, description = "Recorded; the notice period starts", body = Outcome), CommandRefusals))]
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

#[derive(Deserialize, ToSchema)]
pub struct DepartureDto {
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

#[utoipa::path(post, path = "/v1/employees/{id}/departure", tag = "hr", params(("id" = String, Path, description = "The employee id")), request_body = DepartureDto,
    responses((status = 200, description = "Departed: account disabled, roles revoked, handover planned", body = Outcome), CommandRefusals))]
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

#[derive(Deserialize, ToSchema)]
pub struct TransferDto {
    customer: Option<String>,
    deal: Option<String>,
    /// Default: the successor in the plan.
    to: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct TransfersDto {
    transfers: Vec<TransferDto>,
}

#[utoipa::path(post, path = "/v1/employees/{id}/handover/transfers", tag = "hr", params(("id" = String, Path, description = "The leaver")), request_body = TransfersDto,
    responses((status = 200, description = "Transferred", body = Outcome), CommandRefusals))]
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

#[utoipa::path(post, path = "/v1/employees/{id}/handover/items/{item}/complete", tag = "hr", params(("id" = String, Path, description = "The leaver"), ("item" = String, Path, description = "customers_transferred, deals_reassigned, export_delivered or access_reviewed")),
    responses((status = 200, description = "Completed", body = Outcome), CommandRefusals))]
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

#[derive(Deserialize, Default, ToSchema)]
pub struct ReasonDto {
    #[serde(default)]
    reason: String,
}

#[utoipa::path(post, path = "/v1/employees/{id}/reenable", tag = "hr", params(("id" = String, Path, description = "The employee id")), request_body(content = Option<ReasonDto>, description = "Optional"),
    responses((status = 200, description = "Re-enabled (re-hired)", body = Outcome), CommandRefusals))]
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

#[utoipa::path(delete, path = "/v1/employees/{id}", tag = "hr", params(("id" = String, Path, description = "The employee id"), ReasonQuery),
    responses((status = 200, description = "Deleted; the history stays", body = Outcome), CommandRefusals))]
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
