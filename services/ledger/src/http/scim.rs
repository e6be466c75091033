//! SCIM 2.0 (RFC 7643/7644) provisioning of Users, the way Okta and Microsoft Entra drive it
//! (scope `hr`). A SCIM User is an employee; its `id` and `userName` are the employee id.
//!
//! - `POST /Users` hires; `PUT` and `PATCH` change attributes (each change becomes an event);
//! - `active` set to false (PATCH with or without a path, string or boolean value, or PUT) starts
//!   the same departure as `POST /v1/employees/{id}/departure`: the account is disabled at once,
//!   roles revoked, the handover planned to the manager. When no successor can be planned (no
//!   manager), the account is disabled at once and the departure awaits HR;
//! - `active` set to true re-enables; `DELETE` deletes the account (its history stays).
//!
//! Responses use `application/scim+json`; errors the SCIM error schema.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use projections::directory::Employee;
use proto_types::Timestamp;
use proto_types::ids::EmployeeId;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Scope};
use super::problem::Problem;
use super::{AppState, parse_json, read_json_bytes};
use crate::commands::{Command, CommandError};
use crate::writer::CommandFailure;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const MEDIA: &str = "application/scim+json";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(service_provider_config))
        .routes(routes!(resource_types))
        .routes(routes!(resource_type_user))
        .routes(routes!(schemas))
        .routes(routes!(schema))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, replace_user, patch_user, delete_user))
}

/// A SCIM message or resource (RFC 7643/7644), as `application/scim+json`.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub struct ScimDoc {
    /// The SCIM schema URNs of the document.
    schemas: Vec<String>,
}

/// How SCIM requests fail, in the SCIM error schema.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum ScimErrors {
    /// invalidSyntax, invalidValue, invalidFilter, invalidPath or mutability.
    #[response(status = 400, content_type = "application/scim+json")]
    BadRequest(ScimDoc),
    /// No valid token.
    #[response(status = 401, content_type = "application/scim+json")]
    Unauthorized(ScimDoc),
    /// The token lacks the hr scope.
    #[response(status = 403, content_type = "application/scim+json")]
    Forbidden(ScimDoc),
    /// No such User (or schema).
    #[response(status = 404, content_type = "application/scim+json")]
    NotFound(ScimDoc),
    /// uniqueness: the userName exists.
    #[response(status = 409, content_type = "application/scim+json")]
    Conflict(ScimDoc),
}

/// A SCIM error response.
#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }
    fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }
    fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            None,
            format!("no User with id {id:?}"),
        )
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut res = scim_json(self.status, body);
        res.extensions_mut()
            .insert(super::problem::ProblemKind("scim_error"));
        res
    }
}

impl From<Problem> for ScimError {
    fn from(p: Problem) -> Self {
        let scim_type = match p.status {
            StatusCode::BAD_REQUEST => Some("invalidSyntax"),
            StatusCode::CONFLICT => Some("uniqueness"),
            StatusCode::UNPROCESSABLE_ENTITY => Some("invalidValue"),
            _ => None,
        };
        // SCIM has no 422: an impossible value is a 400 invalidValue.
        let status = if p.status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            p.status
        };
        ScimError::new(status, scim_type, p.detail)
    }
}

fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA));
    res
}

fn authorize(caller: Result<Caller, Problem>) -> Result<Caller, ScimError> {
    let caller = caller?;
    caller.require(Scope::Hr)?;
    Ok(caller)
}

async fn command(app: &AppState, caller: &Caller, c: Command) -> Result<(), CommandFailure> {
    super::employees::run_refusals(app, caller, c)
        .await
        .map(|_| ())
}

fn refusal(e: CommandFailure) -> ScimError {
    match e {
        CommandFailure::Refused(CommandError::NotFound(d)) => {
            ScimError::new(StatusCode::NOT_FOUND, None, d)
        }
        CommandFailure::Refused(CommandError::Conflict(d)) => {
            ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), d)
        }
        CommandFailure::Refused(CommandError::Unprocessable(d)) => {
            ScimError::bad("invalidValue", d)
        }
        CommandFailure::Append(a) => Problem::from(a).into(),
    }
}

// ---------- discovery ----------

#[utoipa::path(get, path = "/scim/v2/ServiceProviderConfig", tag = "scim", responses((status = 200, description = "What this provider supports", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn service_provider_config(caller: Result<Caller, Problem>) -> Result<Response, ScimError> {
    authorize(caller)?;
    Ok(scim_json(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 1000},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A Handover API token with the hr scope (handover token add NAME --scopes hr)",
                "primary": true
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": "/scim/v2/ServiceProviderConfig"}
        }),
    ))
}

fn user_resource_type() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "An employee's CRM account",
        "schema": USER,
        "schemaExtensions": [{"schema": ENTERPRISE, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": "/scim/v2/ResourceTypes/User"}
    })
}

#[utoipa::path(get, path = "/scim/v2/ResourceTypes", tag = "scim", responses((status = 200, description = "The User resource type", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn resource_types(caller: Result<Caller, Problem>) -> Result<Response, ScimError> {
    authorize(caller)?;
    Ok(scim_json(
        StatusCode::OK,
        json!({"schemas": [LIST], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
               "Resources": [user_resource_type()]}),
    ))
}

#[utoipa::path(get, path = "/scim/v2/ResourceTypes/User", tag = "scim", responses((status = 200, description = "The User resource type", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn resource_type_user(caller: Result<Caller, Problem>) -> Result<Response, ScimError> {
    authorize(caller)?;
    Ok(scim_json(StatusCode::OK, user_resource_type()))
}

fn attr(
    name: &str,
    ty: &str,
    required: bool,
    mutability: &str,
    uniqueness: &str,
    description: &str,
) -> Value {
    json!({"name": name, "type": ty, "multiValued": false, "description": description,
           "required": required, "caseExact": false, "mutability": mutability,
           "returned": "default", "uniqueness": uniqueness})
}

fn user_schema() -> Value {
    let mut emails = attr(
        "emails",
        "complex",
        false,
        "readWrite",
        "none",
        "Email addresses; the primary one is kept",
    );
    emails["multiValued"] = json!(true);
    emails["subAttributes"] = json!([
        attr("value", "string", false, "readWrite", "none", "The address"),
        attr(
            "type",
            "string",
            false,
            "readWrite",
            "none",
            "work, home or other"
        ),
        attr(
            "primary",
            "boolean",
            false,
            "readWrite",
            "none",
            "The primary address"
        ),
    ]);
    let mut name = attr(
        "name",
        "complex",
        false,
        "readWrite",
        "none",
        "The employee's name",
    );
    name["subAttributes"] = json!([
        attr(
            "formatted",
            "string",
            false,
            "readWrite",
            "none",
            "The full name"
        ),
        attr(
            "givenName",
            "string",
            false,
            "writeOnly",
            "none",
            "Joined with familyName into formatted"
        ),
        attr(
            "familyName",
            "string",
            false,
            "writeOnly",
            "none",
            "Joined with givenName into formatted"
        ),
    ]);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER,
        "name": "User",
        "description": "An employee's CRM account",
        "attributes": [
            attr("userName", "string", true, "immutable", "server", "The employee id; also the User's id"),
            name,
            attr("displayName", "string", false, "readWrite", "none", "The name to display"),
            emails,
            attr("title", "string", false, "readWrite", "none", "Job title"),
            attr("active", "boolean", false, "readWrite", "none", "false starts the employee's departure; true re-enables"),
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{USER}")}
    })
}

fn enterprise_schema() -> Value {
    let mut manager = attr(
        "manager",
        "complex",
        false,
        "readWrite",
        "none",
        "The employee's manager, who takes over their customers by default",
    );
    manager["subAttributes"] = json!([attr(
        "value",
        "string",
        false,
        "readWrite",
        "none",
        "The manager's id"
    )]);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": ENTERPRISE,
        "name": "EnterpriseUser",
        "description": "Enterprise User",
        "attributes": [attr("department", "string", false, "readWrite", "none", "Department"), manager],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{ENTERPRISE}")}
    })
}

#[utoipa::path(get, path = "/scim/v2/Schemas", tag = "scim", responses((status = 200, description = "The User and EnterpriseUser schemas", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn schemas(caller: Result<Caller, Problem>) -> Result<Response, ScimError> {
    authorize(caller)?;
    Ok(scim_json(
        StatusCode::OK,
        json!({"schemas": [LIST], "totalResults": 2, "startIndex": 1, "itemsPerPage": 2,
               "Resources": [user_schema(), enterprise_schema()]}),
    ))
}

#[utoipa::path(get, path = "/scim/v2/Schemas/{id}", tag = "scim", params(("id" = String, Path, description = "A schema URN")), responses((status = 200, description = "One schema", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn schema(
    caller: Result<Caller, Problem>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    authorize(caller)?;
    match id.as_str() {
        USER => Ok(scim_json(StatusCode::OK, user_schema())),
        ENTERPRISE => Ok(scim_json(StatusCode::OK, enterprise_schema())),
        _ => Err(ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("no schema {id:?}"),
        )),
    }
}

// ---------- users ----------

fn user_json(e: &Employee) -> Value {
    let mut v = json!({
        "schemas": [USER, ENTERPRISE],
        "id": e.id.as_str(),
        "userName": e.id.as_str(),
        "name": {"formatted": e.name},
        "displayName": e.name,
        "title": e.title,
        "active": e.is_active(),
        ENTERPRISE: {"department": e.department},
        "meta": {
            "resourceType": "User",
            "created": e.hired_at.to_rfc3339(),
            "lastModified": e.updated_at.to_rfc3339(),
            "location": format!("/scim/v2/Users/{}", e.id),
        }
    });
    if !e.email.is_empty() {
        v["emails"] = json!([{"value": e.email, "type": "work", "primary": true}]);
    }
    if let Some(m) = &e.manager {
        v[ENTERPRISE]["manager"] = json!({"value": m.as_str(), "$ref": format!("../Users/{m}")});
    }
    v
}

async fn load(app: &AppState, id: &str) -> Result<Employee, ScimError> {
    let Ok(eid) = EmployeeId::parse(id) else {
        return Err(ScimError::not_found(id));
    };
    app.ledger
        .read(move |s| s.directory.get(&eid).cloned())
        .await
        .map_err(|e| ScimError::from(Problem::from(e)))?
        .filter(|e| !e.is_deleted())
        .ok_or_else(|| ScimError::not_found(id))
}

/// The attributes Handover keeps of a User.
#[derive(Debug, Clone, PartialEq)]
struct Attrs {
    name: String,
    email: String,
    title: String,
    department: String,
    manager: Option<String>,
    active: bool,
}

impl Attrs {
    fn of(e: &Employee) -> Self {
        Attrs {
            name: e.name.clone(),
            email: e.email.clone(),
            title: e.title.clone(),
            department: e.department.clone(),
            manager: e.manager.as_ref().map(ToString::to_string),
            active: e.is_active(),
        }
    }

    fn empty() -> Self {
        Attrs {
            name: String::new(),
            email: String::new(),
            title: String::new(),
            department: String::new(),
            manager: None,
            active: true,
        }
    }

    /// Sets the attributes a full User representation carries (POST, PUT).
    fn from_user(body: &Value) -> Result<Self, ScimError> {
        let mut a = Attrs::empty();
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::bad("invalidSyntax", "a User is a JSON object"))?;
        // displayName, when given, is the name shown: it wins over the parts of `name`.
        let display = |k: &String| k.eq_ignore_ascii_case("displayName");
        for (k, v) in obj.iter().filter(|(k, _)| !display(k)) {
            a.set(k, v, false)?;
        }
        for (k, v) in obj.iter().filter(|(k, _)| display(k)) {
            a.set(k, v, false)?;
        }
        if a.name.is_empty()
            && let Some(n) = body.get("userName").and_then(Value::as_str)
        {
            a.name = n.to_string();
        }
        Ok(a)
    }

    /// Sets one attribute by its (case-insensitive) SCIM path; `remove` clears it.
    fn set(&mut self, path: &str, value: &Value, remove: bool) -> Result<(), ScimError> {
        let lower = path.to_ascii_lowercase();
        let ent = ENTERPRISE.to_ascii_lowercase();
        let path = lower
            .strip_prefix(&format!("{}:", USER.to_ascii_lowercase()))
            .unwrap_or(&lower);
        let text = |v: &Value| -> Result<String, ScimError> {
            match v {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                other => Err(ScimError::bad(
                    "invalidValue",
                    format!("{path}: expected a string, got {other}"),
                )),
            }
        };
        match path {
            "schemas" | "id" | "meta" | "externalid" | "username" | "password" | "groups" => {}
            "active" => {
                self.active = match value {
                    Value::Bool(b) => *b,
                    Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                    Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                    _ if remove => false,
                    other => {
                        return Err(ScimError::bad(
                            "invalidValue",
                            format!("active: expected a boolean, got {other}"),
                        ));
                    }
                };
            }
            "displayname" | "name.formatted" => {
                self.name = if remove { String::new() } else { text(value)? }
            }
            "name" => {
                if remove {
                    self.name.clear();
                } else if let Some(f) = value.get("formatted").and_then(Value::as_str) {
                    self.name = f.to_string();
                } else {
                    let part = |k: &str| {
                        value
                            .get(k)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    let joined = format!("{} {}", part("givenName"), part("familyName"))
                        .trim()
                        .to_string();
                    if !joined.is_empty() {
                        self.name = joined;
                    }
                }
            }
            "name.givenname" | "name.familyname" => {
                // Kept only as part of the formatted name; a lone part replaces nothing.
            }
            "title" => self.title = if remove { String::new() } else { text(value)? },
            "emails" => {
                self.email = if remove {
                    String::new()
                } else {
                    let list = value
                        .as_array()
                        .cloned()
                        .unwrap_or_else(|| vec![value.clone()]);
                    let primary = list
                        .iter()
                        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                        .or_else(|| list.first());
                    primary
                        .and_then(|e| e.get("value"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
            }
            p if p.starts_with("emails[") && p.ends_with("].value") => {
                self.email = if remove { String::new() } else { text(value)? };
            }
            p if p == ent => {
                if let Some(obj) = value.as_object() {
                    for (k, v) in obj {
                        self.set(&format!("{ENTERPRISE}:{k}"), v, remove)?;
                    }
                }
            }
            p if p == format!("{ent}:department") => {
                self.department = if remove { String::new() } else { text(value)? };
            }
            p if p == format!("{ent}:manager") || p == format!("{ent}:manager.value") => {
                self.manager = if remove {
                    None
                } else {
                    let m = match value {
                        Value::Object(o) => {
                            o.get("value").map(text).transpose()?.unwrap_or_default()
                        }
                        other => text(other)?,
                    };
                    (!m.is_empty()).then_some(m)
                };
            }
            other => {
                return Err(ScimError::bad(
                    "invalidPath",
                    format!("attribute {other:?} is not supported"),
                ));
            }
        }
        Ok(())
    }
}

/// Records the difference between `from` and `to` for `id`: an attribute update, then the
/// change of `active`.
async fn apply(
    app: &AppState,
    caller: &Caller,
    id: &EmployeeId,
    from: &Attrs,
    to: &Attrs,
) -> Result<(), ScimError> {
    let changed = |a: &String, b: &String| (a != b).then(|| b.clone());
    let manager = if from.manager == to.manager {
        None
    } else {
        Some(
            to.manager
                .as_ref()
                .map(|m| EmployeeId::parse(m.clone()))
                .transpose()
                .map_err(|e| ScimError::bad("invalidValue", format!("manager: {e}")))?,
        )
    };
    let update = Command::UpdateEmployee {
        employee: id.clone(),
        name: changed(&from.name, &to.name),
        email: changed(&from.email, &to.email),
        manager,
        department: changed(&from.department, &to.department),
        title: changed(&from.title, &to.title),
    };
    let attributes_changed = Attrs {
        active: to.active,
        ..from.clone()
    } != *to;
    if attributes_changed {
        command(app, caller, update).await.map_err(refusal)?;
    }
    match (from.active, to.active) {
        (true, false) => {
            let depart = Command::Depart {
                employee: id.clone(),
                effective_at: Timestamp::now(),
                reason: "deprovisioned by the identity provider".into(),
                successors: Default::default(),
                default_successor: None,
            };
            match command(app, caller, depart).await {
                Ok(()) => {}
                // No successor can be planned: cut access now; HR completes the departure.
                Err(CommandFailure::Refused(CommandError::Unprocessable(why))) => {
                    tracing::warn!(employee = %id, %why, "deprovisioned without a departure plan");
                    let disable = Command::Disable {
                        employee: id.clone(),
                        reason: format!(
                            "deprovisioned by the identity provider; departure awaits a successor ({why})"
                        ),
                    };
                    command(app, caller, disable).await.map_err(refusal)?;
                }
                Err(e) => return Err(refusal(e)),
            }
        }
        (false, true) => {
            let reenable = Command::Reenable {
                employee: id.clone(),
                reason: "re-provisioned by the identity provider".into(),
            };
            command(app, caller, reenable).await.map_err(refusal)?;
        }
        _ => {}
    }
    Ok(())
}

async fn created_or_current(
    app: &AppState,
    id: &str,
    status: StatusCode,
) -> Result<Response, ScimError> {
    let e = load(app, id).await?;
    let mut res = scim_json(status, user_json(&e));
    if status == StatusCode::CREATED
        && let Ok(loc) = HeaderValue::from_str(&format!("/scim/v2/Users/{id}"))
    {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

#[utoipa::path(post, path = "/scim/v2/Users", tag = "scim", request_body(content = ScimDoc, content_type = "application/scim+json"),
    responses((status = 201, description = "Hired", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn create_user(
    State(app): State<AppState>,
    caller: Result<Caller, Problem>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ScimError> {
    let caller = authorize(caller)?;
    let body: Value = parse_json(&read_json_bytes(&headers, body)?)?;
    let user_name = body
        .get("userName")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ScimError::bad("invalidValue", "userName is required"))?;
    let id = EmployeeId::parse(user_name)
        .map_err(|e| ScimError::bad("invalidValue", format!("userName: {e}")))?;
    let attrs = Attrs::from_user(&body)?;
    let manager = attrs
        .manager
        .as_ref()
        .map(|m| EmployeeId::parse(m.clone()))
        .transpose()
        .map_err(|e| ScimError::bad("invalidValue", format!("manager: {e}")))?;
    let hire = Command::Hire {
        employee: id.clone(),
        name: attrs.name.clone(),
        email: attrs.email.clone(),
        manager,
        department: attrs.department.clone(),
        title: attrs.title.clone(),
    };
    command(&app, &caller, hire).await.map_err(refusal)?;
    if !attrs.active {
        let disable = Command::Disable {
            employee: id.clone(),
            reason: "provisioned inactive by the identity provider".into(),
        };
        command(&app, &caller, disable).await.map_err(refusal)?;
    }
    created_or_current(&app, id.as_str(), StatusCode::CREATED).await
}

#[utoipa::path(get, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path, description = "The User id (the employee id)")), responses((status = 200, description = "The User", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn get_user(
    State(app): State<AppState>,
    caller: Result<Caller, Problem>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    authorize(caller)?;
    created_or_current(&app, &id, StatusCode::OK).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
}

/// The filters supported: `ATTR eq "VALUE"` for userName, id, emails(.value), displayName, and
/// `active eq true|false`.
fn parse_filter(f: &str) -> Result<(String, String), ScimError> {
    let invalid = || {
        ScimError::bad(
            "invalidFilter",
            format!("unsupported filter {f:?}; use: userName eq \"value\""),
        )
    };
    let mut parts = f.trim().splitn(3, char::is_whitespace);
    let (Some(attr), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if !op.eq_ignore_ascii_case("eq") {
        return Err(invalid());
    }
    let value = value.trim();
    let value = if let Some(v) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        v.replace("\\\"", "\"")
    } else if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
        value.to_ascii_lowercase()
    } else {
        return Err(invalid());
    };
    let attr = attr.to_ascii_lowercase();
    match attr.as_str() {
        "username" | "id" | "emails" | "emails.value" | "displayname" | "active" => {
            Ok((attr, value))
        }
        _ => Err(invalid()),
    }
}

#[utoipa::path(get, path = "/scim/v2/Users", tag = "scim",
    params(("filter" = Option<String>, Query, description = "ATTR eq \"VALUE\" for userName, id, emails.value, displayName, active"),
           ("startIndex" = Option<i64>, Query, description = "1-based"), ("count" = Option<i64>, Query, description = "At most 1000")),
    responses((status = 200, description = "A ListResponse", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn list_users(
    State(app): State<AppState>,
    caller: Result<Caller, Problem>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ScimError> {
    authorize(caller)?;
    let filter = q.filter.as_deref().map(parse_filter).transpose()?;
    let start = q.start_index.unwrap_or(1).max(1) as usize;
    let count = q.count.unwrap_or(100).clamp(0, 1000) as usize;
    let (total, page) = app
        .ledger
        .read(move |s| {
            let mut all: Vec<&Employee> = s
                .directory
                .iter()
                .filter(|e| !e.is_deleted())
                .filter(|e| match &filter {
                    None => true,
                    Some((attr, v)) => match attr.as_str() {
                        "username" | "id" => e.id.as_str().eq_ignore_ascii_case(v),
                        "emails" | "emails.value" => e.email.eq_ignore_ascii_case(v),
                        "displayname" => e.name == *v,
                        _ => e.is_active().to_string() == *v,
                    },
                })
                .collect();
            all.sort_by(|a, b| a.id.cmp(&b.id));
            let total = all.len();
            let page: Vec<Value> = all
                .into_iter()
                .skip(start - 1)
                .take(count)
                .map(user_json)
                .collect();
            (total, page)
        })
        .await
        .map_err(|e| ScimError::from(Problem::from(e)))?;
    Ok(scim_json(
        StatusCode::OK,
        json!({"schemas": [LIST], "totalResults": total, "startIndex": start,
               "itemsPerPage": page.len(), "Resources": page}),
    ))
}

#[utoipa::path(put, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path, description = "The User id (the employee id)")), request_body(content = ScimDoc, content_type = "application/scim+json"),
    responses((status = 200, description = "The User after the change; active false starts the departure", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn replace_user(
    State(app): State<AppState>,
    caller: Result<Caller, Problem>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ScimError> {
    let caller = authorize(caller)?;
    let current = load(&app, &id).await?;
    let body: Value = parse_json(&read_json_bytes(&headers, body)?)?;
    if let Some(u) = body.get("userName").and_then(Value::as_str)
        && !u.eq_ignore_ascii_case(current.id.as_str())
    {
        return Err(ScimError::bad(
            "mutability",
            "userName cannot change (it is the employee id)",
        ));
    }
    let mut to = Attrs::from_user(&body)?;
    if to.name.is_empty() {
        to.name = current.name.clone();
    }
    apply(&app, &caller, &current.id, &Attrs::of(&current), &to).await?;
    created_or_current(&app, &id, StatusCode::OK).await
}

#[utoipa::path(patch, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path, description = "The User id (the employee id)")), request_body(content = ScimDoc, content_type = "application/scim+json", description = "A PatchOp"),
    responses((status = 200, description = "The User after the change; active false starts the departure", body = ScimDoc, content_type = "application/scim+json"), ScimErrors))]
async fn patch_user(
    State(app): State<AppState>,
    caller: Result<Caller, Problem>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ScimError> {
    let caller = authorize(caller)?;
    let current = load(&app, &id).await?;
    let body: Value = parse_json(&read_json_bytes(&headers, body)?)?;
    if let Some(schemas) = body.get("schemas").and_then(Value::as_array)
        && !schemas.iter().any(|s| s == PATCH_OP)
    {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("a PATCH body has the schema {PATCH_OP}"),
        ));
    }
    let ops = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::bad("invalidSyntax", "Operations is required"))?;
    let from = Attrs::of(&current);
    let mut to = from.clone();
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        let remove = match kind.as_str() {
            "add" | "replace" => false,
            "remove" => true,
            other => {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    format!("unknown op {other:?}"),
                ));
            }
        };
        match op.get("path").and_then(Value::as_str) {
            Some(path) => {
                if path.eq_ignore_ascii_case("userName") {
                    return Err(ScimError::bad(
                        "mutability",
                        "userName cannot change (it is the employee id)",
                    ));
                }
                to.set(path, &value, remove)?;
            }
            None => {
                let obj: &Map<String, Value> = value.as_object().ok_or_else(|| {
                    ScimError::bad(
                        "invalidValue",
                        "an operation without a path needs an object value",
                    )
                })?;
                for (k, v) in obj {
                    to.set(k, v, remove)?;
                }
            }
        }
    }
    apply(&app, &caller, &current.id, &from, &to).await?;
    created_or_current(&app, &id, StatusCode::OK).await
}

#[utoipa::path(delete, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path, description = "The User id (the employee id)")), responses((status = 204, description = "Deleted; the history stays"), ScimErrors))]
async fn delete_user(
    State(app): State<AppState>,
    caller: Result<Caller, Problem>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let caller = authorize(caller)?;
    let current = load(&app, &id).await?;
    let delete = Command::Delete {
        employee: current.id.clone(),
        reason: "deleted by the identity provider".into(),
    };
    command(&app, &caller, delete).await.map_err(refusal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
