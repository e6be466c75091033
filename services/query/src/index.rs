//! What each entry is filed under: the keys of the query store's indexes.
//!
//! An entry is found by its actor, by every employee it involves (the actor, and whoever an HR
//! or handover event is about), by every customer it touches (a deal's events count for the
//! deal's customer), by its kind, and by its time. Pure: the keys depend on the event and the
//! projections just before it, nothing else.

use std::borrow::Cow;

use projections::State;
use proto_types::event::{EventKind, Resource};
use proto_types::{Actor, Event};

/// The index keys of one event, borrowed from the event and the projections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys<'e> {
    /// The employee's id, or `system:NAME`.
    pub actor: Cow<'e, str>,
    /// Employees the event is by or about (ascending, distinct).
    pub employees: Vec<&'e str>,
    /// Customers the event touches (ascending, distinct).
    pub customers: Vec<&'e str>,
    pub kind: &'static str,
    /// `occurred_at`, microseconds since the epoch.
    pub at: i64,
}

/// The actor as the API names it: an employee id as is, `system:NAME` for the rest.
pub fn actor_key(actor: &Actor) -> Cow<'_, str> {
    match actor {
        Actor::Employee(e) => Cow::Borrowed(e.as_str()),
        Actor::System(s) => Cow::Owned(format!("system:{s}")),
    }
}

/// The keys `event` is filed under, given the projections as they stand before it.
pub fn keys<'e>(state: &'e State, event: &'e Event) -> Keys<'e> {
    let mut employees: Vec<&'e str> = Vec::new();
    let mut customers: Vec<&'e str> = Vec::new();
    if let Actor::Employee(e) = &event.actor {
        employees.push(e.as_str());
    }
    let customer_of_resource = |r: &'e Resource, customers: &mut Vec<&'e str>| match r {
        Resource::Customer(c) => customers.push(c.as_str()),
        Resource::Deal(d) => {
            if let Some(deal) = state.ownership.deal(d) {
                customers.push(deal.customer.as_str());
            }
        }
    };
    if let Some(subject) = projections::directory::subject(&event.kind) {
        employees.push(subject.as_str());
    }
    match &event.kind {
        EventKind::EmployeeHired {
            manager: Some(m), ..
        } => employees.push(m.as_str()),
        EventKind::HandoverItemCompleted { leaver, .. }
        | EventKind::HandoverCompleted { leaver } => employees.push(leaver.as_str()),
        EventKind::CustomerCreated {
            customer, owner, ..
        }
        | EventKind::DealCreated {
            customer, owner, ..
        } => {
            employees.push(owner.as_str());
            customers.push(customer.as_str());
        }
        EventKind::CustomerViewed { customer }
        | EventKind::CustomerUpdated { customer, .. }
        | EventKind::CustomerContactRecorded { customer, .. }
        | EventKind::CustomerDeleted { customer } => customers.push(customer.as_str()),
        EventKind::DealUpdated { deal, .. } | EventKind::DealClosed { deal, .. } => {
            if let Some(d) = state.ownership.deal(deal) {
                customers.push(d.customer.as_str());
            }
        }
        EventKind::OwnershipTransferred {
            resource, from, to, ..
        } => {
            employees.extend([from.as_str(), to.as_str()]);
            customer_of_resource(resource, &mut customers);
        }
        EventKind::HandoverPlanned {
            leaver,
            assignments,
            ..
        } => {
            employees.push(leaver.as_str());
            for a in assignments {
                employees.push(a.successor.as_str());
                customer_of_resource(&a.resource, &mut customers);
            }
        }
        _ => {}
    }
    for v in [&mut employees, &mut customers] {
        v.sort_unstable();
        v.dedup();
    }
    Keys {
        actor: actor_key(&event.actor),
        employees,
        customers,
        kind: event.kind.name(),
        at: event.occurred_at.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_types::Timestamp;
    use proto_types::event::Money;
    use proto_types::ids::{CustomerId, DealId, EmployeeId, SystemId};

    fn ev(actor: Actor, kind: EventKind) -> Event {
        Event {
            id: None,
            actor,
            occurred_at: Timestamp(42),
            kind,
        }
    }
    fn e(s: &str) -> EmployeeId {
        EmployeeId::parse(s).unwrap()
    }

    #[test]
    fn a_deal_event_is_filed_under_the_deals_customer_and_a_transfer_under_both_employees() {
        let mut state = State::default();
        let created = ev(
            Actor::Employee(e("E-1")),
            EventKind::DealCreated {
                deal: DealId::parse("D-1").unwrap(),
                customer: CustomerId::parse("C-9").unwrap(),
                owner: e("E-1"),
                amount: Money {
                    minor_units: 1,
                    currency: *b"EUR",
                },
                stage: "new".into(),
            },
        );
        state.apply(&created);
        let closed = ev(
            Actor::Employee(e("E-1")),
            EventKind::DealClosed {
                deal: DealId::parse("D-1").unwrap(),
                outcome: proto_types::event::DealOutcome::Won,
                amount: Money {
                    minor_units: 1,
                    currency: *b"EUR",
                },
            },
        );
        let k = keys(&state, &closed);
        assert_eq!(k.customers, vec!["C-9"]);
        assert_eq!(k.kind, "deal_closed");
        assert_eq!(k.at, 42);

        let moved = ev(
            Actor::System(SystemId::parse("hr").unwrap()),
            EventKind::OwnershipTransferred {
                resource: Resource::Deal(DealId::parse("D-1").unwrap()),
                from: e("E-1"),
                to: e("E-2"),
                reason: "handover".into(),
            },
        );
        let k = keys(&state, &moved);
        assert_eq!(k.actor, "system:hr");
        assert_eq!(k.employees, vec!["E-1", "E-2"]);
        assert_eq!(k.customers, vec!["C-9"]);
    }
}
