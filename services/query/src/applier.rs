//! The applier: checks each entry against the one before it, then files it — entry, indexes,
//! projections, read-model documents and the new position in one transaction per batch.
//!
//! It is fed by a source (JetStream, or the ledger in-process) and never decides what to fetch:
//! it answers `Gap` when the next entry it is given lies past the one it needs, and the source
//! backfills. On a break (an entry that does not verify) it applies the good entries before it,
//! records the break durably, and applies nothing after it ever again: the store never holds an
//! entry past a break, so nothing past it can be served as good.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use projections::State;
use projections::anomaly::{Detector, RULES, Thresholds};
use proto_types::chain::{BreakKind, ChainVerifier, Hash32};
use proto_types::event::{EventKind, Resource};
use proto_types::ids::{CustomerId, EmployeeId};
use proto_types::{EntryRef, Event};
use serde_json::json;
use tokio::sync::watch;

use crate::index;
use crate::metrics::Metrics;
use crate::store::{Batch, IndexName, IntegrityBreak, Progress, QueryStore, now_micros};
use crate::views;

/// What the read side knows of itself and of the ledger, as it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The seq of the next entry to apply (the number applied).
    pub next_seq: u64,
    /// The hash of the last applied entry.
    pub head: Hash32,
    /// The ledger's next seq as far as the read side has seen (messages, backfills, polls).
    pub ledger_next: u64,
    pub broken: Option<IntegrityBreak>,
}

impl Status {
    /// Entries the ledger has committed that are not applied here yet.
    pub fn lag(&self) -> u64 {
        self.ledger_next.saturating_sub(self.next_seq)
    }
}

/// The result of offering entries to the applier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All offered entries at or past the position were applied (`applied` of them).
    Applied { applied: usize },
    /// The entries before `found` are missing: fetch `expected..found` and offer them first.
    /// (Entries before the gap were applied.)
    Gap { expected: u64, found: u64 },
    /// The chain is broken; nothing at or past `seq` will be applied.
    Broken(IntegrityBreak),
}

/// The indexes whose names get ids, in the order of `IndexName`'s variants.
const NAMESPACES: [IndexName; 4] = [
    IndexName::Actor,
    IndexName::Employee,
    IndexName::Customer,
    IndexName::Kind,
];

pub struct Applier {
    store: QueryStore,
    state: State,
    verifier: ChainVerifier,
    broken: Option<IntegrityBreak>,
    /// The seq of each leaver's latest handover plan.
    planned: HashMap<EmployeeId, u64>,
    status: watch::Sender<Status>,
    metrics: Arc<Metrics>,
    /// Batches written since the last flush.
    unflushed: bool,
    /// The anomaly rules' memory.
    detector: Detector,
    /// Every name filed under so far, by index (actor, employee, customer, kind), and its id.
    names: [HashMap<String, u32>; 4],
    /// The next name id.
    next_name: u32,
}

/// Why the applier cannot go on.
#[derive(Debug, thiserror::Error)]
#[error("query store: {0}")]
pub struct StorageError(#[from] pub redb::Error);

impl Applier {
    /// Rebuilds the projections from the store's own entries — verifying them again on the way,
    /// so that an altered query store is caught too — and resumes after the last one.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(
        store: QueryStore,
        progress: Progress,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StorageError> {
        Self::open_with(store, progress, metrics, Thresholds::default())
    }

    /// [`Applier::open`] with the anomaly rules' thresholds.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open_with(
        store: QueryStore,
        progress: Progress,
        metrics: Arc<Metrics>,
        thresholds: Thresholds,
    ) -> Result<Self, StorageError> {
        let mut state = State::default();
        let mut detector = Detector::new(thresholds);
        let mut planned = HashMap::new();
        let mut verifier = ChainVerifier::new();
        let mut local_break: Option<IntegrityBreak> = None;
        store.fold_entries(|seq, bytes| {
            if local_break.is_some() {
                return;
            }
            let checked = verifier
                .check(bytes)
                .map_err(|b| (b.seq, b.kind))
                .and_then(|e| {
                    Event::decode(e.payload())
                        .map(|ev| (ev, *e.hash()))
                        .map_err(|d| (seq, BreakKind::Undecodable(d.to_string())))
                });
            match checked {
                Ok((event, hash)) => {
                    note_plan(&mut planned, seq, &event);
                    // Already stored: only the rules' memory is rebuilt.
                    let _ = detector.observe(&state, seq, hash, &event);
                    state.apply(&event);
                }
                Err((seq, kind)) => local_break = Some(integrity_break(seq, &kind, "local")),
            }
        })?;
        let broken = progress.broken.or(local_break);
        if let Some(b) = &broken {
            metrics.set_broken(true);
            tracing::error!(seq = b.seq, code = %b.code, detail = %b.detail, source = %b.source,
                "the chain is broken: nothing at or past this seq is applied");
        }
        let status = Status {
            next_seq: verifier.next_seq(),
            head: *verifier.head_hash(),
            ledger_next: verifier.next_seq(),
            broken: broken.clone(),
        };
        metrics.set_position(status.next_seq, status.ledger_next);
        let (status, _) = watch::channel(status);
        let mut names: [HashMap<String, u32>; 4] = Default::default();
        let mut next_name = 0;
        for (key, id) in store.names()? {
            next_name = next_name.max(id + 1);
            for (i, index) in NAMESPACES.iter().enumerate() {
                if let Some(name) = key.strip_prefix(index.prefix()) {
                    names[i].insert(name.to_string(), id);
                }
            }
        }
        Ok(Applier {
            store,
            state,
            verifier,
            broken,
            planned,
            status,
            metrics,
            unflushed: false,
            detector,
            names,
            next_name,
        })
    }

    /// Makes everything applied so far durable (a no-op when nothing is pending).
    ///
    /// # Errors
    /// Storage errors.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        if self.unflushed {
            self.store.flush()?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// The seq the next entry must have.
    pub fn next_seq(&self) -> u64 {
        self.verifier.next_seq()
    }

    pub fn broken(&self) -> Option<&IntegrityBreak> {
        self.broken.as_ref()
    }

    pub fn store(&self) -> &QueryStore {
        &self.store
    }

    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Records that the ledger has committed at least up to `next` (exclusive).
    pub fn saw_ledger_head(&self, next: u64) {
        let s = self.status.borrow().clone();
        if next > s.ledger_next {
            self.metrics.set_position(s.next_seq, next);
            self.status.send_modify(|s| s.ledger_next = next);
        }
    }

    /// Offers `entries` (ascending seqs, as `(seq, stored bytes)`) from `source`. Entries below
    /// the position are skipped (redeliveries); see [`Outcome`] for the rest. What is applied is
    /// committed and visible at once, and durable after the next [`Applier::flush`].
    ///
    /// # Errors
    /// Storage errors; the applier must then not be used again.
    pub fn apply<B: AsRef<[u8]>>(
        &mut self,
        entries: &[(u64, B)],
        source: &str,
    ) -> Result<Outcome, StorageError> {
        if let Some(b) = &self.broken {
            return Ok(Outcome::Broken(b.clone()));
        }
        let mut verifier = self.verifier.clone();
        let mut batch = Batch {
            entries: Vec::with_capacity(entries.len()),
            by_time: Vec::with_capacity(entries.len()),
            ..Batch::default()
        };
        let mut gap = None;
        // Each touched employee with the seq of the last event that touched them.
        let mut touched_employees: BTreeMap<EmployeeId, u64> = BTreeMap::new();
        let mut touched_handovers: BTreeSet<EmployeeId> = BTreeSet::new();
        let mut touched_customers: BTreeSet<CustomerId> = BTreeSet::new();
        for (seq, bytes) in entries {
            let bytes = bytes.as_ref();
            let next = verifier.next_seq();
            if *seq < next {
                continue;
            }
            if *seq > next {
                gap = Some(Outcome::Gap {
                    expected: next,
                    found: *seq,
                });
                break;
            }
            let mut trial = verifier.clone();
            let checked = trial
                .check(bytes)
                .map_err(|b| b.kind)
                .and_then(|e| verified_event(&e));
            let (event, hash) = match checked {
                Ok(ok) => ok,
                Err(kind) => {
                    batch.broken = Some(integrity_break(next, &kind, source));
                    break;
                }
            };
            verifier = trial;
            file(
                &mut self.names,
                &mut self.next_name,
                &index::keys(&self.state, &event),
                *seq,
                &mut batch,
            );
            match ownership_change(&self.state, *seq, &hash, &event) {
                Some((Resource::Customer(c), s, doc)) => batch.owners.push((c.to_string(), s, doc)),
                Some((Resource::Deal(d), s, doc)) => {
                    batch.deal_owners.push((d.to_string(), s, doc))
                }
                None => {}
            }
            note_plan(&mut self.planned, *seq, &event);
            for a in self.detector.observe(&self.state, *seq, hash, &event) {
                self.metrics.anomaly(a.rule, a.severity.name());
                let rule = RULES.iter().position(|r| *r == a.rule).unwrap_or(0) as u8;
                let doc = serde_json::to_vec(&views::anomaly(&a)).expect("json");
                batch
                    .anomalies
                    .push(((a.employee.to_string(), a.at.0, *seq, rule), doc));
            }
            touched(&event, *seq, &mut touched_employees, &mut touched_handovers);
            if let EventKind::RoleDefined { role, .. } = &event.kind {
                // What everyone holding the role may do has changed.
                for e in self
                    .state
                    .directory
                    .iter()
                    .filter(|e| e.roles.contains(role))
                {
                    touched_employees.insert(e.id.clone(), *seq);
                }
            }
            self.state.apply(&event);
            orphan_candidates(&self.state, &event, &mut touched_customers);
            batch.entries.push((*seq, bytes));
        }
        let last = verifier.next_seq().saturating_sub(1);
        for (id, seq) in &touched_employees {
            if let Some(e) = self.state.directory.get(id) {
                let doc = views::employee(&self.state, e, *seq);
                batch
                    .employees
                    .insert(id.to_string(), serde_json::to_vec(&doc).expect("json"));
            }
        }
        for id in &touched_handovers {
            if let Some(plan) = self.state.handovers.plan(id) {
                let planned = self.planned.get(id).copied().unwrap_or(last);
                let doc = views::handover(plan, planned);
                batch
                    .handovers
                    .insert(id.to_string(), serde_json::to_vec(&doc).expect("json"));
            }
        }
        for c in &touched_customers {
            let doc = self
                .state
                .ownership
                .orphan(&self.state.directory, c)
                .map(|o| serde_json::to_vec(&views::orphan(&o)).expect("json"));
            batch.orphans.insert(c.to_string(), doc);
        }
        let applied = batch.entries.len();
        if applied > 0 || batch.broken.is_some() {
            self.store
                .write(&mut batch, verifier.next_seq(), verifier.head_hash())?;
            self.unflushed = true;
        }
        if batch.broken.is_some() {
            self.flush()?;
        }
        self.verifier = verifier;
        self.metrics.applied(applied as u64);
        let next = self.verifier.next_seq();
        let head = *self.verifier.head_hash();
        if let Some(b) = &batch.broken {
            tracing::error!(seq = b.seq, code = %b.code, detail = %b.detail, source = %b.source,
                "the chain is broken: applying stops here");
            self.metrics.set_broken(true);
            self.broken = batch.broken.clone();
        }
        // Metrics first: whoever the status wakes sees them current.
        let mut s = self.status.borrow().clone();
        s.next_seq = next;
        s.head = head;
        s.ledger_next = s.ledger_next.max(next);
        s.broken = self.broken.clone();
        self.metrics.set_position(s.next_seq, s.ledger_next);
        self.status.send_replace(s);
        Ok(match (batch.broken, gap) {
            (Some(b), _) => Outcome::Broken(b),
            (None, Some(g)) => g,
            (None, None) => Outcome::Applied { applied },
        })
    }
}

impl Drop for Applier {
    /// A clean stop keeps what was applied.
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "the query store could not be flushed at stop");
        }
    }
}

/// Files one entry's index rows into `batch`, giving names first seen an id (recorded in the
/// batch's `new_names`).
fn file(
    names: &mut [HashMap<String, u32>; 4],
    next_name: &mut u32,
    keys: &index::Keys<'_>,
    seq: u64,
    batch: &mut Batch<'_>,
) {
    let mut row = |index: IndexName, name: &str| {
        let map = &mut names[index as usize];
        let id = match map.get(name) {
            Some(id) => *id,
            None => {
                let id = *next_name;
                *next_name += 1;
                map.insert(name.to_string(), id);
                batch
                    .new_names
                    .push((format!("{}{name}", index.prefix()), id));
                id
            }
        };
        batch.named[index as usize].push(((id, keys.at, seq), ()));
    };
    // An employee's own actions are found through `by_employee`; only system actors (HR,
    // identity providers, the audited readers) need rows of their own.
    if keys.actor.starts_with("system:") {
        row(IndexName::Actor, &keys.actor);
    }
    row(IndexName::Kind, keys.kind);
    for e in &keys.employees {
        row(IndexName::Employee, e);
    }
    for c in &keys.customers {
        row(IndexName::Customer, c);
    }
    batch.by_time.push(((keys.at, seq), ()));
}

fn verified_event(e: &EntryRef<'_>) -> Result<(Event, Hash32), BreakKind> {
    Event::decode(e.payload())
        .map(|ev| (ev, *e.hash()))
        .map_err(|d| BreakKind::Undecodable(d.to_string()))
}

fn integrity_break(seq: u64, kind: &BreakKind, source: &str) -> IntegrityBreak {
    IntegrityBreak {
        seq,
        code: kind.code().to_string(),
        detail: kind.to_string(),
        source: source.to_string(),
        detected_at: now_micros(),
    }
}

fn note_plan(planned: &mut HashMap<EmployeeId, u64>, seq: u64, event: &Event) {
    if let EventKind::HandoverPlanned { leaver, .. } = &event.kind {
        planned.insert(leaver.clone(), seq);
    }
}

/// The employees and handovers whose documents `event` changes.
fn touched(
    event: &Event,
    seq: u64,
    employees: &mut BTreeMap<EmployeeId, u64>,
    handovers: &mut BTreeSet<EmployeeId>,
) {
    if let Some(subject) = projections::directory::subject(&event.kind) {
        employees.insert(subject.clone(), seq);
    }
    match &event.kind {
        EventKind::HandoverPlanned { leaver, .. } => {
            employees.insert(leaver.clone(), seq);
            handovers.insert(leaver.clone());
        }
        EventKind::OwnershipTransferred { from, .. } => {
            handovers.insert(from.clone());
        }
        EventKind::HandoverItemCompleted { leaver, .. }
        | EventKind::HandoverCompleted { leaver } => {
            handovers.insert(leaver.clone());
        }
        _ => {}
    }
}

/// The customers whose orphan status `event` may have changed (judged after it is applied).
fn orphan_candidates(state: &State, event: &Event, out: &mut BTreeSet<CustomerId>) {
    match &event.kind {
        EventKind::EmployeeHired { employee, .. }
        | EventKind::EmployeeDeparted { employee, .. }
        | EventKind::AccountDisabled { employee, .. }
        | EventKind::AccountReenabled { employee, .. }
        | EventKind::AccountDeleted { employee, .. } => {
            for r in state.ownership.held_by(employee) {
                if let Resource::Customer(c) = r {
                    out.insert(c.clone());
                }
            }
        }
        EventKind::CustomerCreated { customer, .. }
        | EventKind::CustomerDeleted { customer }
        | EventKind::OwnershipTransferred {
            resource: Resource::Customer(customer),
            ..
        } => {
            out.insert(customer.clone());
        }
        _ => {}
    }
}

/// A change of a customer's or deal's owner, as `(resource, seq, document)`.
fn ownership_change(
    state: &State,
    seq: u64,
    hash: &Hash32,
    event: &Event,
) -> Option<(Resource, u64, Vec<u8>)> {
    let (resource, owner, previous, reason) = match &event.kind {
        EventKind::CustomerCreated {
            customer, owner, ..
        } => (
            Resource::Customer(customer.clone()),
            Some(owner.as_str()),
            state.ownership.customer(customer).map(|c| c.owner.as_str()),
            "created".to_string(),
        ),
        EventKind::OwnershipTransferred {
            resource,
            from,
            to,
            reason,
        } => (
            resource.clone(),
            Some(to.as_str()),
            Some(from.as_str()),
            reason.clone(),
        ),
        EventKind::DealCreated { deal, owner, .. } => (
            Resource::Deal(deal.clone()),
            Some(owner.as_str()),
            state.ownership.deal(deal).map(|d| d.owner.as_str()),
            "created".to_string(),
        ),
        EventKind::DealClosed { deal, outcome, .. } => {
            let owner = state.ownership.deal(deal).map(|d| d.owner.as_str());
            (
                Resource::Deal(deal.clone()),
                owner,
                owner,
                format!("closed ({})", outcome.name()),
            )
        }
        EventKind::CustomerDeleted { customer } => (
            Resource::Customer(customer.clone()),
            None,
            state.ownership.customer(customer).map(|c| c.owner.as_str()),
            "customer deleted".to_string(),
        ),
        _ => return None,
    };
    let doc = json!({
        "seq": seq,
        "hash": hex::encode(hash),
        "at": views::time(event.occurred_at),
        "owner": owner,
        "previous": previous,
        "reason": reason,
        "kind": event.kind.name(),
        "by": index::actor_key(&event.actor),
    });
    Some((resource, seq, serde_json::to_vec(&doc).expect("json")))
}
