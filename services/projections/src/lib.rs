//! Pure folds over the log: the same events in the same order give the same state.
//!
//! # Layout
//! - [`directory`]: employees, their account status, employment (resigned, departed), roles,
//!   direct permissions, what each role grants, and the effective permissions that follow.
//! - [`ownership`]: who owns each customer and deal.
//! - [`handover`]: each leaver's handover plan and checklist.
//! - [`flags`]: anomalies that can be told from one event and the state before it
//!   (`activity_after_disable`, `unknown_actor`).
//! - [`anomaly`]: the anomaly rules (notice-period exports, volume spikes, off-hours, bulk reads of
//!   others' customers, self-transfers, late revocation, activity after disable), each with a
//!   severity, an explanation and its evidence.
//! - [`State`]: all of the above, folded together.
//!
//! **Architecture Invariant:** no I/O, no clock, no randomness. `apply` never fails: the log is
//! history, and history that a command would have refused (an action by an unknown or disabled
//! account) is folded as it happened.

pub mod anomaly;
pub mod directory;
pub mod flags;
pub mod handover;
pub mod ownership;

use proto_types::Event;

/// Every projection the ledger decides commands against.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct State {
    pub directory: directory::Directory,
    pub ownership: ownership::Ownership,
    pub handovers: handover::Handovers,
    /// How many events have been applied.
    pub applied: u64,
}

impl State {
    /// Folds one event in.
    pub fn apply(&mut self, event: &Event) {
        self.directory.apply(event);
        self.ownership.apply(event);
        self.handovers.apply(event);
        self.applied += 1;
    }
}
