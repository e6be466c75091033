//! The redb file that holds the log.
//!
//! Tables:
//! - `log`: seq (u64) → entry bytes, exactly as documented in `docs/log-format.md`;
//! - `meta`: `store` = `handover-ledger`, `format_version` = u32 LE, `head` = seq u64 LE ‖ hash;
//! - `idempotency_runs` and `idempotency`: client event id → seq (see [`crate::idempotency`]).
//!
//! The store refuses to open a format version it does not know, and a file that is not a
//! Handover store; in both cases it writes nothing.

use std::ops::Bound;

use crate::idempotency::{self, GroupIndex, IdempotencyKey};
use projections::flags::Flag;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto_types::chain::{self, GENESIS, HEADER_LEN, Hash32};
use proto_types::event::EncodeError;
use proto_types::{EntryRef, Event, Timestamp};
use redb::{
    Database, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition,
};

/// The file name of the store inside a data directory.
pub const STORE_FILE: &str = "ledger.redb";
/// The page cache of a read-only open (verify, export, replay).
const READ_ONLY_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// The store format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const STORE_KIND: &[u8] = b"handover-ledger";

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Why a store cannot be opened. Opening never modifies a file it then rejects.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),
    #[error("{}: not a Handover store ({why})", .path.display())]
    NotAStore { path: PathBuf, why: String },
    #[error("{}: store format version {found} is newer than this build supports ({supported})", .path.display())]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{}: the store is in use by another process", .0.display())]
    InUse(PathBuf),
    #[error("{}: the store was not closed cleanly; start the ledger on it once to recover it", .0.display())]
    NeedsRecovery(PathBuf),
    #[error("{}: {source}", .path.display())]
    Storage {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
}

/// An event ready to append: encoded and digested by the caller, off the writer thread.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The event itself, for the projections the writer keeps.
    pub event: Event,
    /// The event's idempotency key, when it has a client event id.
    pub idempotency_key: Option<IdempotencyKey>,
    pub payload: Vec<u8>,
    pub payload_hash: Hash32,
}

impl NewEntry {
    /// # Errors
    /// When the event cannot be encoded.
    pub fn from_event(event: &Event) -> Result<Self, EncodeError> {
        Self::new(event.clone())
    }

    /// # Errors
    /// When the event cannot be encoded.
    pub fn new(event: Event) -> Result<Self, EncodeError> {
        let payload = event.encode()?;
        Ok(Self {
            idempotency_key: event
                .id
                .as_ref()
                .map(|id| idempotency::idempotency_key(event.occurred_at, id)),
            payload_hash: chain::payload_hash(&payload),
            payload,
            event,
        })
    }
}

/// The acknowledgement of one appended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: Hash32,
    pub recorded_at: Timestamp,
    /// True when the event id had been appended before: nothing new was written, and `seq` and
    /// `hash` are those of the original.
    pub duplicate: bool,
    /// An anomaly the event shows the moment it is recorded (set by the writer, which keeps the
    /// projections; never on a duplicate).
    pub flag: Option<Flag>,
}

/// Why a request in a group was refused (the others in the group are unaffected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The id was used before, with the same `occurred_at` (in the log, or earlier in the same
    /// request), for other content.
    #[error("event {index}: its id was already used for an event with different content")]
    IdConflict {
        index: usize,
        /// The seq of the original, when it is in the log.
        seq: Option<u64>,
    },
}

/// Whether two payloads carry the same client event id. Only asked when two events share an
/// idempotency key but not their content: then either the id was reused for other content (a
/// conflict) or two ids collided in the key's 64-bit digest (both are appended). Payloads that do
/// not decode count as the same id, which errs towards refusing.
fn same_id(a: &[u8], b: &[u8]) -> bool {
    match (Event::decode(a), Event::decode(b)) {
        (Ok(a), Ok(b)) => a.id == b.id,
        _ => true,
    }
}

/// What pass 1 of `append_group` decided for one entry.
enum Planned {
    New,
    /// New, but its idempotency key is taken by another id (a 2^-64 collision): appended without
    /// an index entry.
    Unindexed,
    Stored(Appended),
    Same(usize),
}

/// The position the next entry extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The seq the next entry gets (the number of entries).
    pub next_seq: u64,
    /// The hash of the last entry, or [`GENESIS`].
    pub hash: Hash32,
    pub recorded_at: Timestamp,
}

/// The writable log store. Owned by exactly one writer.
pub struct LogStore {
    db: Arc<Database>,
    head: Head,
    /// The greatest key in `idempotency`. A key above it cannot be in the table, which spares
    /// the lookup for nearly every event (clients report events roughly in time order).
    max_idempotency_key: Option<IdempotencyKey>,
}

fn max_idempotency_key(db: &Database, path: &Path) -> Result<Option<IdempotencyKey>, OpenError> {
    let fail = |e: redb::Error| storage(path)(e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let out_of_order = txn
        .open_table(idempotency::OUT_OF_ORDER)
        .map_err(|e| fail(e.into()))?;
    let runs = txn
        .open_table(idempotency::RUNS)
        .map_err(|e| fail(e.into()))?;
    idempotency::max_key(&out_of_order, &runs).map_err(|e| fail(e.into()))
}

fn storage(path: &Path) -> impl Fn(redb::Error) -> OpenError + '_ {
    move |source| OpenError::Storage {
        path: path.to_path_buf(),
        source,
    }
}

/// Names what went wrong opening the redb file at `path` (shared with the query store).
pub fn map_db_error(path: &Path, e: redb::DatabaseError) -> OpenError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(path.to_path_buf()),
        redb::DatabaseError::RepairAborted => OpenError::NeedsRecovery(path.to_path_buf()),
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::NotFound =>
        {
            OpenError::NotFound(path.to_path_buf())
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            OpenError::NotAStore {
                path: path.to_path_buf(),
                why: io.to_string(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => OpenError::Storage {
            path: path.to_path_buf(),
            source: redb::Error::Io(io),
        },
        other => OpenError::NotAStore {
            path: path.to_path_buf(),
            why: other.to_string(),
        },
    }
}

/// Checks the `meta` table of any redb database and returns the head it records.
pub(crate) fn check_meta(db: &impl ReadableDatabase, path: &Path) -> Result<Head, OpenError> {
    let not_store = |why: &str| OpenError::NotAStore {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let txn = db.begin_read().map_err(|e| storage(path)(e.into()))?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(not_store("it has no Handover meta table"));
        }
        Err(e) => return Err(not_store(&e.to_string())),
    };
    let get = |k: &str| -> Result<Option<Vec<u8>>, OpenError> {
        Ok(meta
            .get(k)
            .map_err(|e| storage(path)(e.into()))?
            .map(|v| v.value().to_vec()))
    };
    if get("store")?.as_deref() != Some(STORE_KIND) {
        return Err(not_store("its meta table does not name a Handover ledger"));
    }
    let version = get("format_version")?
        .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| not_store("it records no format version"))?;
    if version > FORMAT_VERSION {
        return Err(OpenError::NewerFormat {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version < FORMAT_VERSION {
        return Err(not_store(&format!("unknown old format version {version}")));
    }
    let head = match get("head")? {
        None => Head {
            next_seq: 0,
            hash: GENESIS,
            recorded_at: Timestamp(i64::MIN),
        },
        Some(v) if v.len() == 40 => {
            let seq = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
            let log = txn.open_table(LOG).map_err(|e| storage(path)(e.into()))?;
            let last = log
                .get(seq)
                .map_err(|e| storage(path)(e.into()))?
                .ok_or_else(|| not_store("its head entry is missing"))?;
            let recorded_at = EntryRef::parse(last.value())
                .map(|e| e.recorded_at())
                .map_err(|_| not_store("its head entry is unreadable"))?;
            Head {
                next_seq: seq + 1,
                hash: v[8..40].try_into().expect("32 bytes"),
                recorded_at,
            }
        }
        Some(_) => return Err(not_store("its head record is malformed")),
    };
    Ok(head)
}

/// Opens a store read-only: nothing in the file is changed, and a store that needs recovery is
/// refused rather than repaired.
///
/// # Errors
/// [`OpenError`] naming the path and the problem.
pub fn open_read_only(path: &Path) -> Result<(ReadOnlyDatabase, Head), OpenError> {
    if !path.is_file() {
        return Err(if path.exists() {
            OpenError::NotAStore {
                path: path.to_path_buf(),
                why: "it is not a file".into(),
            }
        } else {
            OpenError::NotFound(path.to_path_buf())
        });
    }
    // Readers walk the log once, in order: a small cache keeps their memory flat.
    let db = redb::Builder::new()
        .set_cache_size(READ_ONLY_CACHE_BYTES)
        .open_read_only(path)
        .map_err(|e| map_db_error(path, e))?;
    let head = check_meta(&db, path)?;
    Ok((db, head))
}

impl LogStore {
    /// Opens the store at `path`, creating a new one if no file is there.
    ///
    /// # Errors
    /// [`OpenError`]; an existing file that is not a Handover store of a known version is left
    /// untouched.
    pub fn open_or_create(path: &Path) -> Result<Self, OpenError> {
        if path.exists() {
            if !path.is_file() {
                return Err(OpenError::NotAStore {
                    path: path.to_path_buf(),
                    why: "it is not a file".into(),
                });
            }
            // Check read-only first, so that a foreign or newer file is never repaired or upgraded.
            match open_read_only(path) {
                Ok((ro, _)) => drop(ro),
                // A crashed store is ours to recover: the read-write open below repairs it.
                Err(OpenError::NeedsRecovery(_)) => {}
                Err(e) => return Err(e),
            }
            let db = Database::open(path).map_err(|e| map_db_error(path, e))?;
            let head = check_meta(&db, path)?;
            let max_idempotency_key = max_idempotency_key(&db, path)?;
            return Ok(Self {
                db: Arc::new(db),
                head,
                max_idempotency_key,
            });
        }
        let db = Database::create(path).map_err(|e| map_db_error(path, e))?;
        let txn = db.begin_write().map_err(|e| storage(path)(e.into()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| storage(path)(e.into()))?;
            meta.insert("store", STORE_KIND)
                .map_err(|e| storage(path)(e.into()))?;
            meta.insert("format_version", FORMAT_VERSION.to_le_bytes().as_slice())
                .map_err(|e| storage(path)(e.into()))?;
            txn.open_table(LOG).map_err(|e| storage(path)(e.into()))?;
            txn.open_table(idempotency::OUT_OF_ORDER)
                .map_err(|e| storage(path)(e.into()))?;
            txn.open_table(idempotency::RUNS)
                .map_err(|e| storage(path)(e.into()))?;
        }
        txn.commit().map_err(|e| storage(path)(e.into()))?;
        let head = check_meta(&db, path)?;
        Ok(Self {
            db: Arc::new(db),
            head,
            max_idempotency_key: None,
        })
    }

    pub fn head(&self) -> Head {
        self.head
    }

    /// A read-only handle for readers in the same process (the outbox publisher, log reads):
    /// redb lets reads run beside the writer's transactions.
    pub fn reader(&self) -> LogReader {
        LogReader {
            db: self.db.clone(),
        }
    }

    /// Appends a group of requests in one write transaction committed with
    /// `Durability::Immediate`. Each request is all-or-nothing: a rejected request writes none of
    /// its events and does not affect the others.
    ///
    /// Returns one result per request, in order, once the commit is durable.
    ///
    /// # Errors
    /// A storage error fails the whole group; nothing of it is committed and the in-memory head is
    /// left as it was.
    pub fn append_group(
        &mut self,
        requests: &[&[NewEntry]],
        now: Timestamp,
    ) -> Result<Vec<Result<Vec<Appended>, Rejection>>, redb::Error> {
        self.with_group(now, |group| {
            requests.iter().map(|r| group.append(r)).collect()
        })
    }

    /// Runs `work` inside one write transaction and commits it with `Durability::Immediate`.
    /// `work` appends through the [`Group`]; what it returns is handed back only once the commit
    /// is durable.
    ///
    /// # Errors
    /// A storage error, from `work` or the commit, fails the whole group: nothing of it is
    /// committed and the in-memory head is left as it was.
    pub fn with_group<T>(
        &mut self,
        now: Timestamp,
        work: impl FnOnce(&mut Group<'_>) -> Result<T, redb::Error>,
    ) -> Result<T, redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let (out, head, max_key) = {
            let mut group = Group {
                log: txn.open_table(LOG)?,
                sealed: Vec::new(),
                sealed_ends: Vec::new(),
                out_of_order: txn.open_table(idempotency::OUT_OF_ORDER)?,
                runs: txn.open_table(idempotency::RUNS)?,
                id_index: GroupIndex::new(self.max_idempotency_key),
                outbox_cursor: None,
                head: self.head,
                // The ledger clock never goes backwards in the log, even if the wall clock does.
                recorded_at: now.max(self.head.recorded_at),
            };
            let out = work(&mut group)?;
            let first_new = group.first_sealed();
            let Group {
                mut log,
                sealed,
                sealed_ends,
                mut out_of_order,
                mut runs,
                id_index,
                head,
                outbox_cursor,
                ..
            } = group;
            let mut start = 0;
            let rows: Vec<(u64, &[u8])> = (first_new..)
                .zip(&sealed_ends)
                .map(|(seq, end)| (seq, &sealed[std::mem::replace(&mut start, *end)..*end]))
                .collect();
            insert_sorted(&mut log, &rows)?;
            let max_key = id_index.write(&mut out_of_order, &mut runs)?;
            if let Some(cursor) = outbox_cursor {
                let mut meta = txn.open_table(META)?;
                meta.insert("outbox_cursor", cursor.to_le_bytes().as_slice())?;
            }
            if head != self.head {
                let mut meta = txn.open_table(META)?;
                let mut rec = [0u8; 40];
                rec[..8].copy_from_slice(&(head.next_seq - 1).to_le_bytes());
                rec[8..].copy_from_slice(&head.hash);
                meta.insert("head", rec.as_slice())?;
            }
            (out, head, max_key)
        };
        txn.commit()?;
        self.head = head;
        self.max_idempotency_key = max_key;
        Ok(out)
    }

    /// Calls `f` with every event of the log, in order (to rebuild projections).
    ///
    /// # Errors
    /// A storage error, or an entry whose payload this build cannot decode.
    pub fn fold_events(&self, mut f: impl FnMut(&Event)) -> Result<(), redb::Error> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        for item in log.iter()? {
            let (seq, bytes) = item?;
            let entry = EntryRef::parse(bytes.value())
                .map_err(|e| redb::Error::Corrupted(format!("entry {}: {e}", seq.value())))?;
            let event = Event::decode(entry.payload())
                .map_err(|e| redb::Error::Corrupted(format!("entry {}: {e}", seq.value())))?;
            f(&event);
        }
        Ok(())
    }
}

/// One write transaction in progress: requests are appended to it in order, and become durable
/// together when [`LogStore::with_group`] commits.
pub struct Group<'txn> {
    log: redb::Table<'txn, u64, &'static [u8]>,
    /// The entries this group appended, sealed back to back (the last one is `head`'s): they go
    /// into `log` together when the group ends (through a cursor at the end of the log, which
    /// packs them into leaves at once — a third of the cost of one insert per entry).
    sealed: Vec<u8>,
    /// Where each sealed entry ends in `sealed`.
    sealed_ends: Vec<usize>,
    out_of_order: redb::Table<'txn, IdempotencyKey, u64>,
    runs: redb::Table<'txn, IdempotencyKey, &'static [u8]>,
    id_index: GroupIndex,
    outbox_cursor: Option<u64>,
    head: Head,
    recorded_at: Timestamp,
}

impl Group<'_> {
    /// The position the next entry extends (including this group's appends so far).
    pub fn head(&self) -> Head {
        self.head
    }

    /// Records that every entry below `next` has been published (and acknowledged) downstream.
    /// The cursor only moves forward.
    pub fn set_outbox_cursor(&mut self, next: u64) {
        self.outbox_cursor = Some(self.outbox_cursor.map_or(next, |c| c.max(next)));
    }

    /// The seq of the first entry this group appended (`head` if none).
    fn first_sealed(&self) -> u64 {
        self.head.next_seq - self.sealed_ends.len() as u64
    }

    /// An entry this group appended, by seq.
    fn sealed_entry(&self, seq: u64) -> Option<&[u8]> {
        let i = usize::try_from(seq.checked_sub(self.first_sealed())?).ok()?;
        let end = *self.sealed_ends.get(i)?;
        let start = i.checked_sub(1).map_or(0, |p| self.sealed_ends[p]);
        Some(&self.sealed[start..end])
    }

    /// Appends one request, all or nothing.
    ///
    /// # Errors
    /// Storage errors (which fail the group). A request refused for its content is `Ok(Err(_))`.
    pub fn append(
        &mut self,
        request: &[NewEntry],
    ) -> Result<Result<Vec<Appended>, Rejection>, redb::Error> {
        let plan = match self.plan(request)? {
            Ok(plan) => plan,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let mut acks: Vec<Appended> = Vec::with_capacity(request.len());
        for (entry, planned) in request.iter().zip(plan) {
            let unindexed = matches!(planned, Planned::Unindexed);
            match planned {
                Planned::Stored(dup) => {
                    acks.push(dup);
                    continue;
                }
                Planned::Same(first) => {
                    acks.push(Appended {
                        duplicate: true,
                        ..acks[first]
                    });
                    continue;
                }
                Planned::New | Planned::Unindexed => {}
            }
            let seq = self.head.next_seq;
            let start = self.sealed.len();
            self.sealed
                .resize(start + HEADER_LEN + entry.payload.len(), 0);
            let hash = chain::seal_into(
                &mut self.sealed[start..],
                seq,
                self.recorded_at,
                &self.head.hash,
                &entry.payload_hash,
                &entry.payload,
            );
            self.sealed_ends.push(self.sealed.len());
            if let (Some(key), false) = (entry.idempotency_key, unindexed) {
                self.id_index.record(key, seq);
            }
            self.head = Head {
                next_seq: seq + 1,
                hash,
                recorded_at: self.recorded_at,
            };
            acks.push(Appended {
                seq,
                hash,
                recorded_at: self.recorded_at,
                duplicate: false,
                flag: None,
            });
        }
        Ok(Ok(acks))
    }

    /// Pass 1 of an append: finds duplicates and conflicts before anything of the request is
    /// written. `Planned::Same(i)` repeats the id of the request's own entry `i`.
    fn plan(
        &mut self,
        request: &[NewEntry],
    ) -> Result<Result<Vec<Planned>, Rejection>, redb::Error> {
        let mut plan: Vec<Planned> = Vec::with_capacity(request.len());
        let first_with_key = first_with_same_key(request);
        for (index, entry) in request.iter().enumerate() {
            let Some(key) = &entry.idempotency_key else {
                plan.push(Planned::New);
                continue;
            };
            let first = first_with_key[index];
            if first != index {
                if request[first].payload_hash == entry.payload_hash {
                    plan.push(Planned::Same(first));
                } else if same_id(&request[first].payload, &entry.payload) {
                    return Ok(Err(Rejection::IdConflict { index, seq: None }));
                } else {
                    plan.push(Planned::Unindexed);
                }
                continue;
            }
            let Some(seq) = self.id_index.lookup(&self.out_of_order, &self.runs, *key)? else {
                plan.push(Planned::New);
                continue;
            };
            let guard;
            let stored = match self.sealed_entry(seq) {
                Some(bytes) => bytes,
                None => {
                    guard = self.log.get(seq)?.ok_or_else(|| {
                        redb::Error::Corrupted(format!("idempotency names missing seq {seq}"))
                    })?;
                    guard.value()
                }
            };
            let stored = EntryRef::parse(stored)
                .map_err(|e| redb::Error::Corrupted(format!("entry {seq} is unreadable: {e}")))?;
            if stored.payload_hash() != &entry.payload_hash {
                if !same_id(stored.payload(), &entry.payload) {
                    plan.push(Planned::Unindexed);
                    continue;
                }
                return Ok(Err(Rejection::IdConflict {
                    index,
                    seq: Some(seq),
                }));
            }
            plan.push(Planned::Stored(Appended {
                seq,
                hash: *stored.hash(),
                recorded_at: stored.recorded_at(),
                duplicate: true,
                flag: None,
            }));
        }
        Ok(Ok(plan))
    }
}

/// For each entry of `request`, the first entry with the same idempotency key (itself when it is
/// the first, or has no key). By sorting the keys: cheaper than a hash map for a request of
/// client ids, which mostly come in time order and so sort in one pass.
fn first_with_same_key(request: &[NewEntry]) -> Vec<usize> {
    let mut keyed: Vec<(IdempotencyKey, usize)> = request
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.idempotency_key.map(|k| (k, i)))
        .collect();
    keyed.sort_unstable();
    let mut first: Vec<usize> = (0..request.len()).collect();
    for same in keyed.chunk_by(|a, b| a.0 == b.0) {
        for (_, i) in &same[1..] {
            first[*i] = same[0].1;
        }
    }
    first
}

/// Reads the log beside the writer.
#[derive(Clone)]
pub struct LogReader {
    db: Arc<Database>,
}

impl LogReader {
    /// Up to `limit` entries from seq `from` on, as stored: `(seq, entry bytes)`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn entries(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, redb::Error> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        let mut out = Vec::with_capacity(limit.min(4096));
        for item in log.range(from..)?.take(limit) {
            let (k, v) = item?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// The first seq not yet published downstream (0 when nothing has been).
    ///
    /// # Errors
    /// Storage errors.
    pub fn outbox_cursor(&self) -> Result<u64, redb::Error> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta
            .get("outbox_cursor")?
            .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
            .map_or(0, u64::from_le_bytes))
    }
}

/// Below this many rows into one gap of a table, row-by-row inserts are cheaper than a cursor's
/// splice (measured on redb 5: ~8 rows break even, 50 rows are 4x faster through the cursor).
const MIN_RUN: usize = 16;

/// Inserts `rows` — in ascending key order, each key once — as `insert` would, but the rows that
/// fall into one gap of the table (a log's new entries after every stored one; an employee's new
/// index rows after that employee's older ones) go in together through a cursor, which packs
/// them into leaves with one update of the path above instead of one descent from the root and
/// one leaf rewrite per row. Rows scattered over the table (few per gap) are inserted one by one,
/// and after such a gap the next rows are too — for twice as many rows each time, up to 1,024 —
/// before a cursor is tried again: scattered rows cost about what plain inserts do, clustered
/// ones a fraction of it (see docs/benchmarks.md). Rows out of order or repeated still end up as
/// `insert` would leave them (a later row overwrites an earlier one), only more slowly.
///
/// # Errors
/// Storage errors; the transaction must then not be committed.
pub fn insert_sorted<'r, K, V>(
    table: &mut redb::Table<K, V>,
    rows: &[(K::SelfType<'r>, V::SelfType<'r>)],
) -> Result<(), redb::Error>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let (mut i, mut backoff) = (0, 0);
    // Rows to insert one by one before a cursor is tried (again).
    let mut one_by_one = if rows.len() < MIN_RUN { rows.len() } else { 0 };
    while i < rows.len() {
        let end = (i + one_by_one).min(rows.len());
        for (key, value) in &rows[i..end] {
            table.insert(key, value)?;
        }
        i = end;
        let Some((first, _)) = rows.get(i) else {
            break;
        };
        let mut cursor = table.lower_bound_mut(Bound::Included(first))?;
        // The rows below the next stored key belong in this gap.
        let gap_end = match cursor.peek_next()? {
            None => rows.len(),
            Some((next, _)) => {
                let next = K::as_bytes(&next.value()).as_ref().to_vec();
                i + rows[i..]
                    .partition_point(|(k, _)| K::compare(K::as_bytes(k).as_ref(), &next).is_lt())
            }
        };
        if gap_end - i >= MIN_RUN {
            let mut placed = i;
            for (key, value) in &rows[i..gap_end] {
                match cursor.insert_before(key, value) {
                    Ok(()) => placed += 1,
                    // Not above the row before it: `rows` broke its promise (a repeated or
                    // unsorted key). The rest of the gap goes in one by one, as `insert` would.
                    Err(redb::CursorError::UnorderedKey) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            cursor.close()?;
            (i, backoff, one_by_one) = (placed, 0, gap_end - placed);
        } else {
            cursor.close()?;
            // The gap's rows (at least the first: it may equal the next stored key, which it
            // then overwrites), and after them a stretch that grows while gaps stay small.
            backoff = (backoff * 2).clamp(MIN_RUN, 1024);
            one_by_one = (gap_end - i).max(1) + backoff;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const T: TableDefinition<(u32, u64), u64> = TableDefinition::new("t");

    /// A small deterministic generator (xorshift), so a failure reproduces.
    fn numbers(mut x: u64) -> impl Iterator<Item = u64> {
        std::iter::from_fn(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Some(x)
        })
    }

    fn contents(db: &Database) -> Vec<((u32, u64), u64)> {
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(T).unwrap();
        t.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value())
            })
            .collect()
    }

    #[test]
    fn clustered_rows_go_in_through_the_cursor_packing_the_leaves() {
        const U: TableDefinition<(u32, u64), u64> = TableDefinition::new("u");
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        // Many rows into one gap inside each table: between group 1's rows and group 3's.
        let txn = db.begin_write().unwrap();
        for table in [T, U] {
            let mut t = txn.open_table(table).unwrap();
            for k in [(1, 0), (3, 0)] {
                t.insert(k, 0).unwrap();
            }
        }
        let rows: Vec<((u32, u64), u64)> = (0..20_000).map(|i| ((2, i), i)).collect();
        {
            let mut spliced = txn.open_table(T).unwrap();
            insert_sorted(&mut spliced, &rows).unwrap();
            let mut one_by_one = txn.open_table(U).unwrap();
            for (k, v) in &rows {
                one_by_one.insert(k, v).unwrap();
            }
        }
        txn.commit().unwrap();
        let txn = db.begin_read().unwrap();
        let leaves = |t: &redb::ReadOnlyTable<(u32, u64), u64>| {
            redb::ReadableTableMetadata::stats(t).unwrap().leaf_pages()
        };
        let (spliced, one_by_one) = (
            leaves(&txn.open_table(T).unwrap()),
            leaves(&txn.open_table(U).unwrap()),
        );
        // Inserts one by one into a gap inside the table split each full leaf in two and leave
        // the left half behind; the cursor's splice fills its leaves.
        assert!(
            spliced * 3 < one_by_one * 2,
            "{spliced} leaves spliced against {one_by_one} one by one"
        );
    }

    #[test]
    fn sorted_inserts_through_a_cursor_land_as_row_by_row_inserts_would() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let mut expected = BTreeMap::new();
        let mut rng = numbers(0x9e37_79b9_7f4a_7c15);
        // Into an empty table (one gap); scattered among stored rows (a few per gap); clustered
        // after each group's stored rows (many per gap, gaps inside the table) with some
        // scattered between; over stored keys, which are overwritten; and rows that break the
        // promise of ascending, distinct keys.
        for round in 0..5u64 {
            let mut rows: Vec<((u32, u64), u64)> = (0..5_000)
                .map(|_| {
                    let r = rng.next().unwrap();
                    (((r % 40) as u32, (r >> 8) % 100_000), round)
                })
                .collect();
            if round == 2 {
                rows.truncate(100);
                rows.extend((0..40).flat_map(|g| (0..60).map(move |j| ((g, 200_000 + j), 2))));
            }
            if round == 3 {
                rows.extend(expected.keys().step_by(7).map(|k| (*k, 99)));
            }
            rows.sort_unstable_by_key(|r| r.0);
            rows.dedup_by_key(|r| r.0);
            if round == 4 {
                // A broken promise: runs of rows with repeated keys, and rows out of order.
                let mut broken: Vec<((u32, u64), u64)> = (0..40u32)
                    .flat_map(|g| (0..40u64).map(move |j| ((g, 300_000 + j / 2), j)))
                    .collect();
                broken.extend(rows.iter().rev().take(50).map(|(k, _)| (*k, 7)));
                rows = broken;
            }
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(T).unwrap();
                insert_sorted(&mut t, &rows).unwrap();
            }
            txn.commit().unwrap();
            expected.extend(rows.iter().copied());
            assert_eq!(
                contents(&db),
                expected.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
                "round {round}"
            );
        }
        assert!(expected.values().any(|v| *v == 99));
    }
}
