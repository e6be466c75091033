//! Each leaver's handover: the plan, what has been transferred, the checklist.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proto_types::Event;
use proto_types::event::{ChecklistItem, EventKind, Resource};
use proto_types::ids::EmployeeId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub leaver: EmployeeId,
    /// Planned successor of each resource.
    pub assignments: BTreeMap<Resource, EmployeeId>,
    /// Resources moved away from the leaver since the plan (to whoever).
    pub transferred: BTreeSet<Resource>,
    /// Each checklist item and whether it is done.
    pub checklist: BTreeMap<ChecklistItem, bool>,
    pub completed: bool,
}

impl Plan {
    /// Planned resources not yet transferred.
    pub fn remaining(&self) -> impl Iterator<Item = (&Resource, &EmployeeId)> {
        self.assignments
            .iter()
            .filter(|(r, _)| !self.transferred.contains(*r))
    }

    pub fn remaining_customers(&self) -> usize {
        self.remaining()
            .filter(|(r, _)| matches!(r, Resource::Customer(_)))
            .count()
    }

    pub fn remaining_deals(&self) -> usize {
        self.remaining()
            .filter(|(r, _)| matches!(r, Resource::Deal(_)))
            .count()
    }

    pub fn open_items(&self) -> impl Iterator<Item = ChecklistItem> + '_ {
        self.checklist
            .iter()
            .filter(|(_, done)| !**done)
            .map(|(i, _)| *i)
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Handovers {
    plans: HashMap<EmployeeId, Plan>,
}

impl Handovers {
    /// The latest plan for `leaver`.
    pub fn plan(&self, leaver: &EmployeeId) -> Option<&Plan> {
        self.plans.get(leaver)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Plan> {
        self.plans.values()
    }

    pub fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::HandoverPlanned {
                leaver,
                assignments,
                checklist,
            } => {
                self.plans.insert(
                    leaver.clone(),
                    Plan {
                        leaver: leaver.clone(),
                        assignments: assignments
                            .iter()
                            .map(|a| (a.resource.clone(), a.successor.clone()))
                            .collect(),
                        transferred: BTreeSet::new(),
                        checklist: checklist.iter().map(|i| (*i, false)).collect(),
                        completed: false,
                    },
                );
            }
            EventKind::OwnershipTransferred { resource, from, .. } => {
                if let Some(p) = self.plans.get_mut(from)
                    && p.assignments.contains_key(resource)
                {
                    p.transferred.insert(resource.clone());
                }
            }
            EventKind::HandoverItemCompleted { leaver, item } => {
                if let Some(p) = self.plans.get_mut(leaver) {
                    p.checklist.insert(*item, true);
                }
            }
            EventKind::HandoverCompleted { leaver } => {
                if let Some(p) = self.plans.get_mut(leaver) {
                    p.completed = true;
                }
            }
            _ => {}
        }
    }
}
