//! Employees and their accounts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proto_types::event::{EventKind, Level, Module};
use proto_types::ids::{EmployeeId, RoleName};
use proto_types::{Date, Event, Timestamp};

/// Whether the account can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    /// Since when (the `occurred_at` of the disable).
    Disabled {
        since: Timestamp,
    },
    Deleted {
        since: Timestamp,
    },
}

/// Where the employee stands in their employment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Employment {
    Employed,
    Resigned {
        notice_date: Date,
        last_day: Date,
        reason: String,
        submitted_at: Timestamp,
    },
    Departed {
        effective_at: Timestamp,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    pub id: EmployeeId,
    pub name: String,
    pub email: String,
    pub manager: Option<EmployeeId>,
    pub department: String,
    pub title: String,
    pub hired_at: Timestamp,
    /// When anything about the employee last changed.
    pub updated_at: Timestamp,
    pub status: AccountStatus,
    pub employment: Employment,
    pub roles: BTreeSet<RoleName>,
    /// Direct grants (roles aside).
    pub permissions: BTreeMap<Module, Level>,
}

impl Employee {
    /// Active and not departed: may take over customers, act as a manager, be granted things.
    pub fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
            && !matches!(self.employment, Employment::Departed { .. })
    }
    pub fn is_departed(&self) -> bool {
        matches!(self.employment, Employment::Departed { .. })
    }
    pub fn is_deleted(&self) -> bool {
        matches!(self.status, AccountStatus::Deleted { .. })
    }
    /// Since when the employee can no longer act or own anything: the account's disable (or
    /// deletion), else the departure.
    pub fn inactive_since(&self) -> Option<Timestamp> {
        self.disabled_since().or(match self.employment {
            Employment::Departed { effective_at, .. } => Some(effective_at),
            _ => None,
        })
    }

    /// When the account stopped being usable, if it has.
    pub fn disabled_since(&self) -> Option<Timestamp> {
        match self.status {
            AccountStatus::Active => None,
            AccountStatus::Disabled { since } | AccountStatus::Deleted { since } => Some(since),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Directory {
    employees: HashMap<EmployeeId, Employee>,
    /// What each defined role grants.
    roles: BTreeMap<RoleName, BTreeMap<Module, Level>>,
}

impl Directory {
    pub fn get(&self, id: &EmployeeId) -> Option<&Employee> {
        self.employees.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Employee> {
        self.employees.values()
    }

    pub fn len(&self) -> usize {
        self.employees.len()
    }

    /// What `role` grants, if it is defined.
    pub fn role(&self, role: &RoleName) -> Option<&BTreeMap<Module, Level>> {
        self.roles.get(role)
    }

    /// What the employee may do: for each module, the highest level their direct grants and the
    /// definitions of their roles give; nothing at all unless the account is active and they
    /// have not departed. Modules at `Level::None` are left out.
    pub fn effective(&self, e: &Employee) -> BTreeMap<Module, Level> {
        let mut out: BTreeMap<Module, Level> = BTreeMap::new();
        if !e.is_active() {
            return out;
        }
        let granted = e
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flatten()
            .chain(&e.permissions);
        for (m, l) in granted {
            let entry = out.entry(*m).or_insert(Level::None);
            *entry = (*entry).max(*l);
        }
        out.retain(|_, l| *l > Level::None);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.employees.is_empty()
    }

    pub fn apply(&mut self, event: &Event) {
        let at = event.occurred_at;
        if let Some(e) = subject(&event.kind).and_then(|id| self.employees.get_mut(id)) {
            e.updated_at = e.updated_at.max(at);
        }
        match &event.kind {
            EventKind::EmployeeHired {
                employee,
                name,
                email,
                manager,
                department,
                title,
            } => {
                // A re-hire of a known id starts a fresh employment; history stays in the log.
                self.employees.insert(
                    employee.clone(),
                    Employee {
                        id: employee.clone(),
                        name: name.clone(),
                        email: email.clone(),
                        manager: manager.clone(),
                        department: department.clone(),
                        title: title.clone(),
                        hired_at: at,
                        updated_at: at,
                        status: AccountStatus::Active,
                        employment: Employment::Employed,
                        roles: BTreeSet::new(),
                        permissions: BTreeMap::new(),
                    },
                );
            }
            EventKind::EmployeeUpdated {
                employee,
                name,
                email,
                manager,
                department,
                title,
            } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    if let Some(v) = name {
                        e.name = v.clone();
                    }
                    if let Some(v) = email {
                        e.email = v.clone();
                    }
                    if let Some(v) = manager {
                        e.manager = v.clone();
                    }
                    if let Some(v) = department {
                        e.department = v.clone();
                    }
                    if let Some(v) = title {
                        e.title = v.clone();
                    }
                }
            }
            EventKind::RoleDefined { role, permissions } => {
                self.roles
                    .insert(role.clone(), permissions.iter().copied().collect());
            }
            EventKind::RoleGranted { employee, role } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    e.roles.insert(role.clone());
                }
            }
            EventKind::RoleRevoked { employee, role, .. } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    e.roles.remove(role);
                }
            }
            EventKind::PermissionGranted {
                employee,
                module,
                level,
            } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    e.permissions.insert(*module, *level);
                }
            }
            EventKind::PermissionRevoked { employee, module } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    e.permissions.remove(module);
                }
            }
            EventKind::ResignationSubmitted {
                employee,
                notice_date,
                last_day,
                reason,
            } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    e.employment = Employment::Resigned {
                        notice_date: *notice_date,
                        last_day: *last_day,
                        reason: reason.clone(),
                        submitted_at: at,
                    };
                }
            }
            EventKind::EmployeeDeparted {
                employee,
                effective_at,
                reason,
            } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    e.employment = Employment::Departed {
                        effective_at: *effective_at,
                        reason: reason.clone(),
                    };
                }
            }
            EventKind::AccountDisabled { employee, .. } => {
                if let Some(e) = self.employees.get_mut(employee)
                    && e.status == AccountStatus::Active
                {
                    e.status = AccountStatus::Disabled { since: at };
                }
            }
            EventKind::AccountReenabled { employee, .. } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    e.status = AccountStatus::Active;
                    e.employment = Employment::Employed;
                }
            }
            EventKind::AccountDeleted { employee, .. } => {
                if let Some(e) = self.employees.get_mut(employee) {
                    let since = e.disabled_since().unwrap_or(at);
                    e.status = AccountStatus::Deleted { since };
                    e.roles.clear();
                    e.permissions.clear();
                }
            }
            _ => {}
        }
    }
}

/// The employee an account or HR event is about (a hire's is the hired employee).
pub fn subject(kind: &EventKind) -> Option<&EmployeeId> {
    match kind {
        EventKind::EmployeeHired { employee, .. }
        | EventKind::EmployeeUpdated { employee, .. }
        | EventKind::RoleGranted { employee, .. }
        | EventKind::RoleRevoked { employee, .. }
        | EventKind::PermissionGranted { employee, .. }
        | EventKind::PermissionRevoked { employee, .. }
        | EventKind::ResignationSubmitted { employee, .. }
        | EventKind::EmployeeDeparted { employee, .. }
        | EventKind::AccountDisabled { employee, .. }
        | EventKind::AccountReenabled { employee, .. }
        | EventKind::AccountDeleted { employee, .. } => Some(employee),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_types::Actor;
    use proto_types::ids::SystemId;

    fn ev(kind: EventKind) -> Event {
        Event {
            id: None,
            actor: Actor::System(SystemId::parse("hr").unwrap()),
            occurred_at: Timestamp(1),
            kind,
        }
    }
    fn role(s: &str) -> RoleName {
        RoleName::parse(s).unwrap()
    }

    #[test]
    fn effective_permissions_are_the_highest_of_direct_grants_and_role_definitions() {
        let id = EmployeeId::parse("E-1").unwrap();
        let mut d = Directory::default();
        for kind in [
            EventKind::EmployeeHired {
                employee: id.clone(),
                name: "A".into(),
                email: String::new(),
                manager: None,
                department: String::new(),
                title: String::new(),
            },
            EventKind::RoleDefined {
                role: role("sales-rep"),
                permissions: vec![
                    (Module::Customers, Level::Write),
                    (Module::Export, Level::Read),
                ],
            },
            EventKind::RoleGranted {
                employee: id.clone(),
                role: role("sales-rep"),
            },
            EventKind::RoleGranted {
                employee: id.clone(),
                role: role("never-defined"),
            },
            EventKind::PermissionGranted {
                employee: id.clone(),
                module: Module::Export,
                level: Level::Admin,
            },
        ] {
            d.apply(&ev(kind));
        }
        let e = d.get(&id).unwrap();
        assert_eq!(
            d.effective(e).into_iter().collect::<Vec<_>>(),
            vec![
                (Module::Customers, Level::Write),
                (Module::Export, Level::Admin)
            ]
        );
        // A redefinition applies to everyone holding the role, from then on.
        d.apply(&ev(EventKind::RoleDefined {
            role: role("sales-rep"),
            permissions: vec![
                (Module::Customers, Level::Read),
                (Module::Deals, Level::None),
            ],
        }));
        let e = d.get(&id).unwrap();
        assert_eq!(
            d.effective(e).into_iter().collect::<Vec<_>>(),
            vec![
                (Module::Customers, Level::Read),
                (Module::Export, Level::Admin)
            ]
        );
        // A disabled account may do nothing, whatever it was granted.
        d.apply(&ev(EventKind::AccountDisabled {
            employee: id.clone(),
            reason: "departure".into(),
        }));
        assert!(d.effective(d.get(&id).unwrap()).is_empty());
    }
}
