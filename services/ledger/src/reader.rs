//! Read-only access to a store: verify its chain, export a range of it. Neither writes to the
//! store, and a store that needs recovery is refused rather than repaired.

use std::io::Write;
use std::path::Path;

use proto_types::chain::{BreakKind, ChainBreak, ChainVerifier, EntryRef, GENESIS, Hash32};
use proto_types::export::{ExportHeader, ExportWriter};
use redb::{ReadableDatabase, ReadableTable};

use crate::store::{self, LOG, OpenError};

/// The outcome of verifying a store.
#[derive(Debug, Clone)]
pub struct StoreReport {
    /// Entries that verified before the first break (all of them when `broken` is `None`).
    pub verified: u64,
    /// The entries the store's head record announces.
    pub announced: u64,
    /// The hash of the last entry that verified ([`GENESIS`] if none did).
    pub head_hash: Hash32,
    pub broken: Option<ChainBreak>,
}

/// Walks the whole chain of the store at `path`, calling `progress(done, total)` now and then.
///
/// # Errors
/// [`OpenError`] when the path is not a readable Handover store; chain problems are reported in
/// [`StoreReport::broken`].
pub fn verify_store(
    path: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<StoreReport, OpenError> {
    let (db, head) = store::open_read_only(path)?;
    let storage = |source: redb::Error| OpenError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let txn = db.begin_read().map_err(|e| storage(e.into()))?;
    let log = txn.open_table(LOG).map_err(|e| storage(e.into()))?;
    let total = head.next_seq;
    progress(0, total);
    let mut v = ChainVerifier::new();
    let mut broken = None;
    for item in log.iter().map_err(|e| storage(e.into()))? {
        let at = v.next_seq();
        let (k, val) = match item {
            Ok(kv) => kv,
            Err(e) => {
                broken = Some(ChainBreak {
                    seq: at,
                    kind: BreakKind::Undecodable(format!("the store cannot read it: {e}")),
                });
                break;
            }
        };
        if let Err(b) = v
            .expect_key(k.value())
            .and_then(|()| v.check(val.value()).map(|_| ()))
        {
            broken = Some(b);
            break;
        }
        if v.count().is_multiple_of(65_536) {
            progress(v.count(), total);
        }
    }
    progress(v.count(), total);
    if broken.is_none() && v.next_seq() != head.next_seq {
        let at = v.next_seq();
        broken = Some(if at < head.next_seq {
            ChainBreak {
                seq: at,
                kind: BreakKind::Truncated(format!(
                    "the head record announces {} entries but the log holds {at}",
                    head.next_seq
                )),
            }
        } else {
            ChainBreak {
                seq: head.next_seq,
                kind: BreakKind::HeaderMismatch(format!(
                    "the log holds {at} entries but the head record announces {}",
                    head.next_seq
                )),
            }
        });
    }
    if broken.is_none() && v.head_hash() != &head.hash {
        broken = Some(ChainBreak {
            seq: head.next_seq.saturating_sub(1),
            kind: BreakKind::HeaderMismatch(
                "the head record's hash is not the last entry's hash".into(),
            ),
        });
    }
    Ok(StoreReport {
        verified: v.count(),
        announced: head.next_seq,
        head_hash: *v.head_hash(),
        broken,
    })
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("{0}")]
    Range(String),
    #[error("entry {seq} in the store is unreadable: {why}")]
    Unreadable { seq: u64, why: String },
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What an export holds.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub header: ExportHeader,
    pub bytes: u64,
}

/// Writes entries `from..=to` of the store at `path` (by default the whole log) to `out` in the
/// export format, calling `progress(done, total)` now and then.
///
/// # Errors
/// [`ExportError`]; `out` may then hold a partial file, which the caller discards.
pub fn export_store(
    path: &Path,
    from: Option<u64>,
    to: Option<u64>,
    out: impl Write,
    mut progress: impl FnMut(u64, u64),
) -> Result<ExportSummary, ExportError> {
    let (db, head) = store::open_read_only(path)?;
    let storage = |source: redb::Error| {
        ExportError::Open(OpenError::Storage {
            path: path.to_path_buf(),
            source,
        })
    };
    let from = from.unwrap_or(0);
    let end = head.next_seq;
    if from > end {
        return Err(ExportError::Range(format!(
            "--from {from} is past the end of the log ({end} entries)"
        )));
    }
    let end = match to {
        Some(t) if t >= end => {
            return Err(ExportError::Range(format!(
                "--to {t} is past the end of the log ({end} entries)"
            )));
        }
        Some(t) if t < from => {
            return Err(ExportError::Range(format!(
                "--from {from} is after --to {t}"
            )));
        }
        Some(t) => t + 1,
        None => end,
    };
    let count = end - from;
    let txn = db.begin_read().map_err(|e| storage(e.into()))?;
    let log = txn.open_table(LOG).map_err(|e| storage(e.into()))?;
    let hash_of = |seq: u64| -> Result<Hash32, ExportError> {
        let v = log
            .get(seq)
            .map_err(|e| storage(e.into()))?
            .ok_or_else(|| ExportError::Unreadable {
                seq,
                why: "it is missing".into(),
            })?;
        let e = EntryRef::parse(v.value()).map_err(|k| ExportError::Unreadable {
            seq,
            why: k.to_string(),
        })?;
        Ok(*e.hash())
    };
    let anchor = if from == 0 {
        GENESIS
    } else {
        hash_of(from - 1)?
    };
    let head_hash = if count == 0 {
        anchor
    } else {
        hash_of(from + count - 1)?
    };
    let header = ExportHeader {
        first_seq: from,
        count,
        anchor,
        head: head_hash,
    };
    let mut w = ExportWriter::new(out, &header)?;
    let mut bytes = 96u64;
    let mut done = 0u64;
    if count > 0 {
        for item in log
            .range(from..from + count)
            .map_err(|e| storage(e.into()))?
        {
            let (k, v) = item.map_err(|e| storage(e.into()))?;
            if k.value() != from + done {
                return Err(ExportError::Unreadable {
                    seq: from + done,
                    why: format!("the store skips to seq {}", k.value()),
                });
            }
            w.write_entry(v.value())?;
            bytes += 4 + v.value().len() as u64;
            done += 1;
            if done.is_multiple_of(65_536) {
                progress(done, count);
            }
        }
    }
    if done != count {
        return Err(ExportError::Unreadable {
            seq: from + done,
            why: "it is missing".into(),
        });
    }
    progress(done, count);
    w.finish()?;
    Ok(ExportSummary { header, bytes })
}

/// Calls `f(seq, entry bytes)` for each entry of the store at `path` in seq order, reading it
/// read-only, until `f` returns false. Returns the store's entry count. (No checks: a reader that
/// needs them verifies what it is given.)
///
/// # Errors
/// [`OpenError`] when the path is not a readable Handover store, or a read fails.
pub fn for_each_entry(
    path: &Path,
    mut f: impl FnMut(u64, &[u8]) -> bool,
) -> Result<u64, OpenError> {
    let (db, head) = store::open_read_only(path)?;
    let storage = |source: redb::Error| OpenError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let txn = db.begin_read().map_err(|e| storage(e.into()))?;
    let log = txn.open_table(LOG).map_err(|e| storage(e.into()))?;
    for item in log.iter().map_err(|e| storage(e.into()))? {
        let (k, v) = item.map_err(|e| storage(e.into()))?;
        if !f(k.value(), v.value()) {
            break;
        }
    }
    Ok(head.next_seq)
}
