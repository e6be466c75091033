//! `GET /v1/employees/{id}/export?format=csv|json|ndjson&what=customers|deals|activity&days=N`
//! (scope `audit:read`): a leaver's data for the successor and for HR — the customers they own or
//! owned within the last `days` with the history of interactions, their sales records, or what
//! they did.
//!
//! The rows' keys are found first (ids only), the export is recorded as an `AuditLogQueried`
//! event, and then the rows are rendered and streamed from one snapshot, a chunk at a time: a
//! large export never sits whole in memory. The position it reflects is in the headers
//! `Handover-As-Of-Seq` and `Handover-Head-Hash` (and, for JSON, in the body too). CSV is UTF-8
//! with a byte-order mark, so that Excel and LibreOffice open names in any script correctly.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use ledger::http::auth::{Caller, Scope};
use ledger::http::problem::Problem;
use proto_types::chain::Hash32;
use proto_types::event::{EventKind, Money, Resource};
use proto_types::{Event, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::forensic::path_and_query;
use super::{QueryState, storage_problem};
use crate::index::actor_key;
use crate::store::{IndexName, Snapshot};
use crate::views;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(export))
}

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

#[derive(Deserialize, IntoParams)]
pub struct ExportParams {
    /// `csv` (default), `json` or `ndjson`.
    format: Option<String>,
    /// `customers` (default), `deals` or `activity`.
    what: Option<String>,
    /// How far back: customers owned, deals held, actions done within the last N days (1 to
    /// 3650; default 90). Customers owned now are always in.
    days: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
    Ndjson,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Customers,
    Deals,
    Activity,
}

impl What {
    fn name(self) -> &'static str {
        match self {
            What::Customers => "customers",
            What::Deals => "deals",
            What::Activity => "activity",
        }
    }
    fn columns(self) -> &'static [&'static str] {
        match self {
            What::Customers => &[
                "customer",
                "name",
                "contacts",
                "owner_now",
                "owned_from",
                "owned_until",
                "interactions",
                "last_interaction_at",
                "last_interaction",
            ],
            What::Deals => &[
                "deal",
                "customer",
                "owner",
                "amount",
                "currency",
                "stage",
                "status",
                "created_at",
                "closed_at",
            ],
            What::Activity => &["seq", "occurred_at", "kind", "customer", "details", "hash"],
        }
    }
}

/// When the employee owned a customer: (from, until — null while they still do).
type Periods = Vec<(Value, Value)>;

fn event_at(snap: &Snapshot, seq: u64) -> Result<Option<(Event, Hash32)>, Problem> {
    snap.event(seq).map_err(storage_problem)
}

/// Seqs filed under `key` in `index`, below `next`, from `from` (µs) on.
fn seqs(
    snap: &Snapshot,
    index: IndexName,
    key: &str,
    from: i64,
    next: u64,
) -> Result<Vec<u64>, Problem> {
    snap.filed_under(index, key, from, i64::MAX, next)
        .map_err(storage_problem)
}

/// The customers `employee` owns now or owned since `since`, with the periods of ownership.
fn customers(
    snap: &Snapshot,
    employee: &str,
    since: i64,
    next: u64,
) -> Result<Vec<(String, Periods)>, Problem> {
    let mut candidates = BTreeSet::new();
    for s in seqs(snap, IndexName::Employee, employee, i64::MIN, next)? {
        if let Some((ev, _)) = event_at(snap, s)? {
            match ev.kind {
                EventKind::CustomerCreated { customer, .. }
                | EventKind::OwnershipTransferred {
                    resource: Resource::Customer(customer),
                    ..
                } => {
                    candidates.insert(customer.to_string());
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for c in candidates {
        let rows: Vec<Value> = snap
            .owners(&c)
            .map_err(storage_problem)?
            .iter()
            .filter_map(|r| serde_json::from_slice(r).ok())
            .filter(|r: &Value| r["seq"].as_u64().is_some_and(|s| s < next))
            .collect();
        let mut periods = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if r["owner"] != employee {
                continue;
            }
            let until = rows.get(i + 1).map_or(Value::Null, |n| n["at"].clone());
            let recent = match until.as_str() {
                None => true,
                Some(t) => chrono::DateTime::parse_from_rfc3339(t)
                    .map(|t| Timestamp::from_chrono(t.to_utc()).0 >= since)
                    .unwrap_or(true),
            };
            if recent {
                periods.push((r["at"].clone(), until));
            }
        }
        if !periods.is_empty() {
            out.push((c, periods));
        }
    }
    Ok(out)
}

/// The deals of the exported customers that `employee` held, each with its columns: one pass
/// over each customer's history, however many deals it has.
fn deals(
    snap: &Snapshot,
    employee: &str,
    customers: &[(String, Periods)],
    next: u64,
) -> Result<Vec<RowKey>, Problem> {
    let mut out = Vec::new();
    for (c, _) in customers {
        let mut held = BTreeSet::new();
        let mut fields: BTreeMap<String, DealFields> = BTreeMap::new();
        for s in seqs(snap, IndexName::Customer, c, i64::MIN, next)? {
            let Some((ev, _)) = event_at(snap, s)? else {
                continue;
            };
            match &ev.kind {
                EventKind::DealCreated {
                    deal,
                    owner,
                    amount,
                    stage,
                    ..
                } => {
                    if owner.as_str() == employee {
                        held.insert(deal.to_string());
                    }
                    let f = fields.entry(deal.to_string()).or_default();
                    let (a, cur) = money(amount);
                    f.insert("owner", json!(owner));
                    f.insert("amount", json!(a));
                    f.insert("currency", json!(cur));
                    f.insert("stage", json!(stage));
                    f.insert("status", json!("open"));
                    f.insert("created_at", views::time(ev.occurred_at));
                }
                EventKind::DealUpdated {
                    deal,
                    stage: Some(stage),
                    ..
                } => {
                    fields
                        .entry(deal.to_string())
                        .or_default()
                        .insert("stage", json!(stage));
                }
                EventKind::DealClosed {
                    deal,
                    outcome,
                    amount,
                } => {
                    let f = fields.entry(deal.to_string()).or_default();
                    let (a, cur) = money(amount);
                    f.insert("amount", json!(a));
                    f.insert("currency", json!(cur));
                    f.insert("status", json!(outcome.name()));
                    f.insert("closed_at", views::time(ev.occurred_at));
                }
                EventKind::OwnershipTransferred {
                    resource: Resource::Deal(deal),
                    from,
                    to,
                    ..
                } => {
                    if from.as_str() == employee || to.as_str() == employee {
                        held.insert(deal.to_string());
                    }
                    fields
                        .entry(deal.to_string())
                        .or_default()
                        .insert("owner", json!(to));
                }
                _ => {}
            }
        }
        for d in held {
            let f = fields.remove(&d).unwrap_or_default();
            out.push(RowKey::Deal(d, c.clone(), f));
        }
    }
    Ok(out)
}

/// A deal's columns as its history left them.
type DealFields = BTreeMap<&'static str, Value>;

fn money(m: &Money) -> (String, String) {
    let sign = if m.minor_units < 0 { "-" } else { "" };
    let v = m.minor_units.unsigned_abs();
    (
        format!("{sign}{}.{:02}", v / 100, v % 100),
        String::from_utf8_lossy(&m.currency).into_owned(),
    )
}

/// One row, as an object in column order (plus `history` for customers in JSON forms).
fn render(
    snap: &Snapshot,
    key: &RowKey,
    next: u64,
    with_history: bool,
) -> Result<Map<String, Value>, Problem> {
    let mut row = Map::new();
    match key {
        RowKey::Customer(c, periods) => {
            let history = seqs(snap, IndexName::Customer, c, i64::MIN, next)?;
            let mut name = Value::Null;
            let mut owner_now = Value::Null;
            // The latest record of each contact person, by name.
            let mut contacts: BTreeMap<String, Value> = BTreeMap::new();
            let mut last: Option<(Event, u64)> = None;
            let mut items = Vec::new();
            for s in &history {
                if let Some((ev, hash)) = event_at(snap, *s)? {
                    match &ev.kind {
                        EventKind::CustomerCreated { name: n, owner, .. } => {
                            name = json!(n);
                            owner_now = json!(owner);
                        }
                        EventKind::OwnershipTransferred {
                            resource: Resource::Customer(_),
                            to,
                            ..
                        } => owner_now = json!(to),
                        EventKind::CustomerDeleted { .. } => owner_now = Value::Null,
                        EventKind::CustomerContactRecorded {
                            name,
                            role,
                            email,
                            phone,
                            ..
                        } => {
                            contacts.insert(
                                name.clone(),
                                json!({"name": name, "role": role, "email": email, "phone": phone}),
                            );
                        }
                        _ => {}
                    }
                    if with_history {
                        items.push(json!({"seq": s, "hash": hex::encode(hash),
                            "occurred_at": views::time(ev.occurred_at), "actor": actor_key(&ev.actor),
                            "kind": ev.kind.name(), "fields": views::fields(&ev.kind)}));
                    }
                    if last
                        .as_ref()
                        .is_none_or(|(l, _)| ev.occurred_at >= l.occurred_at)
                    {
                        last = Some((ev, *s));
                    }
                }
            }
            let (from, until) = periods
                .last()
                .cloned()
                .unwrap_or((Value::Null, Value::Null));
            row.insert("customer".into(), json!(c));
            row.insert("name".into(), name);
            let contacts: Vec<Value> = contacts.into_values().collect();
            row.insert(
                "contacts".into(),
                if with_history {
                    Value::Array(contacts)
                } else {
                    // One cell: "Name (role) <email> phone; …".
                    Value::String(
                        contacts
                            .iter()
                            .map(|c| {
                                let mut s = c["name"].as_str().unwrap_or_default().to_string();
                                for (k, open, close) in [
                                    ("role", " (", ")"),
                                    ("email", " <", ">"),
                                    ("phone", " ", ""),
                                ] {
                                    if let Some(v) = c[k].as_str().filter(|v| !v.is_empty()) {
                                        s.push_str(&format!("{open}{v}{close}"));
                                    }
                                }
                                s
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                },
            );
            row.insert("owner_now".into(), owner_now);
            row.insert("owned_from".into(), from);
            row.insert("owned_until".into(), until);
            row.insert("interactions".into(), json!(history.len()));
            row.insert(
                "last_interaction_at".into(),
                last.as_ref()
                    .map_or(Value::Null, |(e, _)| views::time(e.occurred_at)),
            );
            row.insert(
                "last_interaction".into(),
                last.as_ref()
                    .map_or(Value::Null, |(e, _)| json!(e.kind.name())),
            );
            if with_history {
                row.insert(
                    "owned".into(),
                    periods
                        .iter()
                        .map(|(f, u)| json!({"from": f, "until": u}))
                        .collect(),
                );
                row.insert("history".into(), Value::Array(items));
            }
        }
        RowKey::Deal(d, c, fields) => {
            row.insert("deal".into(), json!(d));
            row.insert("customer".into(), json!(c));
            for col in &What::Deals.columns()[2..] {
                row.insert(
                    (*col).into(),
                    fields.get(col).cloned().unwrap_or(Value::Null),
                );
            }
        }
        RowKey::Activity(seq) => {
            if let Some((ev, hash)) = event_at(snap, *seq)? {
                let customer = crate::index::keys(&projections::State::default(), &ev)
                    .customers
                    .first()
                    .map(|c| c.to_string());
                row.insert("seq".into(), json!(seq));
                row.insert("occurred_at".into(), views::time(ev.occurred_at));
                row.insert("kind".into(), json!(ev.kind.name()));
                row.insert("customer".into(), json!(customer));
                row.insert(
                    "details".into(),
                    // A nested object in JSON; its JSON text in a CSV cell.
                    if with_history {
                        views::fields(&ev.kind)
                    } else {
                        json!(views::fields(&ev.kind).to_string())
                    },
                );
                row.insert("hash".into(), json!(hex::encode(hash)));
            }
        }
    }
    Ok(row)
}

enum RowKey {
    Customer(String, Periods),
    Deal(String, String, DealFields),
    Activity(u64),
}

/// The start of a CSV answer: a BOM (so that spreadsheets read UTF-8) and the header line.
pub(crate) fn csv_opening(columns: &[&str]) -> Vec<u8> {
    let mut b = "\u{feff}".as_bytes().to_vec();
    b.extend(csv_line(columns.iter().map(|c| (*c).to_string())));
    b
}

/// `Handover-As-Of-Seq` and `Handover-Head-Hash`: the position of an answer whose body cannot
/// carry it (CSV, streams).
pub(crate) fn position_headers(h: &mut axum::http::HeaderMap, as_of: &Value, head_hex: &str) {
    for (name, v) in [
        ("handover-as-of-seq", cell(as_of)),
        ("handover-head-hash", head_hex.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(name, v);
        }
    }
}

pub(crate) fn csv_line(values: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record(values);
    w.into_inner().unwrap_or_default()
}

pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A leaver's customers, deals or activity, as CSV, JSON or NDJSON (streamed).
#[utoipa::path(get, path = "/v1/employees/{id}/export", tag = "forensic",
    params(("id" = String, Path, description = "Employee id"), ExportParams),
    responses(
        (status = 200, description = "The rows: `text/csv` (UTF-8 with BOM), `application/json` (`rows` with `as_of_seq`, `head_hash`), or `application/x-ndjson`; headers `Handover-As-Of-Seq`, `Handover-Head-Hash`", body = String),
        (status = 400, description = "A malformed days value", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such employee", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "An unknown format or what, or days out of range", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn export(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
    Query(p): Query<ExportParams>,
) -> Result<Response, Problem> {
    caller.require(Scope::AuditRead)?;
    let started = std::time::Instant::now();
    let format = match p.format.as_deref().unwrap_or("csv") {
        "csv" => Format::Csv,
        "json" => Format::Json,
        "ndjson" => Format::Ndjson,
        other => {
            return Err(Problem::unprocessable(format!(
                "format: {other:?} is not csv, json or ndjson"
            ))
            .with("field", "format"));
        }
    };
    let what = match p.what.as_deref().unwrap_or("customers") {
        "customers" => What::Customers,
        "deals" => What::Deals,
        "activity" => What::Activity,
        other => {
            return Err(Problem::unprocessable(format!(
                "what: {other:?} is not customers, deals or activity"
            ))
            .with("field", "what"));
        }
    };
    let days: i64 = match p.days.as_deref() {
        None => 90,
        Some(d) => d
            .parse()
            .map_err(|_| Problem::bad_request("days: not a number").with("field", "days"))?,
    };
    if !(1..=3650).contains(&days) {
        return Err(Problem::unprocessable("days must be 1 to 3650").with("field", "days"));
    }
    let since = Timestamp::now().0 - days * Timestamp::MICROS_PER_DAY;
    let employee = id.clone();
    let (rows, next, head) = q
        .read(move |snap| {
            let (next, head) = snap.position().map_err(storage_problem)?;
            if snap.employee(&employee).map_err(storage_problem)?.is_none() {
                return Err(Problem::not_found(format!("no employee {employee:?}")));
            }
            let rows: Vec<RowKey> = match what {
                What::Customers => customers(snap, &employee, since, next)?
                    .into_iter()
                    .map(|(c, p)| RowKey::Customer(c, p))
                    .collect(),
                What::Deals => {
                    let cs = customers(snap, &employee, since, next)?;
                    deals(snap, &employee, &cs, next)?
                }
                What::Activity => seqs(snap, IndexName::Employee, &employee, since, next)?
                    .into_iter()
                    .filter(|s| {
                        event_at(snap, *s).ok().flatten().is_some_and(|(ev, _)| {
                            ev.actor.employee().is_some_and(|e| e.as_str() == employee)
                        })
                    })
                    .map(RowKey::Activity)
                    .collect(),
            };
            Ok((rows, next, head))
        })
        .await?;
    q.record(&caller, &path_and_query(&uri), rows.len() as u64)
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = q.store.clone();
    let as_of = next.checked_sub(1).map_or(Value::Null, Value::from);
    let head_hex = hex::encode(head);
    let opening = match format {
        Format::Csv => csv_opening(what.columns()),
        Format::Json => format!(
            "{{\"as_of_seq\":{as_of},\"head_hash\":\"{head_hex}\",\"employee\":{},\"what\":\"{}\",\"rows\":[",
            json!(id),
            what.name()
        )
        .into_bytes(),
        Format::Ndjson => Vec::new(),
    };
    tokio::task::spawn_blocking(move || {
        let send = |b: Vec<u8>| tx.blocking_send(Ok(Bytes::from(b))).is_ok();
        let snap = match store.snapshot() {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
        let mut buf = opening;
        for (i, key) in rows.iter().enumerate() {
            let row = match render(&snap, key, next, format != Format::Csv) {
                Ok(r) => r,
                Err(_) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other("the store failed")));
                    return;
                }
            };
            match format {
                Format::Csv => buf.extend(csv_line(
                    what.columns()
                        .iter()
                        .map(|c| cell(row.get(*c).unwrap_or(&Value::Null))),
                )),
                Format::Json => {
                    if i > 0 {
                        buf.push(b',');
                    }
                    buf.extend(Value::Object(row).to_string().into_bytes());
                }
                Format::Ndjson => {
                    buf.extend(Value::Object(row).to_string().into_bytes());
                    buf.push(b'\n');
                }
            }
            if buf.len() >= CHUNK && !send(std::mem::take(&mut buf)) {
                return;
            }
        }
        if format == Format::Json {
            buf.extend_from_slice(b"]}");
        }
        if !buf.is_empty() {
            send(buf);
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-{}.{ext}\"",
        id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
        what.name()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    position_headers(h, &as_of, &head_hex);
    q.metrics.query("export", started.elapsed());
    Ok(res)
}
