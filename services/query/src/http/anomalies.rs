//! The anomaly reports (scope `audit:read`): `GET /v1/anomalies` and a leaver's risk summary,
//! `GET /v1/employees/{id}/risk`. Each anomaly carries its rule, severity, a plain-language
//! explanation and its evidence (the seqs and hashes of the entries that triggered it).

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use ledger::http::auth::{Caller, Scope};
use ledger::http::problem::Problem;
use projections::anomaly::RULES;
use proto_types::Event;
use proto_types::event::EventKind;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::forensic::{answer_read, envelope, parse_time};
use super::{QueryState, storage_problem};
use crate::store::IndexName;
use crate::views;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(anomalies))
        .routes(routes!(risk))
}

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

fn rank(severity: &str) -> usize {
    SEVERITIES.iter().position(|s| *s == severity).unwrap_or(0)
}

#[derive(Deserialize, IntoParams)]
pub struct AnomalyParams {
    /// Only this employee's.
    employee: Option<String>,
    /// Only this rule's (e.g. `export_in_notice_period`).
    rule: Option<String>,
    /// At least this severity: `low`, `medium`, `high`, `critical`.
    severity: Option<String>,
    /// RFC 3339: raised by actions at or after this time.
    from: Option<String>,
    /// RFC 3339: raised by actions before this time.
    to: Option<String>,
}

/// Anomalies, by employee and time, each with its explanation and evidence.
#[utoipa::path(get, path = "/v1/anomalies", tag = "forensic", params(AnomalyParams),
    responses(
        (status = 200, description = "`anomalies` (rule, severity, employee, at, explanation, evidence), `count`", body = Object),
        (status = 400, description = "A malformed time", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "An unknown rule or severity", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn anomalies(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Query(p): Query<AnomalyParams>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    if let Some(r) = &p.rule
        && !RULES.contains(&r.as_str())
    {
        return Err(Problem::unprocessable(format!(
            "rule: {r:?} is not one of {}",
            RULES.join(", ")
        ))
        .with("field", "rule"));
    }
    if let Some(s) = &p.severity
        && !SEVERITIES.contains(&s.as_str())
    {
        return Err(Problem::unprocessable(format!(
            "severity: {s:?} is not one of {}",
            SEVERITIES.join(", ")
        ))
        .with("field", "severity"));
    }
    let from = p
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?;
    let to = p.to.as_deref().map(|v| parse_time("to", v)).transpose()?;
    answer_read(&q, &caller, &uri, "anomalies", move |snap, next, head| {
        let mut list: Vec<Value> = Vec::new();
        snap.anomalies(p.employee.as_deref(), |doc| {
            let Ok(a) = serde_json::from_slice::<Value>(doc) else {
                return;
            };
            let at = a["at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| proto_types::Timestamp::from_chrono(t.to_utc()).0);
            let keep = p.rule.as_deref().is_none_or(|r| a["rule"] == r)
                && p.severity
                    .as_deref()
                    .is_none_or(|s| rank(a["severity"].as_str().unwrap_or("")) >= rank(s))
                && from.is_none_or(|f| at.is_some_and(|t| t >= f))
                && to.is_none_or(|u| at.is_some_and(|t| t < u));
            if keep {
                list.push(a);
            }
        })
        .map_err(storage_problem)?;
        list.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
        let n = list.len() as u64;
        Ok((
            envelope(next, head, json!({"count": n, "anomalies": list})),
            n,
        ))
    })
    .await
}

/// A leaver's risk summary: their anomalies, their exports, and what they touched in the notice
/// period.
#[utoipa::path(get, path = "/v1/employees/{id}/risk", tag = "forensic",
    params(("id" = String, Path, description = "Employee id")),
    responses(
        (status = 200, description = "`highest_severity`, `anomalies` (by rule, by severity, items), `exports`, `notice_period` (window, actions, customers touched), `revocation_gap_seconds`", body = Object),
        (status = 401, description = "No valid token", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the audit:read scope", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such employee", body = ledger::http::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn risk(
    State(q): State<QueryState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::AuditRead)?;
    answer_read(&q, &caller, &uri, "risk", move |snap, next, head| {
            let doc: Value = snap
                .employee(&id)
                .map_err(storage_problem)?
                .and_then(|d| serde_json::from_slice(&d).ok())
                .ok_or_else(|| Problem::not_found(format!("no employee {id:?}")))?;
            let mut items: Vec<Value> = Vec::new();
            snap.anomalies(Some(&id), |d| {
                if let Ok(a) = serde_json::from_slice::<Value>(d) {
                    items.push(a);
                }
            })
            .map_err(storage_problem)?;
            let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
            let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
            for a in &items {
                *by_rule.entry(a["rule"].as_str().unwrap_or("").into()).or_default() += 1;
                *by_severity
                    .entry(a["severity"].as_str().unwrap_or("").into())
                    .or_default() += 1;
            }
            let highest = items
                .iter()
                .filter_map(|a| a["severity"].as_str())
                .max_by_key(|s| rank(s));
            // The employee's own history: exports, and the notice period.
            let seqs = snap
                .filed_under(IndexName::Employee, &id, i64::MIN, i64::MAX, next)
                .map_err(storage_problem)?;
            let mut exports = Vec::new();
            let mut resigned_at = None;
            let mut departed_at = None;
            let mut notice: Vec<(i64, Event)> = Vec::new();
            for s in seqs {
                let Some((ev, hash)) = snap.event(s).map_err(storage_problem)? else {
                    continue;
                };
                let own = ev.actor.employee().is_some_and(|e| e.as_str() == id);
                match &ev.kind {
                    EventKind::ResignationSubmitted { .. } => resigned_at = Some(ev.occurred_at),
                    EventKind::EmployeeDeparted { effective_at, .. } => {
                        departed_at = Some(*effective_at);
                    }
                    EventKind::CustomersExported { count, filter, .. } if own => {
                        exports.push(json!({"seq": s, "hash": hex::encode(hash), "at": views::time(ev.occurred_at),
                            "kind": "customers_exported", "records": count, "filter": filter}));
                    }
                    EventKind::ReportExported { report, rows, .. } if own => {
                        exports.push(json!({"seq": s, "hash": hex::encode(hash), "at": views::time(ev.occurred_at),
                            "kind": "report_exported", "records": rows, "report": report}));
                    }
                    _ => {}
                }
                if own {
                    notice.push((ev.occurred_at.0, ev));
                }
            }
            let notice_period = resigned_at.map(|from| {
                let until = departed_at.map_or(i64::MAX, |d| d.0);
                let mut customers = BTreeSet::new();
                let mut actions = 0u64;
                let no_deals = projections::State::default();
                for (at, ev) in &notice {
                    if *at < from.0 || *at >= until {
                        continue;
                    }
                    actions += 1;
                    for c in crate::index::keys(&no_deals, ev).customers {
                        customers.insert(c.to_string());
                    }
                }
                json!({
                    "from": views::time(from),
                    "until": departed_at.map_or(Value::Null, views::time),
                    "actions": actions,
                    "customers_touched": customers.len(),
                    "customers": customers.iter().take(200).collect::<Vec<_>>(),
                })
            });
            let gap = match (
                doc["departure"]["effective_at"].as_str(),
                doc["disabled_at"].as_str(),
            ) {
                (Some(d), Some(x)) => {
                    let p = |t: &str| {
                        chrono::DateTime::parse_from_rfc3339(t)
                            .ok()
                            .map(|t| t.timestamp_micros())
                    };
                    match (p(d), p(x)) {
                        (Some(d), Some(x)) => json!((x - d) / 1_000_000),
                        _ => Value::Null,
                    }
                }
                _ => Value::Null,
            };
            let n = items.len() as u64;
            let body = json!({
                "employee": id,
                "status": doc["status"],
                "highest_severity": highest,
                "anomalies": {"count": n, "by_rule": by_rule, "by_severity": by_severity, "items": items},
                "exports": exports,
                "notice_period": notice_period,
                "revocation_gap_seconds": gap,
            });
            Ok((envelope(next, head, body), n))
        })
        .await
}
