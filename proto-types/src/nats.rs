//! What the ledger publishes on NATS: subjects, headers, and the CloudEvents 1.0 mapping of the
//! events downstream systems act on (`docs/events.md` is the contract).

use serde_json::{Value, json};

use crate::Event;
use crate::chain::Hash32;
use crate::event::EventKind;
use crate::ids::EmployeeId;

/// The JetStream stream every subject below belongs to.
pub const STREAM: &str = "HANDOVER";
/// The stream's subjects.
pub const STREAM_SUBJECTS: &str = "handover.v1.>";
/// Departure-related CloudEvents, for IT, payroll and identity providers.
pub const DEPARTURES: &str = "handover.v1.departures";
/// Header carrying the entry's seq on every log message.
pub const SEQ_HEADER: &str = "Handover-Seq";
/// The CloudEvents `source` of everything the ledger publishes.
pub const SOURCE: &str = "urn:handover:ledger";

/// The subject of a log entry of the kind named `kind`: `handover.v1.log.<kind>` (the name as
/// [`EventKind::name`] or [`crate::event::kind_name_of`] gives it).
pub fn log_subject(kind: &str) -> String {
    format!("handover.v1.log.{kind}")
}

/// The kinds that are also published as CloudEvents on [`DEPARTURES`] (those [`cloud_event`]
/// maps), by name.
pub const CLOUD_EVENT_KINDS: [&str; 4] = [
    "resignation_submitted",
    "employee_departed",
    "account_disabled",
    "handover_completed",
];

/// The CloudEvents message id of an entry's departure event (distinct from the log message's).
pub fn cloud_event_id(hash: &Hash32) -> String {
    let mut id = String::with_capacity(68);
    for b in hash {
        id.push_str(&format!("{b:02x}"));
    }
    id.push_str("-ce");
    id
}

/// The distinct successors a `HandoverPlanned` for `leaver` names, if `event` is one.
pub fn planned_successors(event: &Event, leaver: &EmployeeId) -> Option<Vec<EmployeeId>> {
    let EventKind::HandoverPlanned {
        leaver: l,
        assignments,
        ..
    } = &event.kind
    else {
        return None;
    };
    if l != leaver {
        return None;
    }
    let mut out: Vec<EmployeeId> = Vec::new();
    for a in assignments {
        if !out.contains(&a.successor) {
            out.push(a.successor.clone());
        }
    }
    Some(out)
}

/// The CloudEvent (structured JSON) of an entry, for the kinds downstream systems subscribe to:
/// `io.handover.employee.departed.v1`, `io.handover.employee.resigned.v1`,
/// `io.handover.account.disabled.v1`, `io.handover.handover.completed.v1`. `successors` are the
/// ones the departure's handover plan names (from the entries that follow it in its commit).
pub fn cloud_event(
    seq: u64,
    hash: &Hash32,
    event: &Event,
    successors: &[EmployeeId],
) -> Option<Value> {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let (ty, subject, mut data) = match &event.kind {
        EventKind::EmployeeDeparted {
            employee,
            effective_at,
            reason,
        } => (
            "io.handover.employee.departed.v1",
            employee,
            json!({"employee": employee, "effective_at": effective_at.to_rfc3339(), "reason": reason,
                   "successors": successors}),
        ),
        EventKind::ResignationSubmitted {
            employee,
            notice_date,
            last_day,
            reason,
        } => (
            "io.handover.employee.resigned.v1",
            employee,
            json!({"employee": employee, "notice_date": notice_date.to_string(),
                   "last_day": last_day.to_string(), "reason": reason}),
        ),
        EventKind::AccountDisabled { employee, reason } => (
            "io.handover.account.disabled.v1",
            employee,
            json!({"employee": employee, "reason": reason}),
        ),
        EventKind::HandoverCompleted { leaver } => (
            "io.handover.handover.completed.v1",
            leaver,
            json!({"employee": leaver}),
        ),
        _ => return None,
    };
    data["seq"] = json!(seq);
    data["entry_hash"] = json!(hex);
    data["by"] = json!(event.actor.to_string());
    Some(json!({
        "specversion": "1.0",
        "id": hex,
        "source": SOURCE,
        "type": ty,
        "time": event.occurred_at.to_rfc3339(),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{HandoverAssignment, Resource};
    use crate::ids::{CustomerId, SystemId};
    use crate::{Actor, Timestamp};

    #[test]
    fn the_cloud_event_kinds_by_name_are_those_with_a_cloud_event() {
        for kind in crate::event::tests::one_of_each() {
            let name = kind.name();
            let event = Event {
                id: None,
                actor: Actor::System(SystemId::parse("hr-system").unwrap()),
                occurred_at: Timestamp(1_764_619_200_000_000),
                kind,
            };
            assert_eq!(
                cloud_event(1, &[0; 32], &event, &[]).is_some(),
                CLOUD_EVENT_KINDS.contains(&name),
                "{name}"
            );
        }
        assert_eq!(log_subject("logged_in"), "handover.v1.log.logged_in");
    }

    #[test]
    fn a_departure_becomes_a_cloud_event_with_its_seq_hash_and_successors() {
        let e = EmployeeId::parse("E-2").unwrap();
        let event = Event {
            id: None,
            actor: Actor::System(SystemId::parse("hr-system").unwrap()),
            occurred_at: Timestamp(1_764_619_200_000_000),
            kind: EventKind::EmployeeDeparted {
                employee: e.clone(),
                effective_at: Timestamp(1_764_619_200_000_000),
                reason: "resigned".into(),
            },
        };
        let boss = EmployeeId::parse("E-1").unwrap();
        let ce = cloud_event(7, &[0xab; 32], &event, std::slice::from_ref(&boss)).unwrap();
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["type"], "io.handover.employee.departed.v1");
        assert_eq!(ce["subject"], "E-2");
        assert_eq!(ce["data"]["seq"], 7);
        assert_eq!(ce["data"]["entry_hash"], "ab".repeat(32));
        assert_eq!(ce["data"]["successors"][0], "E-1");
        assert_eq!(ce["time"], "2025-12-01T20:00:00.000000Z");
        let plan = Event {
            kind: EventKind::HandoverPlanned {
                leaver: e.clone(),
                assignments: vec![
                    HandoverAssignment {
                        resource: Resource::Customer(CustomerId::parse("C-1").unwrap()),
                        successor: boss.clone(),
                    },
                    HandoverAssignment {
                        resource: Resource::Customer(CustomerId::parse("C-2").unwrap()),
                        successor: boss.clone(),
                    },
                ],
                checklist: vec![],
            },
            ..event.clone()
        };
        assert_eq!(planned_successors(&plan, &e), Some(vec![boss]));
        let viewed = Event {
            kind: EventKind::LoggedOut,
            ..event
        };
        assert!(cloud_event(1, &[0; 32], &viewed, &[]).is_none());
    }
}
