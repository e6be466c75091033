//! The query service's own redb file (`DATA/query.redb`): the entries it verified, its indexes,
//! the read-model documents, and how far it got — all written in one transaction per batch, so
//! that after a crash the indexes, the documents and `next_seq` always agree.
//!
//! Batches commit without waiting for the disk (`Durability::None`: atomic, and visible to
//! readers at once); [`QueryStore::flush`] makes everything committed so far durable. A crash
//! loses at most what was not flushed — entries, indexes and position together — and the feed
//! fetches them again. The feed acknowledges the stream only after a flush.
//!
//! Tables:
//! - `entries`: seq → entry bytes (verified before they were written);
//! - `by_time`: (occurred_at µs, seq); `by_actor` (system actors only: an employee's own actions
//!   are in `by_employee`), `by_employee`, `by_customer`, `by_kind`: (name id, occurred_at µs,
//!   seq) — the order a forensic listing is read in;
//! - `names`: `a:ACTOR`, `e:EMPLOYEE`, `c:CUSTOMER`, `k:KIND` → a u32 name id. Index keys are
//!   fixed-width: half the cost of keys that carry the strings, at the applier's rate;
//! - `employees`: id → employee document; `handovers`: leaver → handover document;
//!   `owners`: (customer, seq) and `deal_owners`: (deal, seq) → ownership change; `orphans`: customer → why nobody active owns
//!   it, and since when; `anomalies`: (employee, occurred_at, seq, rule) → the anomaly with its
//!   explanation and evidence;
//! - `meta`: `store` = `handover-query`, `format_version`, `next_seq`, `head` (hash of the last
//!   applied entry), `break` (the first entry that failed verification, once found).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ledger::OpenError;
use ledger::store::{insert_sorted, map_db_error};
use proto_types::chain::EntryRef;
use proto_types::chain::{GENESIS, Hash32};
use proto_types::{Event, Timestamp};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};
use serde::{Deserialize, Serialize};

/// The file name of the query store inside a data directory.
pub const STORE_FILE: &str = "query.redb";
pub const FORMAT_VERSION: u32 = 1;
const STORE_KIND: &[u8] = b"handover-query";

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BY_TIME: TableDefinition<(i64, u64), ()> = TableDefinition::new("by_time");
const BY_ACTOR: TableDefinition<(u32, i64, u64), ()> = TableDefinition::new("by_actor");
const BY_EMPLOYEE: TableDefinition<(u32, i64, u64), ()> = TableDefinition::new("by_employee");
const BY_CUSTOMER: TableDefinition<(u32, i64, u64), ()> = TableDefinition::new("by_customer");
const BY_KIND: TableDefinition<(u32, i64, u64), ()> = TableDefinition::new("by_kind");
const NAMES: TableDefinition<&str, u32> = TableDefinition::new("names");
const ORPHANS: TableDefinition<&str, &[u8]> = TableDefinition::new("orphans");
const DEAL_OWNERS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("deal_owners");
/// (employee, occurred_at µs, seq, rule index) → anomaly document.
const ANOMALIES: TableDefinition<(&str, i64, u64, u8), &[u8]> = TableDefinition::new("anomalies");
const EMPLOYEES: TableDefinition<&str, &[u8]> = TableDefinition::new("employees");
const HANDOVERS: TableDefinition<&str, &[u8]> = TableDefinition::new("handovers");
const OWNERS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("owners");

/// The first entry that failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityBreak {
    pub seq: u64,
    /// `hash_mismatch`, `prev_mismatch`, `payload_hash_mismatch`, `undecodable_entry`, …
    pub code: String,
    pub detail: String,
    /// Where the bad bytes came from: `nats`, `ledger` (a backfill), `local`.
    pub source: String,
    /// When the query service found it (µs since the epoch).
    pub detected_at: i64,
}

/// How far the store got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The seq the next entry must have (the number of entries applied).
    pub next_seq: u64,
    /// The hash of the last applied entry (genesis when none).
    pub head: Hash32,
    pub broken: Option<IntegrityBreak>,
}

/// Where an anomaly is filed: (employee, occurred_at µs, seq, rule index).
pub type AnomalyKey = (String, i64, u64, u8);

/// A row of `by_actor`, `by_employee`, `by_customer` or `by_kind`: (name id, occurred_at µs, seq).
pub type IndexRow = ((u32, i64, u64), ());

/// One batch of verified entries and what they changed.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    /// (seq, entry bytes), ascending.
    pub entries: Vec<(u64, &'a [u8])>,
    /// The entries' index rows, in any order: (occurred_at µs, seq) for `by_time`, and for the
    /// named indexes one list each, in the order of [`IndexName`]'s variants.
    pub by_time: Vec<((i64, u64), ())>,
    pub named: [Vec<IndexRow>; 4],
    /// Names first seen in this batch, with their new ids.
    pub new_names: Vec<(String, u32)>,
    pub employees: BTreeMap<String, Vec<u8>>,
    pub handovers: BTreeMap<String, Vec<u8>>,
    /// (customer, seq, change document).
    pub owners: Vec<(String, u64, Vec<u8>)>,
    /// (deal, seq, change document).
    pub deal_owners: Vec<(String, u64, Vec<u8>)>,
    /// Orphaned customers: the document, or `None` when it no longer is one.
    pub orphans: BTreeMap<String, Option<Vec<u8>>>,
    /// Anomalies raised, with their documents.
    pub anomalies: Vec<(AnomalyKey, Vec<u8>)>,
    /// A break found after the entries above.
    pub broken: Option<IntegrityBreak>,
}

/// Which index a listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexName {
    Actor = 0,
    Employee = 1,
    Customer = 2,
    Kind = 3,
}

impl IndexName {
    /// The namespace of this index's names in the `names` table.
    pub fn prefix(self) -> &'static str {
        match self {
            IndexName::Actor => "a:",
            IndexName::Employee => "e:",
            IndexName::Customer => "c:",
            IndexName::Kind => "k:",
        }
    }

    fn table(self) -> TableDefinition<'static, (u32, i64, u64), ()> {
        match self {
            IndexName::Actor => BY_ACTOR,
            IndexName::Employee => BY_EMPLOYEE,
            IndexName::Customer => BY_CUSTOMER,
            IndexName::Kind => BY_KIND,
        }
    }
}

#[derive(Clone)]
pub struct QueryStore {
    db: Arc<Database>,
    path: PathBuf,
}

fn storage(path: &Path) -> impl Fn(redb::Error) -> OpenError + '_ {
    move |source| OpenError::Storage {
        path: path.to_path_buf(),
        source,
    }
}

impl QueryStore {
    /// Opens the store at `path`, creating it if no file is there.
    ///
    /// # Errors
    /// [`OpenError`]: a file that is not a query store, or of a newer format, is left untouched.
    pub fn open_or_create(path: &Path) -> Result<(Self, Progress), OpenError> {
        let fail = storage(path);
        let db = if path.exists() {
            Database::open(path).map_err(|e| map_db_error(path, e))?
        } else {
            let db = Database::create(path).map_err(|e| map_db_error(path, e))?;
            let txn = db.begin_write().map_err(|e| fail(e.into()))?;
            {
                let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
                meta.insert("store", STORE_KIND)
                    .map_err(|e| fail(e.into()))?;
                meta.insert("format_version", FORMAT_VERSION.to_le_bytes().as_slice())
                    .map_err(|e| fail(e.into()))?;
            }
            create_tables(&txn).map_err(&fail)?;
            txn.commit().map_err(|e| fail(e.into()))?;
            db
        };
        let store = QueryStore {
            db: Arc::new(db),
            path: path.to_path_buf(),
        };
        let progress = store.check_meta()?;
        Ok((store, progress))
    }

    fn check_meta(&self) -> Result<Progress, OpenError> {
        let path = &self.path;
        let not_store = |why: &str| OpenError::NotAStore {
            path: path.clone(),
            why: why.to_string(),
        };
        let txn = self.db.begin_read().map_err(|e| storage(path)(e.into()))?;
        let meta = txn
            .open_table(META)
            .map_err(|_| not_store("it has no Handover meta table"))?;
        let get = |k: &str| -> Result<Option<Vec<u8>>, OpenError> {
            Ok(meta
                .get(k)
                .map_err(|e| storage(path)(e.into()))?
                .map(|v| v.value().to_vec()))
        };
        if get("store")?.as_deref() != Some(STORE_KIND) {
            return Err(not_store(
                "its meta table does not name a Handover query store",
            ));
        }
        let version = get("format_version")?
            .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| not_store("it records no format version"))?;
        if version > FORMAT_VERSION {
            return Err(OpenError::NewerFormat {
                path: path.clone(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let next_seq = get("next_seq")?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        let head = get("head")?
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            .unwrap_or(GENESIS);
        let broken = get("break")?.and_then(|v| serde_json::from_slice(&v).ok());
        Ok(Progress {
            next_seq,
            head,
            broken,
        })
    }

    /// Makes every batch written so far durable.
    ///
    /// # Errors
    /// Storage errors.
    pub fn flush(&self) -> Result<(), redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.commit()?;
        Ok(())
    }

    /// Writes a batch and the new position in one transaction (atomic, not yet durable: see
    /// [`QueryStore::flush`]). Sorts the batch's index rows.
    ///
    /// # Errors
    /// Storage errors; nothing of the batch is then written.
    pub fn write(
        &self,
        batch: &mut Batch<'_>,
        next_seq: u64,
        head: &Hash32,
    ) -> Result<(), redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut entries = txn.open_table(ENTRIES)?;
            let mut by_time = txn.open_table(BY_TIME)?;
            let mut names = txn.open_table(NAMES)?;
            for (name, id) in &batch.new_names {
                names.insert(name.as_str(), *id)?;
            }
            // Every table's new rows in key order, spliced in through a cursor: the rows that
            // fall into one gap of the table (an employee's new rows all sit after that
            // employee's older ones, the entries after every entry) are packed into leaves
            // together, with one update of the path above, instead of one descent from the root
            // and one leaf rewrite per row (see `insert_sorted`).
            insert_sorted(&mut entries, &batch.entries)?;
            batch.by_time.sort_unstable_by_key(|r| r.0);
            insert_sorted(&mut by_time, &batch.by_time)?;
            for index in [
                IndexName::Actor,
                IndexName::Employee,
                IndexName::Customer,
                IndexName::Kind,
            ] {
                let mut table = txn.open_table(index.table())?;
                let rows = &mut batch.named[index as usize];
                rows.sort_unstable_by_key(|r| r.0);
                // One name's rows at a time: a name with few new rows goes in row by row.
                for name in rows.chunk_by(|a, b| a.0.0 == b.0.0) {
                    insert_sorted(&mut table, name)?;
                }
            }
            let mut employees = txn.open_table(EMPLOYEES)?;
            for (id, doc) in &batch.employees {
                employees.insert(id.as_str(), doc.as_slice())?;
            }
            let mut handovers = txn.open_table(HANDOVERS)?;
            for (id, doc) in &batch.handovers {
                handovers.insert(id.as_str(), doc.as_slice())?;
            }
            let mut owners = txn.open_table(OWNERS)?;
            for (c, seq, doc) in &batch.owners {
                owners.insert((c.as_str(), *seq), doc.as_slice())?;
            }
            let mut deal_owners = txn.open_table(DEAL_OWNERS)?;
            for (d, seq, doc) in &batch.deal_owners {
                deal_owners.insert((d.as_str(), *seq), doc.as_slice())?;
            }
            let mut anomalies = txn.open_table(ANOMALIES)?;
            for ((e, at, seq, rule), doc) in &batch.anomalies {
                anomalies.insert((e.as_str(), *at, *seq, *rule), doc.as_slice())?;
            }
            let mut orphans = txn.open_table(ORPHANS)?;
            for (c, doc) in &batch.orphans {
                match doc {
                    Some(d) => {
                        orphans.insert(c.as_str(), d.as_slice())?;
                    }
                    None => {
                        orphans.remove(c.as_str())?;
                    }
                }
            }
            let mut meta = txn.open_table(META)?;
            meta.insert("next_seq", next_seq.to_le_bytes().as_slice())?;
            meta.insert("head", head.as_slice())?;
            if let Some(b) = &batch.broken {
                let doc = serde_json::to_vec(b).expect("a break serialises");
                meta.insert("break", doc.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Every name and its id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn names(&self) -> Result<std::collections::HashMap<String, u32>, redb::Error> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(NAMES)?;
        let mut out = std::collections::HashMap::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.insert(k.value().to_string(), v.value());
        }
        Ok(out)
    }

    /// Every applied entry in seq order (to rebuild the projections at start).
    ///
    /// # Errors
    /// Storage errors.
    pub fn fold_entries(&self, mut f: impl FnMut(u64, &[u8])) -> Result<(), redb::Error> {
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        for item in entries.iter()? {
            let (k, v) = item?;
            f(k.value(), v.value());
        }
        Ok(())
    }

    /// A consistent view for one request.
    ///
    /// # Errors
    /// Storage errors.
    pub fn snapshot(&self) -> Result<Snapshot, redb::Error> {
        Ok(Snapshot {
            txn: self.db.begin_read()?,
        })
    }
}

fn create_tables(txn: &redb::WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(ENTRIES)?;
    txn.open_table(BY_TIME)?;
    txn.open_table(BY_ACTOR)?;
    txn.open_table(BY_EMPLOYEE)?;
    txn.open_table(BY_CUSTOMER)?;
    txn.open_table(BY_KIND)?;
    txn.open_table(EMPLOYEES)?;
    txn.open_table(HANDOVERS)?;
    txn.open_table(OWNERS)?;
    txn.open_table(NAMES)?;
    txn.open_table(ORPHANS)?;
    txn.open_table(ANOMALIES)?;
    txn.open_table(DEAL_OWNERS)?;
    Ok(())
}

/// One read transaction: everything read through it reflects the same `next_seq`.
pub struct Snapshot {
    txn: ReadTransaction,
}

/// A position in a time-ordered listing: `(occurred_at µs, seq)`.
pub type Position = (i64, u64);

impl Snapshot {
    /// `(next_seq, head hash)` as of this snapshot.
    ///
    /// # Errors
    /// Storage errors.
    pub fn position(&self) -> Result<(u64, Hash32), redb::Error> {
        let meta = self.txn.open_table(META)?;
        let next = meta
            .get("next_seq")?
            .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
            .map_or(0, u64::from_le_bytes);
        let head = meta
            .get("head")?
            .and_then(|v| <[u8; 32]>::try_from(v.value()).ok())
            .unwrap_or(GENESIS);
        Ok((next, head))
    }

    /// The event of entry `seq` and the entry's hash, if it is applied and decodes (it verified
    /// when it was applied).
    ///
    /// # Errors
    /// Storage errors.
    pub fn event(&self, seq: u64) -> Result<Option<(Event, Hash32)>, redb::Error> {
        Ok(self.entry(seq)?.and_then(|b| {
            let e = EntryRef::parse(&b).ok()?;
            Event::decode(e.payload()).ok().map(|ev| (ev, *e.hash()))
        }))
    }

    /// Every seq filed under `name` in `index` (none if no entry ever was), with
    /// `from <= occurred_at < to` and seq below `below`, in (occurred_at, seq) order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn filed_under(
        &self,
        index: IndexName,
        name: &str,
        from: i64,
        to: i64,
        below: u64,
    ) -> Result<Vec<u64>, redb::Error> {
        let Some(id) = self.name_id(index, name)? else {
            return Ok(Vec::new());
        };
        Ok(self
            .list(
                Some((index, id)),
                from,
                to,
                None,
                below,
                usize::MAX,
                |_, _| Ok(true),
            )?
            .0)
    }

    /// # Errors
    /// Storage errors.
    pub fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, redb::Error> {
        let t = self.txn.open_table(ENTRIES)?;
        Ok(t.get(seq)?.map(|v| v.value().to_vec()))
    }

    /// Up to `limit` seqs in (occurred_at, seq) order, strictly after `after`, with
    /// `from <= occurred_at < to`, seq below `below`, and `keep(occurred_at, seq)` true. `index` with its key
    /// picks the index; `None` reads them all by time.
    ///
    /// # Errors
    /// Storage errors.
    #[allow(clippy::too_many_arguments)]
    pub fn list(
        &self,
        index: Option<(IndexName, u32)>,
        from: i64,
        to: i64,
        after: Option<Position>,
        below: u64,
        limit: usize,
        mut keep: impl FnMut(i64, u64) -> Result<bool, redb::Error>,
    ) -> Result<(Vec<u64>, Option<Position>), redb::Error> {
        let start: Position = match after {
            Some((at, seq)) if (at, seq) >= (from, 0) => (at, seq.saturating_add(1)),
            _ => (from, 0),
        };
        let mut out = Vec::new();
        let mut last = None;
        let mut take = |at: i64, seq: u64| -> Result<bool, redb::Error> {
            if at >= to {
                return Ok(false);
            }
            if seq < below && keep(at, seq)? {
                out.push(seq);
                last = Some((at, seq));
            }
            Ok(out.len() < limit)
        };
        match index {
            None => {
                let t = self.txn.open_table(BY_TIME)?;
                for item in t.range(start..)? {
                    let (k, _) = item?;
                    let (at, seq) = k.value();
                    if !take(at, seq)? {
                        break;
                    }
                }
            }
            Some((name, key)) => {
                let t = self.txn.open_table(name.table())?;
                for item in t.range((key, start.0, start.1)..=(key, i64::MAX, u64::MAX))? {
                    let (k, _) = item?;
                    let (_, at, seq) = k.value();
                    if !take(at, seq)? {
                        break;
                    }
                }
            }
        }
        let more = out.len() == limit;
        Ok((out, if more { last } else { None }))
    }

    /// The id of `name` in `index`'s namespace, if any entry was ever filed under it.
    ///
    /// # Errors
    /// Storage errors.
    pub fn name_id(&self, index: IndexName, name: &str) -> Result<Option<u32>, redb::Error> {
        let t = self.txn.open_table(NAMES)?;
        let key = format!("{}{name}", index.prefix());
        Ok(t.get(key.as_str())?.map(|v| v.value()))
    }

    /// Whether the entry `(at, seq)` is filed under `key` in `index`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn indexed(
        &self,
        index: IndexName,
        key: u32,
        at: i64,
        seq: u64,
    ) -> Result<bool, redb::Error> {
        let t = self.txn.open_table(index.table())?;
        Ok(t.get((key, at, seq))?.is_some())
    }

    /// The employee document, as stored.
    ///
    /// # Errors
    /// Storage errors.
    pub fn employee(&self, id: &str) -> Result<Option<Vec<u8>>, redb::Error> {
        let t = self.txn.open_table(EMPLOYEES)?;
        Ok(t.get(id)?.map(|v| v.value().to_vec()))
    }

    /// Every employee document, in id order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn employees(&self, mut f: impl FnMut(&[u8])) -> Result<(), redb::Error> {
        let t = self.txn.open_table(EMPLOYEES)?;
        for item in t.iter()? {
            f(item?.1.value());
        }
        Ok(())
    }

    /// Anomaly documents, of one employee or of everyone, in (employee, time) order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn anomalies(
        &self,
        employee: Option<&str>,
        mut f: impl FnMut(&[u8]),
    ) -> Result<(), redb::Error> {
        let t = self.txn.open_table(ANOMALIES)?;
        match employee {
            Some(e) => {
                for item in t.range((e, i64::MIN, 0, 0)..=(e, i64::MAX, u64::MAX, u8::MAX))? {
                    f(item?.1.value());
                }
            }
            None => {
                for item in t.iter()? {
                    f(item?.1.value());
                }
            }
        }
        Ok(())
    }

    /// Every orphaned customer's document, in customer order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn orphans(&self, mut f: impl FnMut(&[u8])) -> Result<(), redb::Error> {
        let t = self.txn.open_table(ORPHANS)?;
        for item in t.iter()? {
            f(item?.1.value());
        }
        Ok(())
    }

    /// # Errors
    /// Storage errors.
    pub fn handover(&self, leaver: &str) -> Result<Option<Vec<u8>>, redb::Error> {
        let t = self.txn.open_table(HANDOVERS)?;
        Ok(t.get(leaver)?.map(|v| v.value().to_vec()))
    }

    /// The ownership changes of a deal, in seq order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn deal_owners(&self, deal: &str) -> Result<Vec<Vec<u8>>, redb::Error> {
        let t = self.txn.open_table(DEAL_OWNERS)?;
        let mut out = Vec::new();
        for item in t.range((deal, 0)..=(deal, u64::MAX))? {
            out.push(item?.1.value().to_vec());
        }
        Ok(out)
    }

    /// The ownership changes of a customer, in seq order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn owners(&self, customer: &str) -> Result<Vec<Vec<u8>>, redb::Error> {
        let t = self.txn.open_table(OWNERS)?;
        let mut out = Vec::new();
        for item in t.range((customer, 0)..=(customer, u64::MAX))? {
            out.push(item?.1.value().to_vec());
        }
        Ok(out)
    }
}

/// Now, as the store records times.
pub fn now_micros() -> i64 {
    Timestamp::now().0
}
