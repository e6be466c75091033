//! The idempotency index: client event id → the seq it was first appended as.
//!
//! The key of an event is [`idempotency_key`]: its `occurred_at` in the high 64 bits and a digest
//! of its id in the low 64. A retry carries both unchanged, and since clients report events
//! roughly in time order, new keys are nearly always above every key indexed so far.
//!
//! Two tables hold the index:
//! - `idempotency_runs`: one row per commit, keyed by its smallest key, holding the commit's new
//!   keys *that lie above every key indexed before it*, sorted and packed (`key u128 LE ‖ seq u64
//!   LE`, 24 bytes each). Runs are therefore disjoint and ascending: the only run that can hold a
//!   key is the one with the greatest smallest key at or below it. One insert per commit instead
//!   of one per event is what keeps appends near the speed of bare redb (see `handover bench`).
//! - `idempotency`: the keys that arrived out of order (at or below the maximum indexed when
//!   their commit began), one row each.
//!
//! A key above the maximum indexed cannot be in either table, so most appends look nothing up.

use std::collections::HashMap;

use proto_types::Timestamp;
use proto_types::ids::EventId;
use redb::{ReadableTable, TableDefinition};

/// See the module doc. Two different ids at the same microsecond share a key with probability
/// 2^-64; `LogStore::append_group` detects that case and then indexes only the first.
pub type IdempotencyKey = u128;

pub(crate) const OUT_OF_ORDER: TableDefinition<IdempotencyKey, u64> =
    TableDefinition::new("idempotency");
pub(crate) const RUNS: TableDefinition<IdempotencyKey, &[u8]> =
    TableDefinition::new("idempotency_runs");

const CONTEXT: &str = "handover 2026-12-04 idempotency key v1";
const PAIR: usize = 24;

/// The idempotency key of an event.
pub fn idempotency_key(occurred_at: Timestamp, id: &EventId) -> IdempotencyKey {
    // Flipping the sign bit makes the two's-complement order the unsigned order.
    let time = (occurred_at.0 as u64) ^ (1 << 63);
    let digest = blake3::derive_key(CONTEXT, id.as_str().as_bytes());
    let low = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    (u128::from(time) << 64) | u128::from(low)
}

fn pair_at(run: &[u8], i: usize) -> (IdempotencyKey, u64) {
    let p = &run[i * PAIR..(i + 1) * PAIR];
    (
        u128::from_le_bytes(p[..16].try_into().expect("16 bytes")),
        u64::from_le_bytes(p[16..].try_into().expect("8 bytes")),
    )
}

fn search_run(run: &[u8], key: IdempotencyKey) -> Option<u64> {
    let (mut lo, mut hi) = (0, run.len() / PAIR);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (k, seq) = pair_at(run, mid);
        match k.cmp(&key) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(seq),
        }
    }
    None
}

/// The greatest key in the index.
pub(crate) fn max_key(
    out_of_order: &impl ReadableTable<IdempotencyKey, u64>,
    runs: &impl ReadableTable<IdempotencyKey, &'static [u8]>,
) -> Result<Option<IdempotencyKey>, redb::StorageError> {
    let a = out_of_order.last()?.map(|(k, _)| k.value());
    let b = match runs.last()? {
        Some((_, run)) => {
            let run = run.value();
            (run.len() >= PAIR).then(|| pair_at(run, run.len() / PAIR - 1).0)
        }
        None => None,
    };
    Ok(a.max(b))
}

/// The index's view during one write transaction (one commit group).
pub(crate) struct GroupIndex {
    /// The maximum indexed when the group began: keys above it go to a new run.
    start_max: Option<IdempotencyKey>,
    /// The maximum including this group's new keys.
    max: Option<IdempotencyKey>,
    new_keys: Vec<(IdempotencyKey, u64)>,
    /// `new_keys[..pending.len()]` as a map, built only when a lookup needs it.
    pending: HashMap<IdempotencyKey, u64>,
}

impl GroupIndex {
    pub(crate) fn new(max: Option<IdempotencyKey>) -> Self {
        Self {
            start_max: max,
            max,
            new_keys: Vec::new(),
            pending: HashMap::new(),
        }
    }

    /// The seq `key` was appended as, if it was: in the tables, or earlier in this group.
    pub(crate) fn lookup(
        &mut self,
        out_of_order: &impl ReadableTable<IdempotencyKey, u64>,
        runs: &impl ReadableTable<IdempotencyKey, &'static [u8]>,
        key: IdempotencyKey,
    ) -> Result<Option<u64>, redb::StorageError> {
        if self.max.is_none_or(|max| key > max) {
            return Ok(None);
        }
        if let Some(seq) = out_of_order.get(key)? {
            return Ok(Some(seq.value()));
        }
        if let Some(entry) = runs.range(..=key)?.next_back() {
            let (_, run) = entry?;
            if let Some(seq) = search_run(run.value(), key) {
                return Ok(Some(seq));
            }
        }
        self.pending
            .extend(self.new_keys[self.pending.len()..].iter().copied());
        Ok(self.pending.get(&key).copied())
    }

    /// Notes a key appended in this group.
    pub(crate) fn record(&mut self, key: IdempotencyKey, seq: u64) {
        self.new_keys.push((key, seq));
        self.max = self.max.max(Some(key));
    }

    /// Writes the group's keys; returns the new maximum.
    pub(crate) fn write(
        mut self,
        out_of_order: &mut redb::Table<IdempotencyKey, u64>,
        runs: &mut redb::Table<IdempotencyKey, &[u8]>,
    ) -> Result<Option<IdempotencyKey>, redb::StorageError> {
        self.new_keys.sort_unstable();
        let split = self
            .new_keys
            .partition_point(|(k, _)| self.start_max.is_some_and(|max| *k <= max));
        let (late, run) = self.new_keys.split_at(split);
        for (key, seq) in late {
            out_of_order.insert(key, seq)?;
        }
        if let Some((first, _)) = run.first() {
            let mut packed = Vec::with_capacity(run.len() * PAIR);
            for (key, seq) in run {
                packed.extend_from_slice(&key.to_le_bytes());
                packed.extend_from_slice(&seq.to_le_bytes());
            }
            runs.insert(first, packed.as_slice())?;
        }
        Ok(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_time_first_including_before_1970() {
        let id = EventId::parse("x").unwrap();
        let k = |t| idempotency_key(Timestamp(t), &id);
        assert!(k(-5) < k(0) && k(0) < k(1) && k(1) < k(i64::MAX) && k(i64::MIN) < k(-5));
    }

    #[test]
    fn a_run_is_binary_searched() {
        let mut run = Vec::new();
        for i in 0..100u128 {
            run.extend_from_slice(&(i * 3).to_le_bytes());
            run.extend_from_slice(&(1000 + i as u64).to_le_bytes());
        }
        assert_eq!(search_run(&run, 0), Some(1000));
        assert_eq!(search_run(&run, 297), Some(1099));
        assert_eq!(search_run(&run, 150), Some(1050));
        assert_eq!(search_run(&run, 151), None);
        assert_eq!(search_run(&run, 1000), None);
    }
}
