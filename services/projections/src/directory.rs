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
