//! The documents the forensic API answers with, made from events and projections.
//!
//! These are JSON views, not stored types of ours: the query store keeps them as the API's own
//! bytes (an employee, a handover, an ownership change), so that a read is a lookup. They can
//! always be made again from the log.

use projections::State;
use projections::directory::{AccountStatus, Employee, Employment};
use projections::handover::Plan;
use proto_types::chain::EntryRef;
use proto_types::event::{ChecklistItem, EventKind, Level, Module, Money, Resource};
use proto_types::{Date, Event, Timestamp};
use serde_json::{Map, Value, json};

pub fn time(t: Timestamp) -> Value {
    Value::String(t.to_rfc3339())
}

fn date(d: Date) -> Value {
    d.to_chrono()
        .map_or(Value::Null, |d| Value::String(d.to_string()))
}

pub fn item_name(i: ChecklistItem) -> &'static str {
    match i {
        ChecklistItem::CustomersTransferred => "customers_transferred",
        ChecklistItem::DealsReassigned => "deals_reassigned",
        ChecklistItem::ExportDelivered => "export_delivered",
        ChecklistItem::AccessReviewed => "access_reviewed",
    }
}

pub fn resource(r: &Resource) -> Value {
    match r {
        Resource::Customer(c) => json!({"type": "customer", "id": c}),
        Resource::Deal(d) => json!({"type": "deal", "id": d}),
    }
}

fn money(m: &Money) -> Value {
    json!({"minor_units": m.minor_units, "currency": String::from_utf8_lossy(&m.currency)})
}

/// The fields of an event kind, as JSON with readable times, dates, modules and resources.
pub fn fields(kind: &EventKind) -> Value {
    let v = match kind {
        EventKind::PermissionGranted {
            employee,
            module,
            level,
        } => {
            json!({"employee": employee, "module": Module::name(*module), "level": Level::name(*level)})
        }
        EventKind::PermissionRevoked { employee, module } => {
            json!({"employee": employee, "module": Module::name(*module)})
        }
        EventKind::ModuleAccessed { module } => json!({"module": Module::name(*module)}),
        EventKind::DealCreated {
            deal,
            customer,
            owner,
            amount,
            stage,
        } => {
            json!({"deal": deal, "customer": customer, "owner": owner, "amount": money(amount), "stage": stage})
        }
        EventKind::DealClosed {
            deal,
            outcome,
            amount,
        } => {
            json!({"deal": deal, "outcome": outcome.name(), "amount": money(amount)})
        }
        EventKind::ResignationSubmitted {
            employee,
            notice_date,
            last_day,
            reason,
        } => {
            json!({"employee": employee, "notice_date": date(*notice_date), "last_day": date(*last_day), "reason": reason})
        }
        EventKind::EmployeeDeparted {
            employee,
            effective_at,
            reason,
        } => json!({"employee": employee, "effective_at": time(*effective_at), "reason": reason}),
        EventKind::HandoverPlanned {
            leaver,
            assignments,
            checklist,
        } => json!({
            "leaver": leaver,
            "assignments": assignments.iter().map(|a| json!({"resource": resource(&a.resource), "successor": a.successor})).collect::<Vec<_>>(),
            "checklist": checklist.iter().map(|i| item_name(*i)).collect::<Vec<_>>(),
        }),
        EventKind::OwnershipTransferred {
            resource: r,
            from,
            to,
            reason,
        } => json!({"resource": resource(r), "from": from, "to": to, "reason": reason}),
        EventKind::HandoverItemCompleted { leaver, item } => {
            json!({"leaver": leaver, "item": item_name(*item)})
        }
        EventKind::RoleDefined { role, permissions } => {
            json!({"role": role, "permissions": levels(permissions.iter().copied())})
        }
        // The rest hold only strings, numbers and ids: serde's own form is the readable one.
        other => match serde_json::to_value(other) {
            Ok(Value::Object(mut m)) if m.len() == 1 => m
                .values_mut()
                .next()
                .map(std::mem::take)
                .unwrap_or_default(),
            _ => Value::Object(Map::new()),
        },
    };
    if v.is_null() { json!({}) } else { v }
}

/// One log entry as the API shows it: position, hashes, and the event.
pub fn entry(bytes: &[u8]) -> Value {
    let Ok(e) = EntryRef::parse(bytes) else {
        return json!({"error": "unreadable entry"});
    };
    let mut v = json!({
        "seq": e.seq(),
        "hash": hex::encode(e.hash()),
        "prev": hex::encode(e.prev()),
        "recorded_at": time(e.recorded_at()),
    });
    if let Ok(ev) = Event::decode(e.payload()) {
        let m = v.as_object_mut().expect("an object");
        m.insert("occurred_at".into(), time(ev.occurred_at));
        m.insert(
            "actor".into(),
            Value::String(crate::index::actor_key(&ev.actor).into_owned()),
        );
        m.insert("kind".into(), Value::String(ev.kind.name().into()));
        m.insert(
            "event_id".into(),
            ev.id.map_or(Value::Null, |i| Value::String(i.to_string())),
        );
        m.insert("fields".into(), fields(&ev.kind));
    }
    v
}

/// Module → level, as the API names them.
pub fn levels(it: impl IntoIterator<Item = (Module, Level)>) -> Value {
    Value::Object(
        it.into_iter()
            .map(|(m, l)| (Module::name(m).to_string(), Value::from(Level::name(l))))
            .collect(),
    )
}

/// `active`, `resigned`, `departed`, `disabled` (an account switched off without a departure),
/// or `deleted`.
pub fn status(e: &Employee) -> &'static str {
    match (&e.status, &e.employment) {
        (AccountStatus::Deleted { .. }, _) => "deleted",
        (_, Employment::Departed { .. }) => "departed",
        (AccountStatus::Disabled { .. }, _) => "disabled",
        (_, Employment::Resigned { .. }) => "resigned",
        (AccountStatus::Active, Employment::Employed) => "active",
    }
}

pub const STATUSES: [&str; 5] = ["active", "resigned", "departed", "disabled", "deleted"];

/// An employee as the directory holds them now, with the departure and its successors.
pub fn employee(state: &State, e: &Employee, seq: u64) -> Value {
    let (account, since) = match e.status {
        AccountStatus::Active => ("active", None),
        AccountStatus::Disabled { since } => ("disabled", Some(since)),
        AccountStatus::Deleted { since } => ("deleted", Some(since)),
    };
    let resignation = match &e.employment {
        Employment::Resigned {
            notice_date,
            last_day,
            reason,
            submitted_at,
        } => {
            json!({"notice_date": date(*notice_date), "last_day": date(*last_day), "reason": reason, "submitted_at": time(*submitted_at)})
        }
        _ => Value::Null,
    };
    let departure = match &e.employment {
        Employment::Departed {
            effective_at,
            reason,
        } => {
            let mut successors: Vec<&str> = Vec::new();
            if let Some(plan) = state.handovers.plan(&e.id) {
                for s in plan.assignments.values() {
                    if !successors.contains(&s.as_str()) {
                        successors.push(s.as_str());
                    }
                }
            }
            json!({"effective_at": time(*effective_at), "reason": reason, "successors": successors})
        }
        _ => Value::Null,
    };
    json!({
        "id": e.id,
        "name": e.name,
        "email": e.email,
        "manager": e.manager,
        "department": e.department,
        "title": e.title,
        "status": status(e),
        "account": account,
        "disabled_at": since.map_or(Value::Null, time),
        "hired_at": time(e.hired_at),
        "resignation": resignation,
        "departure": departure,
        "roles": e.roles,
        "permissions": levels(e.permissions.iter().map(|(m, l)| (*m, *l))),
        "effective": levels(state.directory.effective(e)),
        "updated_seq": seq,
    })
}

/// An anomaly, with what triggered it.
pub fn anomaly(a: &projections::anomaly::Anomaly) -> Value {
    json!({
        "rule": a.rule,
        "severity": a.severity.name(),
        "employee": a.employee,
        "at": time(a.at),
        "explanation": a.explanation,
        "evidence": a.evidence.iter().map(|(seq, hash)| json!({"seq": seq, "hash": hex::encode(hash)})).collect::<Vec<_>>(),
    })
}

/// An orphaned customer: whose it was, why they cannot look after it, since when.
pub fn orphan(o: &projections::ownership::Orphan<'_>) -> Value {
    json!({
        "customer": o.customer.id,
        "name": o.customer.name,
        "owner": o.customer.owner,
        "owner_name": o.owner.map(|e| e.name.as_str()),
        "owner_status": o.owner.map_or("unknown", status),
        "since": time(o.since),
        "since_us": o.since.0,
    })
}

/// A leaver's handover: the plan, what is still to transfer, the checklist.
pub fn handover(plan: &Plan, planned_seq: u64) -> Value {
    let remaining: Vec<Value> = plan
        .remaining()
        .map(|(r, s)| json!({"resource": resource(r), "successor": s}))
        .collect();
    json!({
        "leaver": plan.leaver,
        "planned_seq": planned_seq,
        "completed": plan.completed,
        "assignments": plan.assignments.iter().map(|(r, s)| json!({
            "resource": resource(r), "successor": s, "transferred": plan.transferred.contains(r),
        })).collect::<Vec<_>>(),
        "remaining_customers": plan.remaining_customers(),
        "remaining_deals": plan.remaining_deals(),
        "to_transfer": remaining,
        "checklist": plan.checklist.iter().map(|(i, done)| json!({"item": item_name(*i), "done": done})).collect::<Vec<_>>(),
        "open_items": plan.open_items().map(item_name).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_types::ids::{CustomerId, EmployeeId};

    #[test]
    fn fields_read_as_an_auditor_expects() {
        let f = fields(&EventKind::OwnershipTransferred {
            resource: Resource::Customer(CustomerId::parse("C-1").unwrap()),
            from: EmployeeId::parse("E-1").unwrap(),
            to: EmployeeId::parse("E-2").unwrap(),
            reason: "handover".into(),
        });
        assert_eq!(
            f,
            json!({"resource": {"type": "customer", "id": "C-1"}, "from": "E-1", "to": "E-2", "reason": "handover"})
        );
        assert_eq!(
            fields(&EventKind::CustomerViewed {
                customer: CustomerId::parse("C-7").unwrap()
            }),
            json!({"customer": "C-7"})
        );
        assert_eq!(fields(&EventKind::LoggedOut), json!({}));
        let departed = fields(&EventKind::EmployeeDeparted {
            employee: EmployeeId::parse("E-1").unwrap(),
            effective_at: Timestamp(1_700_000_000_000_000),
            reason: "resigned".into(),
        });
        assert_eq!(departed["effective_at"], "2023-11-14T22:13:20.000000Z");
    }
}
