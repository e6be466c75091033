//! Anomalies that one event shows against the state before it, flagged the moment it is
//! recorded. (Rules that need history — volumes, habits — belong to the anomaly reports.)

use proto_types::{Actor, Event, Timestamp};

use crate::directory::Directory;

/// An immediate anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// An action by an account that was disabled (or deleted, or whose holder has departed).
    ActivityAfterDisable {
        /// Microseconds from the disable (or departure) to the action; negative when the action
        /// is dated before it but reported after.
        gap_micros: i64,
        disabled_at: Timestamp,
    },
    /// An action by an employee id Handover has never seen hired.
    UnknownActor,
}

impl Flag {
    pub fn rule(&self) -> &'static str {
        match self {
            Flag::ActivityAfterDisable { .. } => "activity_after_disable",
            Flag::UnknownActor => "unknown_actor",
        }
    }
    pub fn severity(&self) -> &'static str {
        match self {
            Flag::ActivityAfterDisable { .. } => "critical",
            Flag::UnknownActor => "high",
        }
    }
}

/// The flag `event` raises against `directory` as it stands before the event, if any.
/// Only an employee's own actions are judged; system actors (HR, the IdP) are not.
pub fn immediate(directory: &Directory, event: &Event) -> Option<Flag> {
    let Actor::Employee(id) = &event.actor else {
        return None;
    };
    let Some(e) = directory.get(id) else {
        return Some(Flag::UnknownActor);
    };
    let since = e.inactive_since()?;
    Some(Flag::ActivityAfterDisable {
        gap_micros: event.occurred_at.0 - since.0,
        disabled_at: since,
    })
}
