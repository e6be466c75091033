//! Commands and the rules that decide them. A command is checked against the current
//! [`State`] and, if it fits, becomes the events that record it; if it does not, it becomes a
//! [`CommandError`] and nothing is written. Pure: no I/O, no clock (times come in the command).
//!
//! Offboarding, as events: a departure records `EmployeeDeparted`, disables the account
//! (`AccountDisabled`), revokes every role and direct permission, and plans the handover of every
//! customer and open deal the leaver holds (to the named successor, else the leaver's manager)
//! with the checklist; all in one commit. Transfers record `OwnershipTransferred`; the checklist
//! items "customers transferred" and "deals reassigned" complete themselves when nothing of their
//! kind is left, and `HandoverCompleted` follows the last item.

use std::collections::BTreeMap;

use projections::State;
use projections::directory::Employee;
use projections::handover::Plan;
use proto_types::event::{ChecklistItem, EventKind, HandoverAssignment, Level, Module, Resource};
use proto_types::ids::{CustomerId, EmployeeId, RoleName};
use proto_types::{Date, Timestamp};

/// What HR (or an identity provider) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Hire {
        employee: EmployeeId,
        name: String,
        email: String,
        manager: Option<EmployeeId>,
        department: String,
        title: String,
    },
    UpdateEmployee {
        employee: EmployeeId,
        name: Option<String>,
        email: Option<String>,
        manager: Option<Option<EmployeeId>>,
        department: Option<String>,
        title: Option<String>,
    },
    GrantRole {
        employee: EmployeeId,
        role: RoleName,
    },
    RevokeRole {
        employee: EmployeeId,
        role: RoleName,
        reason: String,
    },
    GrantPermission {
        employee: EmployeeId,
        module: Module,
        level: Level,
    },
    RevokePermission {
        employee: EmployeeId,
        module: Module,
    },
    /// What a role grants from now on (replacing its earlier definition).
    DefineRole {
        role: RoleName,
        permissions: Vec<(Module, Level)>,
    },
    SubmitResignation {
        employee: EmployeeId,
        notice_date: Date,
        last_day: Date,
        reason: String,
    },
    Depart {
        employee: EmployeeId,
        /// When the departure takes effect (defaults to now at the API).
        effective_at: Timestamp,
        reason: String,
        /// Successor per customer; customers not named go to `default_successor`.
        successors: BTreeMap<CustomerId, EmployeeId>,
        /// Successor for everything not named; defaults to the leaver's manager.
        default_successor: Option<EmployeeId>,
    },
    Transfer {
        leaver: EmployeeId,
        transfers: Vec<Transfer>,
    },
    CompleteItem {
        leaver: EmployeeId,
        item: ChecklistItem,
    },
    Reenable {
        employee: EmployeeId,
        reason: String,
    },
    /// Disable the account now, without (yet) recording a departure: what an identity provider's
    /// deprovisioning does when no successor can be planned.
    Disable {
        employee: EmployeeId,
        reason: String,
    },
    Delete {
        employee: EmployeeId,
        reason: String,
    },
}

/// One transfer: a resource of the leaver's, to a successor (default: the planned one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub resource: Resource,
    pub to: Option<EmployeeId>,
}

/// Why a command does not fit the state. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The employee (or other subject) the command is about does not exist. HTTP 404.
    #[error("{0}")]
    NotFound(String),
    /// The command contradicts the subject's state (departing twice, …). HTTP 409.
    #[error("{0}")]
    Conflict(String),
    /// The command names something that cannot take part (a successor who has left, …). HTTP 422.
    #[error("{0}")]
    Unprocessable(String),
}

use CommandError::{Conflict, NotFound, Unprocessable};

fn employee<'a>(state: &'a State, id: &EmployeeId) -> Result<&'a Employee, CommandError> {
    state
        .directory
        .get(id)
        .ok_or_else(|| NotFound(format!("employee {id} does not exist")))
}

/// The employee, who must be neither departed nor deleted.
fn current<'a>(state: &'a State, id: &EmployeeId) -> Result<&'a Employee, CommandError> {
    let e = employee(state, id)?;
    if e.is_deleted() {
        return Err(Conflict(format!("employee {id}'s account is deleted")));
    }
    if e.is_departed() {
        return Err(Conflict(format!("employee {id} has departed")));
    }
    Ok(e)
}

/// Someone who can take over customers or manage: exists, active, not departed.
fn successor(state: &State, id: &EmployeeId, role: &str) -> Result<(), CommandError> {
    match state.directory.get(id) {
        None => Err(Unprocessable(format!("{role} {id} does not exist"))),
        Some(e) if !e.is_active() => Err(Unprocessable(format!(
            "{role} {id} cannot take over: the account is not active"
        ))),
        Some(_) => Ok(()),
    }
}

fn plan<'a>(state: &'a State, leaver: &EmployeeId) -> Result<&'a Plan, CommandError> {
    employee(state, leaver)?;
    state
        .handovers
        .plan(leaver)
        .ok_or_else(|| Conflict(format!("no handover is planned for {leaver}")))
}

/// Decides a command against `state`.
///
/// # Errors
/// [`CommandError`] when the command does not fit the state.
pub fn decide(state: &State, command: &Command) -> Result<Vec<EventKind>, CommandError> {
    match command {
        Command::Hire {
            employee: id,
            name,
            email,
            manager,
            department,
            title,
        } => {
            if let Some(e) = state.directory.get(id) {
                if !e.is_departed() && !e.is_deleted() {
                    return Err(Conflict(format!("employee {id} already exists")));
                }
                return Err(Conflict(format!(
                    "employee {id} has left; re-enable the account to re-hire them"
                )));
            }
            if let Some(m) = manager {
                if m == id {
                    return Err(Unprocessable(
                        "an employee cannot be their own manager".into(),
                    ));
                }
                successor(state, m, "manager")?;
            }
            Ok(vec![EventKind::EmployeeHired {
                employee: id.clone(),
                name: name.clone(),
                email: email.clone(),
                manager: manager.clone(),
                department: department.clone(),
                title: title.clone(),
            }])
        }
        Command::UpdateEmployee {
            employee: id,
            name,
            email,
            manager,
            department,
            title,
        } => {
            let e = employee(state, id)?;
            if e.is_deleted() {
                return Err(Conflict(format!("employee {id}'s account is deleted")));
            }
            if let Some(Some(m)) = manager {
                if m == id {
                    return Err(Unprocessable(
                        "an employee cannot be their own manager".into(),
                    ));
                }
                successor(state, m, "manager")?;
            }
            let changed =
                |new: &Option<String>, old: &String| new.as_ref().filter(|n| *n != old).cloned();
            let event = EventKind::EmployeeUpdated {
                employee: id.clone(),
                name: changed(name, &e.name),
                email: changed(email, &e.email),
                manager: manager.clone().filter(|m| *m != e.manager),
                department: changed(department, &e.department),
                title: changed(title, &e.title),
            };
            // Nothing changed, nothing to record.
            Ok(match &event {
                EventKind::EmployeeUpdated {
                    name: None,
                    email: None,
                    manager: None,
                    department: None,
                    title: None,
                    ..
                } => vec![],
                _ => vec![event],
            })
        }
        Command::GrantRole { employee: id, role } => {
            let e = current(state, id)?;
            if e.roles.contains(role) {
                return Err(Conflict(format!("employee {id} already has role {role}")));
            }
            Ok(vec![EventKind::RoleGranted {
                employee: id.clone(),
                role: role.clone(),
            }])
        }
        Command::RevokeRole {
            employee: id,
            role,
            reason,
        } => {
            let e = employee(state, id)?;
            if !e.roles.contains(role) {
                return Err(Conflict(format!("employee {id} does not have role {role}")));
            }
            Ok(vec![EventKind::RoleRevoked {
                employee: id.clone(),
                role: role.clone(),
                reason: reason.clone(),
            }])
        }
        Command::GrantPermission {
            employee: id,
            module,
            level,
        } => {
            let e = current(state, id)?;
            if *level == Level::None {
                return Err(Unprocessable(
                    "grant a level above none, or revoke the permission".into(),
                ));
            }
            if e.permissions.get(module) == Some(level) {
                return Err(Conflict(format!(
                    "employee {id} already has {level:?} on {module:?}"
                )));
            }
            Ok(vec![EventKind::PermissionGranted {
                employee: id.clone(),
                module: *module,
                level: *level,
            }])
        }
        Command::RevokePermission {
            employee: id,
            module,
        } => {
            let e = employee(state, id)?;
            if !e.permissions.contains_key(module) {
                return Err(Conflict(format!(
                    "employee {id} has no direct permission on {module:?}"
                )));
            }
            Ok(vec![EventKind::PermissionRevoked {
                employee: id.clone(),
                module: *module,
            }])
        }
        Command::DefineRole { role, permissions } => {
            let mut seen = std::collections::BTreeMap::new();
            for (m, l) in permissions {
                if seen.insert(*m, *l).is_some() {
                    return Err(Unprocessable(format!(
                        "role {role} names {m:?} more than once"
                    )));
                }
            }
            // Defining a role as it already is records nothing.
            if state.directory.role(role) == Some(&seen) {
                return Ok(vec![]);
            }
            Ok(vec![EventKind::RoleDefined {
                role: role.clone(),
                permissions: seen.into_iter().collect(),
            }])
        }
        Command::SubmitResignation {
            employee: id,
            notice_date,
            last_day,
            reason,
        } => {
            let e = current(state, id)?;
            if matches!(
                e.employment,
                projections::directory::Employment::Resigned { .. }
            ) {
                return Err(Conflict(format!("employee {id} has already resigned")));
            }
            if last_day < notice_date {
                return Err(Unprocessable(format!(
                    "the last working day ({last_day}) is before the notice date ({notice_date})"
                )));
            }
            Ok(vec![EventKind::ResignationSubmitted {
                employee: id.clone(),
                notice_date: *notice_date,
                last_day: *last_day,
                reason: reason.clone(),
            }])
        }
        Command::Depart {
            employee: id,
            effective_at,
            reason,
            successors,
            default_successor,
        } => depart(
            state,
            id,
            *effective_at,
            reason,
            successors,
            default_successor.as_ref(),
        ),
        Command::Transfer { leaver, transfers } => transfer(state, leaver, transfers),
        Command::CompleteItem { leaver, item } => {
            let p = plan(state, leaver)?;
            if p.completed {
                return Err(Conflict(format!(
                    "the handover of {leaver} is already complete"
                )));
            }
            match p.checklist.get(item) {
                None => return Err(Conflict(format!("{item:?} is not on {leaver}'s checklist"))),
                Some(true) => return Err(Conflict(format!("{item:?} is already complete"))),
                Some(false) => {}
            }
            let left = match item {
                ChecklistItem::CustomersTransferred => p.remaining_customers(),
                ChecklistItem::DealsReassigned => p.remaining_deals(),
                _ => 0,
            };
            if left > 0 {
                return Err(Conflict(format!(
                    "{left} planned {} still to transfer",
                    if *item == ChecklistItem::DealsReassigned {
                        "deals are"
                    } else {
                        "customers are"
                    }
                )));
            }
            let mut events = vec![EventKind::HandoverItemCompleted {
                leaver: leaver.clone(),
                item: *item,
            }];
            if p.open_items().all(|i| i == *item) {
                events.push(EventKind::HandoverCompleted {
                    leaver: leaver.clone(),
                });
            }
            Ok(events)
        }
        Command::Reenable {
            employee: id,
            reason,
        } => {
            let e = employee(state, id)?;
            if e.is_deleted() {
                return Err(Conflict(format!(
                    "employee {id}'s account is deleted and cannot be re-enabled"
                )));
            }
            if e.is_active() {
                return Err(Conflict(format!(
                    "employee {id}'s account is already active"
                )));
            }
            Ok(vec![EventKind::AccountReenabled {
                employee: id.clone(),
                reason: reason.clone(),
            }])
        }
        Command::Disable {
            employee: id,
            reason,
        } => {
            let e = employee(state, id)?;
            if e.status != projections::directory::AccountStatus::Active {
                return Err(Conflict(format!("employee {id}'s account is not active")));
            }
            Ok(vec![EventKind::AccountDisabled {
                employee: id.clone(),
                reason: reason.clone(),
            }])
        }
        Command::Delete {
            employee: id,
            reason,
        } => {
            let e = employee(state, id)?;
            if e.is_deleted() {
                return Err(Conflict(format!(
                    "employee {id}'s account is already deleted"
                )));
            }
            Ok(vec![EventKind::AccountDeleted {
                employee: id.clone(),
                reason: reason.clone(),
            }])
        }
    }
}

fn depart(
    state: &State,
    id: &EmployeeId,
    effective_at: Timestamp,
    reason: &str,
    successors: &BTreeMap<CustomerId, EmployeeId>,
    default_successor: Option<&EmployeeId>,
) -> Result<Vec<EventKind>, CommandError> {
    let e = employee(state, id)?;
    if e.is_departed() {
        return Err(Conflict(format!("employee {id} has already departed")));
    }
    if e.is_deleted() {
        return Err(Conflict(format!("employee {id}'s account is deleted")));
    }
    for (customer, s) in successors {
        if state
            .ownership
            .owner_of(&Resource::Customer(customer.clone()))
            != Some(id)
        {
            return Err(Unprocessable(format!(
                "customer {customer} is not held by {id}, so it cannot be handed over"
            )));
        }
        if s == id {
            return Err(Unprocessable(format!(
                "the leaver cannot succeed themselves ({customer})"
            )));
        }
        successor(state, s, "successor")?;
    }
    let fallback = default_successor.or(e.manager.as_ref());
    if let Some(f) = default_successor {
        if f == id {
            return Err(Unprocessable("the leaver cannot succeed themselves".into()));
        }
        successor(state, f, "successor")?;
    }
    let mut assignments = Vec::new();
    for r in state.ownership.held_by(id) {
        let named = match r {
            Resource::Customer(c) => successors.get(c),
            Resource::Deal(_) => None,
        };
        let to = match named.or(fallback) {
            Some(to) => to,
            None => {
                return Err(Unprocessable(format!(
                    "{id} has no manager to take over {}: name a successor",
                    describe(r)
                )));
            }
        };
        if named.is_none() {
            successor(state, to, "the default successor (the leaver's manager)")?;
        }
        assignments.push(HandoverAssignment {
            resource: r.clone(),
            successor: to.clone(),
        });
    }
    let mut events = vec![EventKind::EmployeeDeparted {
        employee: id.clone(),
        effective_at,
        reason: reason.to_string(),
    }];
    if e.status == projections::directory::AccountStatus::Active {
        events.push(EventKind::AccountDisabled {
            employee: id.clone(),
            reason: "departure".into(),
        });
    }
    for role in &e.roles {
        events.push(EventKind::RoleRevoked {
            employee: id.clone(),
            role: role.clone(),
            reason: "departure".into(),
        });
    }
    for module in e.permissions.keys() {
        events.push(EventKind::PermissionRevoked {
            employee: id.clone(),
            module: *module,
        });
    }
    events.push(EventKind::HandoverPlanned {
        leaver: id.clone(),
        assignments,
        checklist: ChecklistItem::ALL.to_vec(),
    });
    Ok(events)
}

fn describe(r: &Resource) -> String {
    match r {
        Resource::Customer(c) => format!("customer {c}"),
        Resource::Deal(d) => format!("deal {d}"),
    }
}

fn transfer(
    state: &State,
    leaver: &EmployeeId,
    transfers: &[Transfer],
) -> Result<Vec<EventKind>, CommandError> {
    let p = plan(state, leaver)?;
    if transfers.is_empty() {
        return Err(Unprocessable("no transfers given".into()));
    }
    let mut events = Vec::new();
    let mut moved = std::collections::BTreeSet::new();
    for t in transfers {
        if state.ownership.owner_of(&t.resource) != Some(leaver) || !moved.insert(&t.resource) {
            return Err(Conflict(format!(
                "{} is not held by {leaver}",
                describe(&t.resource)
            )));
        }
        let to = match (&t.to, p.assignments.get(&t.resource)) {
            (Some(to), _) | (None, Some(to)) => to,
            (None, None) => {
                return Err(Unprocessable(format!(
                    "{} is not in the handover plan: name who takes it over",
                    describe(&t.resource)
                )));
            }
        };
        if to == leaver {
            return Err(Unprocessable(
                "the leaver cannot take over their own customers".into(),
            ));
        }
        successor(state, to, "successor")?;
        events.push(EventKind::OwnershipTransferred {
            resource: t.resource.clone(),
            from: leaver.clone(),
            to: to.clone(),
            reason: "handover".into(),
        });
    }
    // Items that this completes, and the handover if nothing is left open.
    let remaining = |kind: fn(&Resource) -> bool| {
        p.remaining()
            .filter(|(r, _)| kind(r) && !moved.contains(r))
            .count()
    };
    let mut open: Vec<ChecklistItem> = p.open_items().collect();
    for (item, kind) in [
        (
            ChecklistItem::CustomersTransferred,
            (|r: &Resource| matches!(r, Resource::Customer(_))) as fn(&Resource) -> bool,
        ),
        (ChecklistItem::DealsReassigned, |r: &Resource| {
            matches!(r, Resource::Deal(_))
        }),
    ] {
        if open.contains(&item) && remaining(kind) == 0 {
            events.push(EventKind::HandoverItemCompleted {
                leaver: leaver.clone(),
                item,
            });
            open.retain(|i| *i != item);
        }
    }
    if open.is_empty() && !p.completed {
        events.push(EventKind::HandoverCompleted {
            leaver: leaver.clone(),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    //! Given events / when command / then events (or the error).

    use super::*;
    use proto_types::event::Money;
    use proto_types::ids::{DealId, SystemId};
    use proto_types::{Actor, Event};

    fn e(s: &str) -> EmployeeId {
        EmployeeId::parse(s).unwrap()
    }
    fn c(s: &str) -> CustomerId {
        CustomerId::parse(s).unwrap()
    }
    fn d(s: &str) -> DealId {
        DealId::parse(s).unwrap()
    }

    fn given(events: Vec<EventKind>) -> State {
        let mut state = State::default();
        for (i, kind) in events.into_iter().enumerate() {
            state.apply(&Event {
                id: None,
                actor: Actor::System(SystemId::parse("hr").unwrap()),
                occurred_at: Timestamp(i as i64),
                kind,
            });
        }
        state
    }

    fn when(state: &State, command: Command) -> Result<Vec<EventKind>, CommandError> {
        decide(state, &command)
    }

    /// Then: apply the decided events and continue from there.
    fn then_apply(mut state: State, events: &[EventKind]) -> State {
        for kind in events {
            state.apply(&Event {
                id: None,
                actor: Actor::System(SystemId::parse("hr").unwrap()),
                occurred_at: Timestamp(2_000),
                kind: kind.clone(),
            });
        }
        state
    }

    fn hired(id: &str, manager: Option<&str>) -> EventKind {
        EventKind::EmployeeHired {
            employee: e(id),
            name: format!("Name of {id}"),
            email: format!("{id}@example.com"),
            manager: manager.map(e),
            department: "Sales".into(),
            title: "Rep".into(),
        }
    }

    fn customer(id: &str, owner: &str) -> EventKind {
        EventKind::CustomerCreated {
            customer: c(id),
            name: id.into(),
            owner: e(owner),
        }
    }

    fn deal(id: &str, customer: &str, owner: &str) -> EventKind {
        EventKind::DealCreated {
            deal: d(id),
            customer: c(customer),
            owner: e(owner),
            amount: Money {
                minor_units: 100,
                currency: *b"EUR",
            },
            stage: "qualified".into(),
        }
    }

    /// A boss (E-1), two reps under them (E-2, E-3); E-2 holds C-1, C-2 and deal D-1.
    fn team() -> State {
        given(vec![
            hired("E-1", None),
            hired("E-2", Some("E-1")),
            hired("E-3", Some("E-1")),
            EventKind::RoleGranted {
                employee: e("E-2"),
                role: RoleName::parse("sales-rep").unwrap(),
            },
            EventKind::PermissionGranted {
                employee: e("E-2"),
                module: Module::Export,
                level: Level::Write,
            },
            customer("C-1", "E-2"),
            customer("C-2", "E-2"),
            customer("C-3", "E-3"),
            deal("D-1", "C-1", "E-2"),
        ])
    }

    fn depart(id: &str) -> Command {
        Command::Depart {
            employee: e(id),
            effective_at: Timestamp(1_000),
            reason: "resigned".into(),
            successors: BTreeMap::new(),
            default_successor: None,
        }
    }

    #[test]
    fn hiring_an_existing_employee_is_a_conflict_and_an_unknown_manager_unprocessable() {
        let s = team();
        assert!(matches!(
            when(
                &s,
                Command::Hire {
                    employee: e("E-2"),
                    name: "x".into(),
                    email: "x".into(),
                    manager: None,
                    department: "d".into(),
                    title: "t".into()
                }
            ),
            Err(Conflict(_))
        ));
        assert!(matches!(
            when(
                &s,
                Command::Hire {
                    employee: e("E-9"),
                    name: "x".into(),
                    email: "x".into(),
                    manager: Some(e("E-404")),
                    department: "d".into(),
                    title: "t".into()
                }
            ),
            Err(Unprocessable(_))
        ));
        let ok = when(
            &s,
            Command::Hire {
                employee: e("E-9"),
                name: "x".into(),
                email: "x".into(),
                manager: Some(e("E-1")),
                department: "d".into(),
                title: "t".into(),
            },
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn a_departure_disables_revokes_and_plans_the_handover_in_one_decision() {
        let s = team();
        let events = when(
            &s,
            Command::Depart {
                employee: e("E-2"),
                effective_at: Timestamp(1_000),
                reason: "resigned".into(),
                successors: [(c("C-2"), e("E-3"))].into(),
                default_successor: None,
            },
        )
        .unwrap();
        let names: Vec<&str> = events.iter().map(EventKind::name).collect();
        assert_eq!(
            names,
            [
                "employee_departed",
                "account_disabled",
                "role_revoked",
                "permission_revoked",
                "handover_planned"
            ]
        );
        let EventKind::HandoverPlanned {
            assignments,
            checklist,
            ..
        } = &events[4]
        else {
            panic!()
        };
        let plan: Vec<(Resource, EmployeeId)> = assignments
            .iter()
            .map(|a| (a.resource.clone(), a.successor.clone()))
            .collect();
        assert_eq!(
            plan,
            vec![
                (Resource::Customer(c("C-1")), e("E-1")),
                (Resource::Customer(c("C-2")), e("E-3")),
                (Resource::Deal(d("D-1")), e("E-1")),
            ]
        );
        assert_eq!(checklist.len(), 4);
        let after = then_apply(s, &events);
        let leaver = after.directory.get(&e("E-2")).unwrap();
        assert!(!leaver.is_active() && leaver.roles.is_empty() && leaver.permissions.is_empty());
    }

    #[test]
    fn departing_an_unknown_employee_is_not_found_and_departing_twice_a_conflict() {
        let s = team();
        assert!(matches!(when(&s, depart("E-404")), Err(NotFound(_))));
        let events = when(&s, depart("E-2")).unwrap();
        let s = then_apply(s, &events);
        assert!(matches!(when(&s, depart("E-2")), Err(Conflict(_))));
    }

    #[test]
    fn a_successor_who_left_or_does_not_exist_is_unprocessable() {
        let s = team();
        let s = then_apply(s.clone(), &when(&s, depart("E-3")).unwrap());
        for who in ["E-3", "E-404"] {
            let r = when(
                &s,
                Command::Depart {
                    employee: e("E-2"),
                    effective_at: Timestamp(1_000),
                    reason: "resigned".into(),
                    successors: [(c("C-1"), e(who))].into(),
                    default_successor: None,
                },
            );
            assert!(matches!(r, Err(Unprocessable(_))), "{who}: {r:?}");
        }
        // The default successor is the manager; a manager who has left cannot take over.
        let s = then_apply(
            s.clone(),
            &when(
                &s,
                Command::Depart {
                    employee: e("E-1"),
                    effective_at: Timestamp(1_000),
                    reason: "x".into(),
                    successors: BTreeMap::new(),
                    default_successor: Some(e("E-2")),
                },
            )
            .unwrap(),
        );
        assert!(matches!(when(&s, depart("E-2")), Err(Unprocessable(_))));
    }

    #[test]
    fn naming_a_successor_for_a_customer_the_leaver_does_not_hold_is_unprocessable() {
        let r = when(
            &team(),
            Command::Depart {
                employee: e("E-2"),
                effective_at: Timestamp(1_000),
                reason: "resigned".into(),
                successors: [(c("C-3"), e("E-1"))].into(),
                default_successor: None,
            },
        );
        assert!(matches!(r, Err(Unprocessable(m)) if m.contains("C-3")));
    }

    #[test]
    fn transfers_complete_their_checklist_items_and_the_last_item_completes_the_handover() {
        let s = team();
        let s = then_apply(s.clone(), &when(&s, depart("E-2")).unwrap());
        // Not the leaver's: a conflict.
        let r = when(
            &s,
            Command::Transfer {
                leaver: e("E-2"),
                transfers: vec![Transfer {
                    resource: Resource::Customer(c("C-3")),
                    to: None,
                }],
            },
        );
        assert!(matches!(r, Err(Conflict(_))));
        // Completing "customers transferred" too early: a conflict.
        let r = when(
            &s,
            Command::CompleteItem {
                leaver: e("E-2"),
                item: ChecklistItem::CustomersTransferred,
            },
        );
        assert!(matches!(r, Err(Conflict(m)) if m.contains("2 planned customers")));

        let events = when(
            &s,
            Command::Transfer {
                leaver: e("E-2"),
                transfers: vec![
                    Transfer {
                        resource: Resource::Customer(c("C-1")),
                        to: None,
                    },
                    Transfer {
                        resource: Resource::Customer(c("C-2")),
                        to: Some(e("E-3")),
                    },
                ],
            },
        )
        .unwrap();
        let names: Vec<&str> = events.iter().map(EventKind::name).collect();
        assert_eq!(
            names,
            [
                "ownership_transferred",
                "ownership_transferred",
                "handover_item_completed"
            ]
        );
        let s = then_apply(s, &events);
        assert_eq!(
            s.ownership.owner_of(&Resource::Customer(c("C-2"))),
            Some(&e("E-3"))
        );

        let events = when(
            &s,
            Command::Transfer {
                leaver: e("E-2"),
                transfers: vec![Transfer {
                    resource: Resource::Deal(d("D-1")),
                    to: None,
                }],
            },
        )
        .unwrap();
        assert_eq!(
            events.iter().map(EventKind::name).collect::<Vec<_>>(),
            ["ownership_transferred", "handover_item_completed"]
        );
        let s = then_apply(s, &events);
        let s = then_apply(
            s.clone(),
            &when(
                &s,
                Command::CompleteItem {
                    leaver: e("E-2"),
                    item: ChecklistItem::ExportDelivered,
                },
            )
            .unwrap(),
        );
        let r = when(
            &s,
            Command::CompleteItem {
                leaver: e("E-2"),
                item: ChecklistItem::ExportDelivered,
            },
        );
        assert!(matches!(r, Err(Conflict(_))), "already complete");
        let last = when(
            &s,
            Command::CompleteItem {
                leaver: e("E-2"),
                item: ChecklistItem::AccessReviewed,
            },
        )
        .unwrap();
        assert_eq!(
            last.iter().map(EventKind::name).collect::<Vec<_>>(),
            ["handover_item_completed", "handover_completed"]
        );
        let s = then_apply(s, &last);
        assert!(s.handovers.plan(&e("E-2")).unwrap().completed);
    }

    #[test]
    fn reenabling_needs_a_disabled_account_and_a_deleted_account_stays_deleted() {
        let s = team();
        assert!(matches!(
            when(
                &s,
                Command::Reenable {
                    employee: e("E-2"),
                    reason: "x".into()
                }
            ),
            Err(Conflict(_))
        ));
        let s = then_apply(s.clone(), &when(&s, depart("E-2")).unwrap());
        let back = when(
            &s,
            Command::Reenable {
                employee: e("E-2"),
                reason: "rehired".into(),
            },
        )
        .unwrap();
        let s2 = then_apply(s.clone(), &back);
        assert!(s2.directory.get(&e("E-2")).unwrap().is_active());
        let s = then_apply(
            s.clone(),
            &when(
                &s,
                Command::Delete {
                    employee: e("E-2"),
                    reason: "gdpr".into(),
                },
            )
            .unwrap(),
        );
        assert!(matches!(
            when(
                &s,
                Command::Delete {
                    employee: e("E-2"),
                    reason: "x".into()
                }
            ),
            Err(Conflict(_))
        ));
        assert!(matches!(
            when(
                &s,
                Command::Reenable {
                    employee: e("E-2"),
                    reason: "x".into()
                }
            ),
            Err(Conflict(_))
        ));
        assert!(matches!(
            when(
                &s,
                Command::Delete {
                    employee: e("E-404"),
                    reason: "x".into()
                }
            ),
            Err(NotFound(_))
        ));
    }

    #[test]
    fn a_resignation_needs_a_sane_last_day_and_happens_once() {
        let s = team();
        let bad = Command::SubmitResignation {
            employee: e("E-2"),
            notice_date: Date(100),
            last_day: Date(99),
            reason: "x".into(),
        };
        assert!(matches!(when(&s, bad), Err(Unprocessable(_))));
        let ok = Command::SubmitResignation {
            employee: e("E-2"),
            notice_date: Date(100),
            last_day: Date(130),
            reason: "x".into(),
        };
        let s = then_apply(s.clone(), &when(&s, ok.clone()).unwrap());
        assert!(matches!(when(&s, ok), Err(Conflict(_))));
    }

    #[test]
    fn roles_and_permissions_cannot_be_granted_twice_or_revoked_when_absent() {
        let s = team();
        let role = RoleName::parse("sales-rep").unwrap();
        assert!(matches!(
            when(
                &s,
                Command::GrantRole {
                    employee: e("E-2"),
                    role: role.clone()
                }
            ),
            Err(Conflict(_))
        ));
        assert!(matches!(
            when(
                &s,
                Command::RevokeRole {
                    employee: e("E-3"),
                    role: role.clone(),
                    reason: "x".into()
                }
            ),
            Err(Conflict(_))
        ));
        assert!(
            when(
                &s,
                Command::GrantRole {
                    employee: e("E-3"),
                    role
                }
            )
            .is_ok()
        );
        assert!(matches!(
            when(
                &s,
                Command::RevokePermission {
                    employee: e("E-3"),
                    module: Module::Export
                }
            ),
            Err(Conflict(_))
        ));
        assert!(matches!(
            when(
                &s,
                Command::GrantPermission {
                    employee: e("E-3"),
                    module: Module::Export,
                    level: Level::None
                }
            ),
            Err(Unprocessable(_))
        ));
    }

    #[test]
    fn an_update_records_only_what_changed() {
        let s = team();
        let same = Command::UpdateEmployee {
            employee: e("E-2"),
            name: Some("Name of E-2".into()),
            email: None,
            manager: Some(Some(e("E-1"))),
            department: None,
            title: None,
        };
        assert_eq!(when(&s, same).unwrap(), vec![]);
        let moved = Command::UpdateEmployee {
            employee: e("E-2"),
            name: None,
            email: None,
            manager: Some(Some(e("E-3"))),
            department: None,
            title: Some("Lead".into()),
        };
        let ev = when(&s, moved).unwrap();
        assert!(
            matches!(&ev[..], [EventKind::EmployeeUpdated { manager: Some(Some(m)), title: Some(t), name: None, .. }] if m == &e("E-3") && t == "Lead")
        );
    }

    #[test]
    fn a_role_definition_is_recorded_once_and_names_each_module_once() {
        let role = RoleName::parse("auditor").unwrap();
        let define = |permissions: Vec<(Module, Level)>| Command::DefineRole {
            role: role.clone(),
            permissions,
        };
        let s = given(vec![]);
        let events = when(&s, define(vec![(Module::Reports, Level::Read)])).unwrap();
        assert_eq!(
            events,
            vec![EventKind::RoleDefined {
                role: role.clone(),
                permissions: vec![(Module::Reports, Level::Read)]
            }]
        );
        let s = then_apply(s, &events);
        // The same definition again: nothing to record.
        assert_eq!(
            when(&s, define(vec![(Module::Reports, Level::Read)])).unwrap(),
            vec![]
        );
        assert!(matches!(
            when(
                &s,
                define(vec![
                    (Module::Export, Level::Read),
                    (Module::Export, Level::Admin)
                ])
            ),
            Err(Unprocessable(_))
        ));
        assert_eq!(
            when(&s, define(vec![(Module::Reports, Level::Write)]))
                .unwrap()
                .len(),
            1
        );
    }
}
