//! Who owns each customer and each deal.

use std::collections::{BTreeSet, HashMap};

use proto_types::Event;
use proto_types::event::{EventKind, Resource};
use proto_types::ids::{CustomerId, DealId, EmployeeId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub owner: EmployeeId,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub id: DealId,
    pub customer: CustomerId,
    pub owner: EmployeeId,
    pub open: bool,
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
