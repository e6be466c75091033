//! The security team's queries. Each answer carries `as_of_seq` (the last entry it reflects; null
//! before the first) and `head_hash` (that entry's hash), and each read is recorded as an
//! `AuditLogQueried` event before it is answered.
//!
//! Listings are ordered by the time the action happened, then by seq, and paged with an opaque
//! cursor that pins the log position of the first page: later pages never show an entry the
//! first page's position did not include, so a listing neither skips nor repeats while the log
//! grows.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use ledger::http::auth::{Caller, Scope};
use ledger::http::problem::Problem;
use projections::directory::{AccountStatus, Directory};
use proto_types::Timestamp;
use proto_types::chain::{EntryRef, GENESIS, Hash32};
use proto_types::event::KIND_NAMES;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{QueryState, storage_problem};
use crate::store::{IndexName, Position, Snapshot};
use crate::views;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(timeline))
        .routes(routes!(employees))
        .routes(routes!(permissions))
        .routes(routes!(owners))
        .routes(routes!(deal_owners))
        .routes(routes!(handover))
        .routes(routes!(entry))
        .routes(routes!(orphaned))
}

/// The most entries one page holds.
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

/// `as_of_seq` and `head_hash` of a store position (`next` entries applied).
fn position(next: u64, head: &Hash32) -> (Value, String) {
    (
        next.checked_sub(1).map_or(Value::Null, Value::from),
        hex::encode(head),
    )
}

pub(crate) fn envelope(next: u64, head: &Hash32, mut body: Value) -> Value {
    let (as_of, hash) = position(next, head);
    if let Some(m) = body.as_object_mut() {
        m.insert("as_of_seq".into(), as_of);
        m.insert("head_hash".into(), Value::String(hash));
    }
    body
}

pub(crate) fn parse_time(field: &str, v: &str) -> Result<i64, Problem> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| Timestamp::from_chrono(t.with_timezone(&chrono::Utc)).0)
        .map_err(|e| {
            Problem::bad_request(format!("{field}: not an RFC 3339 time ({e})"))
                .with("field", field)
        })
}

/// A page cursor: where the last page ended and the position the listing is pinned to.
fn encode_cursor(at: i64, seq: u64, below: u64) -> String {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&at.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&below.to_be_bytes());
    hex::encode(b)
}

fn decode_cursor(c: &str) -> Result<(Position, u64), Problem> {
    let bad =
        || Problem::bad_request("cursor: not a cursor this API gave out").with("field", "cursor");
    let b = hex::decode(c).map_err(|_| bad())?;
    if b.len() != 24 {
        return Err(bad());
    }
    let n = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    Ok(((n(0) as i64, n(8)), n(16)))
}

/// The filters of a listing.
#[derive(Deserialize, IntoParams, Default)]
pub struct ListParams {
    /// Who acted: an employee id, or `system:NAME`.
    actor: Option<String>,
    /// A customer id: events that touch the customer (its deals' too).
    customer: Option<String>,
    /// An event kind, e.g. `customers_exported`.
    kind: Option<String>,
    /// RFC 3339: only actions at or after this time.
    from: Option<String>,
    /// RFC 3339: only actions before this time.
    to: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `json` (default) or `csv`: the page as a spreadsheet (UTF-8 with a BOM), `fields` as JSON
    /// in one column; `as_of_seq`, `head_hash` and the next cursor come as the headers
    /// `Handover-As-Of-Seq`, `Handover-Head-Hash` and `Handover-Next-Cursor`.
    format: Option<String>,
}

/// How a listing is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListFormat {
    Json,
    Csv,
}

fn list_format(p: &ListParams) -> Result<ListFormat, Problem> {
    match p.format.as_deref() {
        None | Some("json") => Ok(ListFormat::Json),
        Some("csv") => Ok(ListFormat::Csv),
        Some(other) => Err(
            Problem::unprocessable(format!("format: {other:?} is not json or csv"))
                .with("field", "format"),
        ),
    }
}

/// The columns of a listing as CSV, in `views::entry`'s names.
const CSV_COLUMNS: [&str; 9] = [
    "seq",
    "occurred_at",
    "recorded_at",
    "actor",
    "kind",
    "event_id",
    "fields",
    "hash",
    "prev",
];

/// A listing's JSON body as the CSV answer `format=csv` asks for.
fn csv_page(body: &Value) -> axum::response::Response {
    use super::export::{cell, csv_line, csv_opening, position_headers};
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let mut out = csv_opening(&CSV_COLUMNS);
    for e in body["events"].as_array().into_iter().flatten() {
        out.extend(csv_line(CSV_COLUMNS.iter().map(|c| cell(&e[*c]))));
    }
    let mut res = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    let h = res.headers_mut();
    position_headers(h, &body["as_of_seq"], &cell(&body["head_hash"]));
    if let Some(c) = body["next_cursor"].as_str()
        && let Ok(v) = HeaderValue::from_str(c)
    {
        h.insert("handover-next-cursor", v);
    }
    res
}

struct Listing {
    /// Keep only entries whose actor is this employee.
    actor_employee: Option<String>,
    index: Option<(IndexName, String)>,
    also: Vec<(IndexName, String)>,
    from: i64,
    to: i64,
    limit: usize,
    cursor: Option<(Position, u64)>,
}

fn listing(p: &ListParams, subject: Option<(IndexName, String)>) -> Result<Listing, Problem> {
    let limit = match &p.limit {
        None => DEFAULT_LIMIT,
        Some(s) => {
            let n: usize = s
                .parse()
                .map_err(|_| Problem::bad_request("limit: not a number").with("field", "limit"))?;
            if n == 0 || n > MAX_LIMIT {
                return Err(
                    Problem::unprocessable(format!("limit must be 1 to {MAX_LIMIT}"))
                        .with("field", "limit"),
                );
            }
            n
        }
    };
    if let Some(k) = &p.kind
        && !KIND_NAMES.contains(&k.as_str())
    {
        return Err(Problem::unprocessable(format!(
            "kind: {k:?} is not an event kind (one of: {})",
            KIND_NAMES.join(", ")
        ))
        .with("field", "kind"));
    }
    for (field, v) in [("actor", &p.actor), ("customer", &p.customer)] {
        if v.as_deref().is_some_and(str::is_empty) {
            return Err(Problem::bad_request(format!("{field}: empty")).with("field", field));
        }
    }
    let from = p
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(i64::MIN);
    let to =
        p.to.as_deref()
            .map(|v| parse_time("to", v))
            .transpose()?
            .unwrap_or(i64::MAX);
    if from > to {
        return Err(Problem::unprocessable("from is after to").with("field", "from"));
    }
    let mut wanted: Vec<(IndexName, String)> = subject.into_iter().collect();
    // An employee actor: their entries, then only those they did themselves.
    let mut actor_employee = None;
    if let Some(a) = &p.actor {
        if a.starts_with("system:") {
            wanted.push((IndexName::Actor, a.clone()));
        } else {
            wanted.insert(0, (IndexName::Employee, a.clone()));
            actor_employee = Some(a.clone());
        }
    }
    if let Some(c) = &p.customer {
        wanted.push((IndexName::Customer, c.clone()));
    }
    if let Some(k) = &p.kind {
        wanted.push((IndexName::Kind, k.clone()));
    }
    let mut wanted = wanted.into_iter();
    Ok(Listing {
        actor_employee,
        index: wanted.next(),
        also: wanted.collect(),
        from,
        to,
        limit,
        cursor: p.cursor.as_deref().map(decode_cursor).transpose()?,
    })
}

/// Runs a listing on a snapshot: the page of entries and the envelope.
fn run_listing(snap: &Snapshot, l: &Listing) -> Result<(Value, u64), Problem> {
    let (next, head) = snap.position().map_err(storage_problem)?;
    // The position the listing is pinned to: the first page's.
    let (below, head) = match l.cursor {
        Some((_, below)) if below <= next => {
            let head = match below.checked_sub(1) {
                None => GENESIS,
                Some(s) => snap
                    .entry(s)
                    .map_err(storage_problem)?
                    .and_then(|b| EntryRef::parse(&b).ok().map(|e| *e.hash()))
                    .unwrap_or(head),
            };
            (below, head)
        }
        Some(_) => {
            return Err(
                Problem::bad_request("cursor: not a cursor this API gave out")
                    .with("field", "cursor"),
            );
        }
        None => (next, head),
    };
    // Names never filed under match nothing.
    let id = |(n, k): &(IndexName, String)| -> Result<Option<(IndexName, u32)>, Problem> {
        Ok(snap
            .name_id(*n, k)
            .map_err(storage_problem)?
            .map(|i| (*n, i)))
    };
    let index = l.index.as_ref().map(id).transpose()?;
    let also: Option<Vec<(IndexName, u32)>> = l.also.iter().map(id).collect::<Result<_, _>>()?;
    let (seqs, last) = match (index, also) {
        (Some(None), _) | (_, None) => (Vec::new(), None),
        (index, Some(also)) => snap
            .list(
                index.flatten(),
                l.from,
                l.to,
                l.cursor.map(|c| c.0),
                below,
                l.limit,
                |at, seq| {
                    for (name, key) in &also {
                        if !snap.indexed(*name, *key, at, seq)? {
                            return Ok(false);
                        }
                    }
                    match &l.actor_employee {
                        None => Ok(true),
                        Some(a) => Ok(snap.event(seq)?.is_some_and(|(ev, _)| {
                            ev.actor.employee().is_some_and(|e| e.as_str() == a)
                        })),
                    }
                },
            )
            .map_err(storage_problem)?,
    };
    let mut items = Vec::with_capacity(seqs.len());
    for s in &seqs {
        if let Some(bytes) = snap.entry(*s).map_err(storage_problem)? {
            items.push(views::entry(&bytes));
        }
    }
    let n = items.len() as u64;
    let body = json!({
        "events": items,
        "next_cursor": last.map(|(at, seq)| encode_cursor(at, seq, below)),
    });
    Ok((envelope(below, &head, body), n))
}

pub(crate) fn path_and_query(uri: &Uri) -> String {
    format!(
        "GET {}",
        uri.path_and_query()
            .map_or_else(|| uri.path().to_string(), ToString::to_string)
    )
}

/// Answers once the read is recorded.
pub(crate) async fn answer(
    q: &QueryState,
    caller: &Caller,
    uri: &Uri,
    endpoint: &'static str,
    started: Instant,
    (body, results): (Value, u64),
) -> Result<Json<Value>, Problem> {
    q.record(caller, &path_and_query(uri), results).await?;
    q.metrics.query(endpoint, started.elapsed());
    Ok(Json(body))
}

/// The common body of an audited read: `read` answers from one snapshot at its position (the
/// next seq and the head hash), with the body and how many results it holds; the read is then
/// recorded, timed and answered ([`answer`]).
pub(crate) async fn answer_read(
    q: &QueryState,
    caller: &Caller,
    uri: &Uri,
    endpoint: &'static str,
    read: impl FnOnce(&Snapshot, u64, &Hash32) -> Result<(Value, u64), Problem> + Send + 'static,
) -> Result<Json<Value>, Problem> {
    let started = Instant::now();
    let out = q
        .read(move |snap| {
            let (next, head) = snap.position().map_err(storage_problem)?;
            read(snap, next, &head)
        })
        .await?;
    answer(q, caller, uri, endpoint, started, out).await
}

/// [`answer`], as JSON or as CSV.
async fn answer_listing(
    q: &QueryState,
    caller: &Caller,
    uri: &Uri,
    endpoint: &'static str,
    started: Instant,
    out: (Value, u64),
    format: ListFormat,
) -> Result<axum::response::Response, Problem> {
    use axum::response::IntoResponse;
    let Json(body) = answer(q, caller, uri, endpoint, started, out).await?;
    Ok(match format {
        ListFormat::Json => Json(body).into_response(),
        ListFormat::Csv => csv_page(&body),
    })
}

/// Events matching every filter given, by the time they happened.
#[utoipa::path(get, path = "/v1/events", tag = "forensic", params(ListParams),
    responses(
        (status = 200, description = "A page of entries: `events`, `next_cursor` (null on the last page), `as_of_seq`, `head_hash`; with format=csv, text/csv and those three as headers", body = Object),
        (status = 400, description = "A malformed time, limit or cursor", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "An unknown kind or format, a limit out of range, from after to", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The read could not be recorded, so it is not answered", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn events(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Query(p): Query<ListParams>,
) -> Result<axum::response::Response, Problem> {
    caller.require(Scope::AuditRead)?;
    let started = Instant::now();
    let format = list_format(&p)?;
    let l = listing(&p, None)?;
    let out = q.read(move |snap| run_listing(snap, &l)).await?;
    answer_listing(&q, &caller, &uri, "events", started, out, format).await
}

/// Everything the employee did and everything done to their account, by time.
#[utoipa::path(get, path = "/v1/employees/{id}/timeline", tag = "forensic",
    params(("id" = String, Path, description = "Employee id"), ListParams),
    responses(
        (status = 200, description = "A page of the employee's entries (filters as for /v1/events)", body = Object),
        (status = 400, description = "A malformed time, limit or cursor", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such employee, and no action by that id", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "An unknown kind or format, or a limit out of range", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn timeline(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<axum::response::Response, Problem> {
    caller.require(Scope::AuditRead)?;
    let started = Instant::now();
    let format = list_format(&p)?;
    let l = listing(&p, Some((IndexName::Employee, id.clone())))?;
    let out = q
        .read(move |snap| {
            let known = snap.employee(&id).map_err(storage_problem)?.is_some()
                || snap
                    .name_id(IndexName::Employee, &id)
                    .map_err(storage_problem)?
                    .is_some();
            if !known {
                return Err(Problem::not_found(format!(
                    "no employee {id:?} and no action by that id"
                )));
            }
            let (mut body, n) = run_listing(snap, &l)?;
            body["employee"] = Value::String(id);
            Ok((body, n))
        })
        .await?;
    answer_listing(&q, &caller, &uri, "timeline", started, out, format).await
}

#[derive(Deserialize, IntoParams)]
pub struct StatusParams {
    /// `active`, `resigned`, `departed`, `disabled` or `deleted`; all when absent.
    status: Option<String>,
}

/// Employees by status, with their resignation, departure and successors.
#[utoipa::path(get, path = "/v1/employees", tag = "forensic", params(StatusParams),
    responses(
        (status = 200, description = "`employees`, in id order", body = Object),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "An unknown status", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn employees(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Query(p): Query<StatusParams>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    if let Some(s) = &p.status
        && !views::STATUSES.contains(&s.as_str())
    {
        return Err(Problem::unprocessable(format!(
            "status: {s:?} is not one of {}",
            views::STATUSES.join(", ")
        ))
        .with("field", "status"));
    }
    answer_read(&q, &caller, &uri, "employees", move |snap, next, head| {
        let mut list = Vec::new();
        snap.employees(|doc| {
            if let Ok(v) = serde_json::from_slice::<Value>(doc)
                && p.status.as_deref().is_none_or(|s| v["status"] == s)
            {
                list.push(v);
            }
        })
        .map_err(storage_problem)?;
        let n = list.len() as u64;
        Ok((envelope(next, head, json!({"employees": list})), n))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
pub struct AtParams {
    /// RFC 3339; now when absent.
    at: Option<String>,
}

/// Effective permissions now or at a past time, folded from the employee's own history.
#[utoipa::path(get, path = "/v1/employees/{id}/permissions", tag = "forensic",
    params(("id" = String, Path, description = "Employee id"), AtParams),
    responses(
        (status = 200, description = "`account`, `roles`, `permissions` (direct grants), `effective` (none unless the account was active)", body = Object),
        (status = 400, description = "A malformed time", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such employee", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn permissions(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
    Query(p): Query<AtParams>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    let at = p.at.as_deref().map(|v| parse_time("at", v)).transpose()?;
    answer_read(&q, &caller, &uri, "permissions", move |snap, next, head| {
            if snap.employee(&id).map_err(storage_problem)?.is_none() {
                return Err(Problem::not_found(format!("no employee {id:?}")));
            }
            let until = at.map_or(i64::MAX, |t| t.saturating_add(1));
            let seqs = snap
                .filed_under(IndexName::Employee, &id, i64::MIN, until, next)
                .map_err(storage_problem)?;
            // The role definitions as they stood at `at`, then the employee's own history.
            let mut dir = Directory::default();
            let definitions = snap
                .filed_under(IndexName::Kind, "role_defined", i64::MIN, until, next)
                .map_err(storage_problem)?;
            for s in definitions.into_iter().chain(seqs) {
                if let Some((ev, _)) = snap.event(s).map_err(storage_problem)? {
                    dir.apply(&ev);
                }
            }
            let key = proto_types::ids::EmployeeId::parse(id.clone())
                .map_err(|e| Problem::bad_request(format!("id: {e}")))?;
            let body = match dir.get(&key) {
                None => json!({"employee": id, "account": "not_hired", "roles": [], "permissions": {}, "effective": {}}),
                Some(e) => {
                    let account = match e.status {
                        AccountStatus::Active if e.is_departed() => "departed",
                        AccountStatus::Active => "active",
                        AccountStatus::Disabled { .. } => "disabled",
                        AccountStatus::Deleted { .. } => "deleted",
                    };
                    let roles: serde_json::Map<String, Value> = e
                        .roles
                        .iter()
                        .map(|r| {
                            let granted = dir.role(r).map_or(Value::Null, |d| {
                                views::levels(d.iter().map(|(m, l)| (*m, *l)))
                            });
                            (r.to_string(), granted)
                        })
                        .collect();
                    json!({"employee": id, "account": account, "roles": e.roles,
                           "role_definitions": roles,
                           "permissions": views::levels(e.permissions.iter().map(|(m, l)| (*m, *l))),
                           "effective": views::levels(dir.effective(e))})
                }
            };
            let mut body = envelope(next, head, body);
            body["at"] = at.map_or(Value::Null, |t| views::time(Timestamp(t)));
            Ok((body, 1))
        })
        .await
}

/// An ownership history from its change documents: each owner `from` … `until`.
fn history(
    next: u64,
    head: &Hash32,
    rows: Vec<Vec<u8>>,
    key: &str,
    id: &str,
) -> Result<(Value, u64), Problem> {
    let rows: Vec<Value> = rows
        .iter()
        .filter_map(|r| serde_json::from_slice(r).ok())
        .collect();
    if rows.is_empty() {
        return Err(Problem::not_found(format!("no {key} {id:?}")));
    }
    let mut history = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let mut h = r.clone();
        h["from"] = r["at"].clone();
        h["until"] = rows.get(i + 1).map_or(Value::Null, |n| n["at"].clone());
        if let Some(m) = h.as_object_mut() {
            m.remove("at");
        }
        history.push(h);
    }
    let current = rows.last().map_or(Value::Null, |r| r["owner"].clone());
    let n = history.len() as u64;
    Ok((
        envelope(
            next,
            head,
            json!({key: id, "current_owner": current, "history": history}),
        ),
        n,
    ))
}

/// [`Snapshot::owners`] or [`Snapshot::deal_owners`].
type OwnershipRows = fn(&Snapshot, &str) -> Result<Vec<Vec<u8>>, redb::Error>;

/// The ownership history of a customer or a deal (`what`), from `rows` of the snapshot.
async fn ownership(
    q: QueryState,
    caller: Caller,
    uri: Uri,
    id: String,
    (what, endpoint): (&'static str, &'static str),
    rows: OwnershipRows,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    answer_read(&q, &caller, &uri, endpoint, move |snap, next, head| {
        let rows = rows(snap, &id).map_err(storage_problem)?;
        history(next, head, rows, what, &id)
    })
    .await
}

/// Who owned the customer when, and why it changed.
#[utoipa::path(get, path = "/v1/customers/{id}/owners", tag = "forensic",
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, description = "`current_owner` and `history` (owner, from, until, reason, seq, hash)", body = Object),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn owners(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    ownership(q, caller, uri, id, ("customer", "owners"), Snapshot::owners).await
}

/// Who held the deal when, and why it changed (created, handed over, closed).
#[utoipa::path(get, path = "/v1/deals/{id}/owners", tag = "forensic",
    params(("id" = String, Path, description = "Deal id")),
    responses(
        (status = 200, description = "`current_owner` and `history` (owner, from, until, reason, seq, hash)", body = Object),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such deal", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn deal_owners(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    ownership(
        q,
        caller,
        uri,
        id,
        ("deal", "deal_owners"),
        Snapshot::deal_owners,
    )
    .await
}

/// The leaver's handover plan and checklist, and what is still to transfer.
#[utoipa::path(get, path = "/v1/employees/{id}/handover", tag = "forensic",
    params(("id" = String, Path, description = "Employee id of the leaver")),
    responses(
        (status = 200, description = "The plan: assignments, `to_transfer`, checklist, `completed`", body = Object),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No handover planned for this employee", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn handover(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    answer_read(&q, &caller, &uri, "handover", move |snap, next, head| {
        let doc = snap
            .handover(&id)
            .map_err(storage_problem)?
            .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
            .ok_or_else(|| Problem::not_found(format!("no handover planned for {id:?}")))?;
        Ok((envelope(next, head, doc), 1))
    })
    .await
}

/// One entry with its hashes and bytes, to check against an export.
#[utoipa::path(get, path = "/v1/entries/{seq}", tag = "forensic",
    params(("seq" = u64, Path, description = "Entry seq")),
    responses(
        (status = 200, description = "The entry: seq, hash, prev, payload_hash, recorded_at, the event, and `bytes` (hex, as hashed)", body = Object),
        (status = 400, description = "Not a seq", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not applied here (yet)", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn entry(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Path(seq): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    let seq: u64 = seq
        .parse()
        .map_err(|_| Problem::bad_request("seq: not a number").with("field", "seq"))?;
    answer_read(&q, &caller, &uri, "entry", move |snap, next, head| {
        let bytes = snap
            .entry(seq)
            .map_err(storage_problem)?
            .filter(|_| seq < next)
            .ok_or_else(|| {
                Problem::not_found(format!(
                    "entry {seq} is not applied here; entries 0 to {} are",
                    next as i64 - 1
                ))
            })?;
        let mut v = views::entry(&bytes);
        if let Ok(e) = EntryRef::parse(&bytes) {
            v["payload_hash"] = Value::String(hex::encode(e.payload_hash()));
        }
        v["bytes"] = Value::String(hex::encode(&bytes));
        Ok((envelope(next, head, v), 1))
    })
    .await
}

/// Customers nobody active owns — their owner departed or was disabled — and that have not been
/// handed over, longest-orphaned first, with the successor the handover plan names. For HR (scope
/// `hr`) and the security team (`audit:read`).
#[utoipa::path(get, path = "/v1/handover/orphaned", tag = "forensic",
    responses(
        (status = 200, description = "`orphaned`: customer, name, owner, owner_status, since, orphaned_for_seconds, orphaned_for_days, planned_successor; `count`", body = Object),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token has neither the hr nor the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn orphaned(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, Problem> {
    caller.require_any(&[Scope::Hr, Scope::AuditRead])?;
    let now = Timestamp::now().0;
    answer_read(&q, &caller, &uri, "orphaned", move |snap, next, head| {
        let mut list: Vec<Value> = Vec::new();
        snap.orphans(|doc| {
            if let Ok(v) = serde_json::from_slice::<Value>(doc) {
                list.push(v);
            }
        })
        .map_err(storage_problem)?;
        list.sort_by_key(|v| {
            (
                v["since_us"].as_i64().unwrap_or(0),
                v["customer"].to_string(),
            )
        });
        for v in &mut list {
            let since = v["since_us"].as_i64().unwrap_or(now);
            let secs = (now - since).max(0) / 1_000_000;
            let owner = v["owner"].as_str().unwrap_or_default().to_string();
            let successor = snap
                .handover(&owner)
                .map_err(storage_problem)?
                .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
                .and_then(|plan| {
                    plan["assignments"].as_array().and_then(|a| {
                        a.iter()
                            .find(|x| {
                                x["resource"]["type"] == "customer"
                                    && x["resource"]["id"] == v["customer"]
                            })
                            .map(|x| x["successor"].clone())
                    })
                })
                .unwrap_or(Value::Null);
            if let Some(m) = v.as_object_mut() {
                m.remove("since_us");
                m.insert("orphaned_for_seconds".into(), secs.into());
                m.insert("orphaned_for_days".into(), (secs / 86_400).into());
                m.insert("planned_successor".into(), successor);
            }
        }
        let n = list.len() as u64;
        Ok((
            envelope(next, head, json!({"count": n, "orphaned": list})),
            n,
        ))
    })
    .await
}
