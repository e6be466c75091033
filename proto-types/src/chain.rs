//! The entry layout and the hash-chain rule. `docs/log-format.md` states the same to the byte.
//!
//! An entry is a fixed 112-byte header followed by the payload:
//!
//! | offset | size | field          | encoding                                    |
//! |-------:|-----:|----------------|---------------------------------------------|
//! |      0 |    8 | `seq`          | u64 little-endian                           |
//! |      8 |    8 | `recorded_at`  | i64 little-endian, µs since the Unix epoch  |
//! |     16 |   32 | `prev`         | `hash` of entry `seq - 1`; [`GENESIS`] at 0 |
//! |     48 |   32 | `payload_hash` | [`payload_hash`] of the payload             |
//! |     80 |   32 | `hash`         | [`entry_hash`] of bytes 0..80               |
//! |    112 |    n | payload        | see [`crate::event`]                        |
//!
//! The entry hash covers the payload only through its digest, so a payload can later be erased
//! under a retention rule while the chain still verifies.

use std::fmt;
use std::sync::LazyLock;

use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};

use crate::time::Timestamp;

/// A BLAKE3 digest.
pub type Hash32 = [u8; 32];

/// The `prev` of entry 0.
pub const GENESIS: Hash32 = [0; 32];

/// BLAKE3 `derive_key` context of the payload digest.
pub const PAYLOAD_CONTEXT: &str = "handover 2026-12-04 log payload v1";
/// BLAKE3 `derive_key` context of the entry hash.
pub const ENTRY_CONTEXT: &str = "handover 2026-12-04 log entry v1";

/// Size of the fixed part of an entry.
pub const HEADER_LEN: usize = 112;
/// Size of the prefix that the entry hash covers.
pub const HASHED_LEN: usize = 80;

// The context strings are hashed once; each digest then costs only the input's compressions.
static PAYLOAD_KEY: LazyLock<ContextKey> =
    LazyLock::new(|| hash_derive_key_context(PAYLOAD_CONTEXT));
static ENTRY_KEY: LazyLock<ContextKey> = LazyLock::new(|| hash_derive_key_context(ENTRY_CONTEXT));

/// `BLAKE3-derive_key(PAYLOAD_CONTEXT, payload)`.
pub fn payload_hash(payload: &[u8]) -> Hash32 {
    let mut h = blake3::Hasher::new_from_context_key(&PAYLOAD_KEY);
    h.update(payload);
    *h.finalize().as_bytes()
}

/// `BLAKE3-derive_key(ENTRY_CONTEXT, hashed)` where `hashed` is the 80-byte prefix of an entry.
pub fn entry_hash(hashed: &[u8; HASHED_LEN]) -> Hash32 {
    let mut h = blake3::Hasher::new_from_context_key(&ENTRY_KEY);
    h.update(hashed);
    *h.finalize().as_bytes()
}

/// Builds the bytes of an entry, computing its hash. Returns the bytes and the hash.
pub fn seal(
    seq: u64,
    recorded_at: Timestamp,
    prev: &Hash32,
    payload_digest: &Hash32,
    payload: &[u8],
) -> (Vec<u8>, Hash32) {
    let mut out = vec![0; HEADER_LEN + payload.len()];
    let hash = seal_into(&mut out, seq, recorded_at, prev, payload_digest, payload);
    (out, hash)
}

/// Writes an entry into `out` (exactly `HEADER_LEN + payload.len()` bytes, e.g. space reserved
/// in the store) and returns its hash.
///
/// # Panics
/// If `out` has another length.
pub fn seal_into(
    out: &mut [u8],
    seq: u64,
    recorded_at: Timestamp,
    prev: &Hash32,
    payload_digest: &Hash32,
    payload: &[u8],
) -> Hash32 {
    assert_eq!(out.len(), HEADER_LEN + payload.len(), "entry buffer length");
    out[0..8].copy_from_slice(&seq.to_le_bytes());
    out[8..16].copy_from_slice(&recorded_at.0.to_le_bytes());
    out[16..48].copy_from_slice(prev);
    out[48..80].copy_from_slice(payload_digest);
    let hash = entry_hash(out[..HASHED_LEN].try_into().expect("80 bytes"));
    out[80..112].copy_from_slice(&hash);
    out[HEADER_LEN..].copy_from_slice(payload);
    hash
}

/// A borrowed view of an entry's bytes, checked only for length.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    bytes: &'a [u8],
}

impl<'a> EntryRef<'a> {
    /// # Errors
    /// [`BreakKind::Undecodable`] when `bytes` is shorter than the fixed header.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BreakKind> {
        if bytes.len() < HEADER_LEN {
            return Err(BreakKind::Undecodable(format!(
                "entry is {} bytes, shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        Ok(Self { bytes })
    }

    pub fn seq(&self) -> u64 {
        u64::from_le_bytes(self.bytes[0..8].try_into().expect("8 bytes"))
    }
    pub fn recorded_at(&self) -> Timestamp {
        Timestamp(i64::from_le_bytes(
            self.bytes[8..16].try_into().expect("8 bytes"),
        ))
    }
    pub fn prev(&self) -> &'a Hash32 {
        self.bytes[16..48].try_into().expect("32 bytes")
    }
    pub fn payload_hash(&self) -> &'a Hash32 {
        self.bytes[48..80].try_into().expect("32 bytes")
    }
    pub fn hash(&self) -> &'a Hash32 {
        self.bytes[80..112].try_into().expect("32 bytes")
    }
    pub fn hashed_prefix(&self) -> &'a [u8; HASHED_LEN] {
        self.bytes[..HASHED_LEN].try_into().expect("80 bytes")
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// What is wrong at the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The entry's recomputed hash differs from its stored `hash`.
    HashMismatch,
    /// The payload's digest differs from the stored `payload_hash`.
    PayloadHashMismatch,
    /// `prev` is not the hash of the entry before.
    PrevMismatch,
    /// The entry at this position carries another seq, or the next seq is missing.
    Gap { found: u64 },
    /// The bytes are not an entry.
    Undecodable(String),
    /// The log ends before it says it does.
    Truncated(String),
    /// The log's own summary (an export header, a store's head record) disagrees with its entries.
    HeaderMismatch(String),
}

impl BreakKind {
    /// A stable machine-readable name (used in `--json` output).
    pub fn code(&self) -> &'static str {
        match self {
            BreakKind::HashMismatch => "hash_mismatch",
            BreakKind::PayloadHashMismatch => "payload_hash_mismatch",
            BreakKind::PrevMismatch => "prev_mismatch",
            BreakKind::Gap { .. } => "gap",
            BreakKind::Undecodable(_) => "undecodable_entry",
            BreakKind::Truncated(_) => "truncated",
            BreakKind::HeaderMismatch(_) => "header_mismatch",
        }
    }
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakKind::HashMismatch => {
                f.write_str("hash mismatch: the entry's bytes do not hash to its stored hash")
            }
            BreakKind::PayloadHashMismatch => {
                f.write_str("payload hash mismatch: the payload was altered")
            }
            BreakKind::PrevMismatch => {
                f.write_str("prev mismatch: the entry does not link to the entry before it")
            }
            BreakKind::Gap { found } => {
                write!(f, "gap: found seq {found} where the next seq was expected")
            }
            BreakKind::Undecodable(why) => write!(f, "undecodable entry: {why}"),
            BreakKind::Truncated(why) => write!(f, "truncated: {why}"),
            BreakKind::HeaderMismatch(why) => write!(f, "header mismatch: {why}"),
        }
    }
}

/// The first bad entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: u64,
    pub kind: BreakKind,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.kind)
    }
}

impl std::error::Error for ChainBreak {}

/// Walks entries in order and checks each against the one before. Every verifier uses this one.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: u64,
    prev: Hash32,
    count: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier for a log that starts at seq 0.
    pub fn new() -> Self {
        Self::resume(0, GENESIS)
    }

    /// A verifier that expects `next_seq` next, linked to `prev` (an anchor the caller trusts).
    pub fn resume(next_seq: u64, prev: Hash32) -> Self {
        Self {
            next_seq,
            prev,
            count: 0,
        }
    }

    /// Checks the next entry.
    ///
    /// # Errors
    /// The first problem found; the verifier's state is then unchanged.
    pub fn check<'b>(&mut self, bytes: &'b [u8]) -> Result<EntryRef<'b>, ChainBreak> {
        let at = self.next_seq;
        let fail = |kind| ChainBreak { seq: at, kind };
        let entry = EntryRef::parse(bytes).map_err(fail)?;
        if entry.seq() != self.next_seq {
            return Err(fail(BreakKind::Gap { found: entry.seq() }));
        }
        if entry.prev() != &self.prev {
            return Err(fail(BreakKind::PrevMismatch));
        }
        if &entry_hash(entry.hashed_prefix()) != entry.hash() {
            return Err(fail(BreakKind::HashMismatch));
        }
        if &payload_hash(entry.payload()) != entry.payload_hash() {
            return Err(fail(BreakKind::PayloadHashMismatch));
        }
        self.prev = *entry.hash();
        self.next_seq += 1;
        self.count += 1;
        Ok(EntryRef { bytes })
    }

    /// Checks that the store's key for the next entry is the seq expected.
    ///
    /// # Errors
    /// [`BreakKind::Gap`] when it is not.
    pub fn expect_key(&self, key: u64) -> Result<(), ChainBreak> {
        if key == self.next_seq {
            Ok(())
        } else {
            Err(ChainBreak {
                seq: self.next_seq,
                kind: BreakKind::Gap { found: key },
            })
        }
    }

    /// The seq the next entry must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
    /// The hash of the last good entry (or the anchor).
    pub fn head_hash(&self) -> &Hash32 {
        &self.prev
    }
    /// How many entries checked out.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: u64) -> Vec<Vec<u8>> {
        let mut prev = GENESIS;
        (0..n)
            .map(|seq| {
                let payload = format!("payload {seq}").into_bytes();
                let (bytes, hash) = seal(
                    seq,
                    Timestamp(seq as i64),
                    &prev,
                    &payload_hash(&payload),
                    &payload,
                );
                prev = hash;
                bytes
            })
            .collect()
    }

    #[test]
    fn hashes_match_blake3_derive_key() {
        assert_eq!(
            payload_hash(b"abc"),
            blake3::derive_key(PAYLOAD_CONTEXT, b"abc")
        );
        assert_eq!(
            entry_hash(&[7; 80]),
            blake3::derive_key(ENTRY_CONTEXT, &[7; 80])
        );
    }

    #[test]
    fn a_sealed_log_verifies() {
        let mut v = ChainVerifier::new();
        for e in log(5) {
            v.check(&e).unwrap();
        }
        assert_eq!((v.count(), v.next_seq()), (5, 5));
    }

    #[test]
    fn every_single_byte_change_is_caught_at_its_entry() {
        let entries = log(3);
        for (i, e) in entries.iter().enumerate() {
            for pos in 0..e.len() {
                let mut bad = e.clone();
                bad[pos] ^= 0x01;
                let mut v = ChainVerifier::new();
                let mut found = None;
                for (j, e) in entries.iter().enumerate() {
                    let r = if j == i {
                        v.check(&bad).map(|_| ())
                    } else {
                        v.check(e).map(|_| ())
                    };
                    if let Err(b) = r {
                        found = Some(b);
                        break;
                    }
                }
                let b =
                    found.unwrap_or_else(|| panic!("change at entry {i} byte {pos} not caught"));
                assert_eq!(b.seq, i as u64, "byte {pos}: {b}");
            }
        }
    }
}
