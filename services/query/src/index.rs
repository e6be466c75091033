//! What each entry is filed under: the keys of the query store's indexes.
//!
//! An entry is found by its actor, by every employee it involves (the actor, and whoever an HR
//! or handover event is about), by every customer it touches (a deal's events count for the
//! deal's customer), by its kind, and by its time. Pure: the keys depend on the event and the
//! projections just before it, nothing else.

use std::collections::BTreeSet;

use projections::State;
use proto_types::event::{EventKind, Resource};
use proto_types::{Actor, Event};

/// The index keys of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `employee:ID` or `system:NAME`.
    pub actor: String,
    /// Employees the event is by or about.
    pub employees: BTreeSet<String>,
    /// Customers the event touches.
    pub customers: BTreeSet<String>,
    pub kind: &'static str,
    /// `occurred_at`, microseconds since the epoch.
    pub at: i64,
}

/// The actor as the API names it: an employee id as is, `system:NAME` for the rest.
pub fn actor_key(actor: &Actor) -> String {
    match actor {
        Actor::Employee(e) => e.as_str().to_string(),
        Actor::System(s) => format!("system:{s}"),
    }
}

/// The keys `event` is filed under, given the projections as they stand before it.
pub fn keys(state: &State, event: &Event) -> Keys {
    let mut employees = BTreeSet::new();
    let mut customers = BTreeSet::new();
    if let Actor::Employee(e) = &event.actor {
        employees.insert(e.as_str().to_string());
    }
    let customer_of_resource = |r: &Resource, customers: &mut BTreeSet<String>| match r {
        Resource::Customer(c) => {
            customers.insert(c.as_str().to_string());
        }
        Resource::Deal(d) => {
            if let Some(deal) = state.ownership.deal(d) {
                customers.insert(deal.customer.as_str().to_string());
            }
        }
    };
    let mut emp = |e: &proto_types::ids::EmployeeId| {
        employees.insert(e.as_str().to_string());
    };
    if let Some(subject) = projections::directory::subject(&event.kind) {
        emp(subject);
    }
    match &event.kind {
        EventKind::EmployeeHired {
            manager: Some(m), ..
        } => emp(m),
        EventKind::HandoverItemCompleted { leaver, .. }
        | EventKind::HandoverCompleted { leaver } => emp(leaver),
        EventKind::CustomerCreated {
            customer, owner, ..
        } => {
            emp(owner);
            customers.insert(customer.as_str().to_string());
        }
        EventKind::CustomerViewed { customer }
        | EventKind::CustomerUpdated { customer, .. }
        | EventKind::CustomerContactRecorded { customer, .. }
        | EventKind::CustomerDeleted { customer } => {
            customers.insert(customer.as_str().to_string());
        }
        EventKind::DealCreated {
            customer, owner, ..
        } => {
            emp(owner);
            customers.insert(customer.as_str().to_string());
        }
        EventKind::DealUpdated { deal, .. } | EventKind::DealClosed { deal, .. } => {
            customer_of_resource(&Resource::Deal(deal.clone()), &mut customers);
        }
        EventKind::OwnershipTransferred {
            resource, from, to, ..
        } => {
            emp(from);
            emp(to);
            customer_of_resource(resource, &mut customers);
        }
        EventKind::HandoverPlanned {
            leaver,
            assignments,
            ..
        } => {
            emp(leaver);
            for a in assignments {
                emp(&a.successor);
                customer_of_resource(&a.resource, &mut customers);
            }
        }
        _ => {}
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
        assert_eq!(k.customers.into_iter().collect::<Vec<_>>(), vec!["C-9"]);
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
        assert_eq!(
            k.employees.into_iter().collect::<Vec<_>>(),
            vec!["E-1", "E-2"]
        );
        assert_eq!(k.customers.into_iter().collect::<Vec<_>>(), vec!["C-9"]);
    }
}
