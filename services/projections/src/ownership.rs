//! Who owns each customer and each deal.

use std::collections::{BTreeSet, HashMap};

use proto_types::event::{EventKind, Resource};
use proto_types::{Event, Timestamp};

use crate::directory::{Directory, Employee};
use proto_types::ids::{CustomerId, DealId, EmployeeId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub owner: EmployeeId,
    /// When the current owner got it (created, or transferred to them).
    pub owned_since: Timestamp,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub id: DealId,
    pub customer: CustomerId,
    pub owner: EmployeeId,
    pub open: bool,
}

/// A customer nobody active owns.
#[derive(Debug, Clone, Copy)]
pub struct Orphan<'a> {
    pub customer: &'a Customer,
    /// The owner of record (`None`: an id never hired).
    pub owner: Option<&'a Employee>,
    /// Since when nobody active has owned it.
    pub since: Timestamp,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ownership {
    customers: HashMap<CustomerId, Customer>,
    deals: HashMap<DealId, Deal>,
    /// Live (not deleted) customers and open deals, by owner.
    by_owner: HashMap<EmployeeId, BTreeSet<Resource>>,
}

impl Ownership {
    pub fn customer(&self, id: &CustomerId) -> Option<&Customer> {
        self.customers.get(id)
    }

    pub fn deal(&self, id: &DealId) -> Option<&Deal> {
        self.deals.get(id)
    }

    /// The live customers and open deals `owner` holds, customers first, each in id order.
    pub fn held_by(&self, owner: &EmployeeId) -> impl Iterator<Item = &Resource> {
        self.by_owner.get(owner).into_iter().flatten()
    }

    /// The current owner of a live customer or open deal.
    pub fn owner_of(&self, r: &Resource) -> Option<&EmployeeId> {
        match r {
            Resource::Customer(c) => self
                .customers
                .get(c)
                .filter(|c| !c.deleted)
                .map(|c| &c.owner),
            Resource::Deal(d) => self.deals.get(d).filter(|d| d.open).map(|d| &d.owner),
        }
    }

    /// Live customers whose owner can no longer look after them (departed, disabled or deleted)
    /// and that have not been handed over: HR's to-do list.
    pub fn orphaned<'a>(
        &'a self,
        directory: &'a Directory,
    ) -> impl Iterator<Item = Orphan<'a>> + 'a {
        self.customers
            .values()
            .filter_map(move |c| self.orphan(directory, &c.id))
    }

    /// The customer, if it is orphaned (see [`Ownership::orphaned`]).
    pub fn orphan<'a>(&'a self, directory: &'a Directory, id: &CustomerId) -> Option<Orphan<'a>> {
        let customer = self.customers.get(id).filter(|c| !c.deleted)?;
        let owner = directory.get(&customer.owner);
        let owner_since = match owner {
            // An owner Handover never saw hired cannot look after anything either.
            None => customer.owned_since,
            Some(o) => o.inactive_since()?,
        };
        Some(Orphan {
            customer,
            owner,
            since: owner_since.max(customer.owned_since),
        })
    }

    fn hold(&mut self, owner: &EmployeeId, r: Resource) {
        self.by_owner.entry(owner.clone()).or_default().insert(r);
    }

    fn release(&mut self, owner: &EmployeeId, r: &Resource) {
        if let Some(set) = self.by_owner.get_mut(owner) {
            set.remove(r);
            if set.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    pub fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::CustomerCreated {
                customer,
                name,
                owner,
            } => {
                if let Some(old) = self.customers.get(customer) {
                    let old_owner = old.owner.clone();
                    self.release(&old_owner, &Resource::Customer(customer.clone()));
                }
                self.customers.insert(
                    customer.clone(),
                    Customer {
                        id: customer.clone(),
                        name: name.clone(),
                        owner: owner.clone(),
                        owned_since: event.occurred_at,
                        deleted: false,
                    },
                );
                self.hold(owner, Resource::Customer(customer.clone()));
            }
            EventKind::CustomerDeleted { customer } => {
                if let Some(c) = self.customers.get_mut(customer) {
                    c.deleted = true;
                    let owner = c.owner.clone();
                    self.release(&owner, &Resource::Customer(customer.clone()));
                }
            }
            EventKind::DealCreated {
                deal,
                customer,
                owner,
                ..
            } => {
                if let Some(old) = self.deals.get(deal) {
                    let old_owner = old.owner.clone();
                    self.release(&old_owner, &Resource::Deal(deal.clone()));
                }
                self.deals.insert(
                    deal.clone(),
                    Deal {
                        id: deal.clone(),
                        customer: customer.clone(),
                        owner: owner.clone(),
                        open: true,
                    },
                );
                self.hold(owner, Resource::Deal(deal.clone()));
            }
            EventKind::DealClosed { deal, .. } => {
                if let Some(d) = self.deals.get_mut(deal) {
                    d.open = false;
                    let owner = d.owner.clone();
                    self.release(&owner, &Resource::Deal(deal.clone()));
                }
            }
            EventKind::OwnershipTransferred { resource, to, .. } => {
                let from = match resource {
                    Resource::Customer(c) => self.customers.get_mut(c).map(|c| {
                        let live = !c.deleted;
                        c.owned_since = event.occurred_at;
                        (std::mem::replace(&mut c.owner, to.clone()), live)
                    }),
                    Resource::Deal(d) => self.deals.get_mut(d).map(|d| {
                        let live = d.open;
                        (std::mem::replace(&mut d.owner, to.clone()), live)
                    }),
                };
                if let Some((from, true)) = from {
                    self.release(&from, resource);
                    self.hold(to, resource.clone());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::State;
    use proto_types::Actor;
    use proto_types::ids::SystemId;

    fn e(s: &str) -> EmployeeId {
        EmployeeId::parse(s).unwrap()
    }
    fn c(s: &str) -> CustomerId {
        CustomerId::parse(s).unwrap()
    }
    fn at(minutes: i64, kind: EventKind) -> Event {
        Event {
            id: None,
            actor: Actor::System(SystemId::parse("hr").unwrap()),
            occurred_at: Timestamp(minutes * 60_000_000),
            kind,
        }
    }
    fn hire(id: &str) -> EventKind {
        EventKind::EmployeeHired {
            employee: e(id),
            name: id.into(),
            email: String::new(),
            manager: None,
            department: String::new(),
            title: String::new(),
        }
    }
    fn create(customer: &str, owner: &str) -> EventKind {
        EventKind::CustomerCreated {
            customer: c(customer),
            name: customer.into(),
            owner: e(owner),
        }
    }
    fn orphans(s: &State) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = s
            .ownership
            .orphaned(&s.directory)
            .map(|o| (o.customer.id.to_string(), o.since.0 / 60_000_000))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn customers_of_a_leaver_are_orphaned_from_the_disable_until_handed_over() {
        let mut s = State::default();
        for ev in [
            at(0, hire("E-1")),
            at(0, hire("E-2")),
            at(1, create("C-1", "E-1")),
            at(2, create("C-2", "E-1")),
            at(3, create("C-3", "E-2")),
        ] {
            s.apply(&ev);
        }
        assert!(orphans(&s).is_empty(), "active owners");
        s.apply(&at(
            10,
            EventKind::EmployeeDeparted {
                employee: e("E-1"),
                effective_at: Timestamp(9 * 60_000_000),
                reason: "resigned".into(),
            },
        ));
        // Departed at minute 9 (effective), the account still enabled: orphaned since then.
        assert_eq!(orphans(&s), vec![("C-1".into(), 9), ("C-2".into(), 9)]);
        s.apply(&at(
            11,
            EventKind::AccountDisabled {
                employee: e("E-1"),
                reason: "departure".into(),
            },
        ));
        assert_eq!(orphans(&s), vec![("C-1".into(), 11), ("C-2".into(), 11)]);
        s.apply(&at(
            20,
            EventKind::OwnershipTransferred {
                resource: Resource::Customer(c("C-1")),
                from: e("E-1"),
                to: e("E-2"),
                reason: "handover".into(),
            },
        ));
        s.apply(&at(21, EventKind::CustomerDeleted { customer: c("C-2") }));
        assert!(orphans(&s).is_empty(), "handed over, or gone");
        // Given to someone already gone, or created for an id never hired: orphaned at once.
        s.apply(&at(
            30,
            EventKind::OwnershipTransferred {
                resource: Resource::Customer(c("C-3")),
                from: e("E-2"),
                to: e("E-1"),
                reason: "mistake".into(),
            },
        ));
        s.apply(&at(31, create("C-4", "E-404")));
        assert_eq!(orphans(&s), vec![("C-3".into(), 30), ("C-4".into(), 31)]);
    }
}
