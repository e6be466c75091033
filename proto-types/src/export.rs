//! The export file: what compliance takes away and verifies offline.
//!
//! A 96-byte header, then `count` records, each a u32 little-endian length followed by that many
//! bytes of one entry exactly as stored (see [`crate::chain`]). All integers little-endian.
//!
//! | offset | size | field            |
//! |-------:|-----:|------------------|
//! |      0 |    8 | magic `HNDVRLOG` |
//! |      8 |    4 | format version (1) |
//! |     12 |    4 | reserved, zero   |
//! |     16 |    8 | `first_seq`      |
//! |     24 |    8 | `count`          |
//! |     32 |   32 | `anchor`: the `prev` of entry `first_seq` ([`GENESIS`] when it is 0) |
//! |     64 |   32 | `head`: the hash of the last entry (`anchor` when `count` is 0) |

use std::io::{self, Read, Write};

use crate::chain::{BreakKind, ChainBreak, ChainVerifier, GENESIS, HEADER_LEN, Hash32};

pub const MAGIC: &[u8; 8] = b"HNDVRLOG";
pub const EXPORT_FORMAT_VERSION: u32 = 1;
pub const FILE_HEADER_LEN: usize = 96;
/// Records longer than this are taken as corruption rather than allocated.
pub const MAX_ENTRY_LEN: u32 = 16 * 1024 * 1024;

/// The file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportHeader {
    pub first_seq: u64,
    pub count: u64,
    pub anchor: Hash32,
    pub head: Hash32,
}

impl ExportHeader {
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut out = [0u8; FILE_HEADER_LEN];
        out[0..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&EXPORT_FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        out[24..32].copy_from_slice(&self.count.to_le_bytes());
        out[32..64].copy_from_slice(&self.anchor);
        out[64..96].copy_from_slice(&self.head);
        out
    }

    /// # Errors
    /// [`OpenError`] when the bytes are not a header this version reads.
    pub fn decode(bytes: &[u8; FILE_HEADER_LEN]) -> Result<Self, OpenError> {
        if &bytes[0..8] != MAGIC {
            return Err(OpenError::NotAnExport);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != EXPORT_FORMAT_VERSION {
            return Err(OpenError::UnsupportedVersion(version));
        }
        if bytes[12..16] != [0; 4] {
            return Err(OpenError::NotAnExport);
        }
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let h_at = |i: usize| -> Hash32 { bytes[i..i + 32].try_into().expect("32 bytes") };
        Ok(Self {
            first_seq: u64_at(16),
            count: u64_at(24),
            anchor: h_at(32),
            head: h_at(64),
        })
    }
}

/// Why a file cannot be read as an export at all (as opposed to an export that fails to verify).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("not a Handover log export (bad magic bytes)")]
    NotAnExport,
    #[error("export format version {0} is newer than this build reads ({EXPORT_FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    #[error(
        "not a Handover log export (the file is shorter than the {FILE_HEADER_LEN}-byte header)"
    )]
    ShortHeader,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Writes an export: the header first (the caller knows the range and its hashes), then records.
pub struct ExportWriter<W: Write> {
    out: W,
}

impl<W: Write> ExportWriter<W> {
    /// # Errors
    /// I/O errors of `out`.
    pub fn new(mut out: W, header: &ExportHeader) -> io::Result<Self> {
        out.write_all(&header.encode())?;
        Ok(Self { out })
    }

    /// # Errors
    /// I/O errors of `out`, or an entry too large for the format.
    pub fn write_entry(&mut self, entry: &[u8]) -> io::Result<()> {
        let len = u32::try_from(entry.len())
            .ok()
            .filter(|l| *l <= MAX_ENTRY_LEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "entry too large"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(entry)
    }

    /// # Errors
    /// I/O errors of `out`.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The outcome of verifying an export.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub header: ExportHeader,
    /// Entries that verified before the first break (all of them when `broken` is `None`).
    pub verified: u64,
    /// The hash of the last entry that verified (the anchor if none did).
    pub head_hash: Hash32,
    pub broken: Option<ChainBreak>,
}

/// Verifies an export from a reader, calling `progress(entries_done, entries_announced)` now and
/// then.
///
/// # Errors
/// [`OpenError`] when the input is not an export this version reads; chain problems are
/// reported in [`ExportReport::broken`], not as errors.
pub fn verify_export<R: Read>(
    mut input: R,
    mut progress: impl FnMut(u64, u64),
) -> Result<ExportReport, OpenError> {
    let mut hb = [0u8; FILE_HEADER_LEN];
    read_full(&mut input, &mut hb)
        .map_err(OpenError::Io)?
        .then_some(())
        .ok_or(OpenError::ShortHeader)?;
    let header = ExportHeader::decode(&hb)?;
    if header.first_seq == 0 && header.anchor != GENESIS {
        let broken = ChainBreak {
            seq: 0,
            kind: BreakKind::HeaderMismatch(
                "an export from seq 0 must have the genesis anchor".into(),
            ),
        };
        return Ok(ExportReport {
            verified: 0,
            head_hash: header.anchor,
            broken: Some(broken),
            header,
        });
    }
    let mut v = ChainVerifier::resume(header.first_seq, header.anchor);
    let mut buf = Vec::with_capacity(4096);
    let broken = loop {
        let at = v.next_seq();
        let mut lb = [0u8; 4];
        let have_len = read_full(&mut input, &mut lb).map_err(OpenError::Io)?;
        if v.count() == header.count {
            if have_len {
                break Some(ChainBreak {
                    seq: at,
                    kind: BreakKind::Undecodable(format!(
                        "data after the {} entries the header announces",
                        header.count
                    )),
                });
            }
            if v.head_hash() != &header.head {
                break Some(ChainBreak {
                    seq: at.saturating_sub(1),
                    kind: BreakKind::HeaderMismatch(
                        "the header's head hash is not the last entry's hash".into(),
                    ),
                });
            }
            break None;
        }
        if !have_len {
            break Some(ChainBreak {
                seq: at,
                kind: BreakKind::Truncated(format!(
                    "the file ends after {} of {} entries",
                    v.count(),
                    header.count
                )),
            });
        }
        let len = u32::from_le_bytes(lb);
        if len > MAX_ENTRY_LEN || (len as usize) < HEADER_LEN {
            break Some(ChainBreak {
                seq: at,
                kind: BreakKind::Undecodable(format!("record length {len} is impossible")),
            });
        }
        buf.resize(len as usize, 0);
        if !read_full(&mut input, &mut buf).map_err(OpenError::Io)? {
            break Some(ChainBreak {
                seq: at,
                kind: BreakKind::Truncated("the file ends inside an entry".into()),
            });
        }
        if let Err(b) = v.check(&buf) {
            break Some(b);
        }
        if v.count().is_multiple_of(65_536) {
            progress(v.count(), header.count);
        }
    };
    progress(v.count(), header.count);
    Ok(ExportReport {
        header,
        verified: v.count(),
        head_hash: *v.head_hash(),
        broken,
    })
}

/// Fills `buf`. `Ok(false)` when the input ends before the first byte *or* part-way (a short
/// read is an end for our purposes: the caller reports truncation).
fn read_full<R: Read>(input: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{payload_hash, seal};
    use crate::time::Timestamp;

    fn export(n: u64) -> Vec<u8> {
        let mut prev = GENESIS;
        let mut entries = vec![];
        for seq in 0..n {
            let p = vec![seq as u8; 10];
            let (b, h) = seal(seq, Timestamp(1), &prev, &payload_hash(&p), &p);
            prev = h;
            entries.push(b);
        }
        let header = ExportHeader {
            first_seq: 0,
            count: n,
            anchor: GENESIS,
            head: prev,
        };
        let mut w = ExportWriter::new(Vec::new(), &header).unwrap();
        for e in &entries {
            w.write_entry(e).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn a_written_export_verifies() {
        let r = verify_export(&export(4)[..], |_, _| {}).unwrap();
        assert_eq!((r.verified, r.broken), (4, None));
    }

    #[test]
    fn truncation_and_trailing_data_are_named() {
        let f = export(4);
        let r = verify_export(&f[..f.len() - 3], |_, _| {}).unwrap();
        assert_eq!(r.broken.unwrap().seq, 3);
        let mut longer = f.clone();
        longer.extend_from_slice(&[1, 2, 3, 4, 5]);
        let b = verify_export(&longer[..], |_, _| {})
            .unwrap()
            .broken
            .unwrap();
        assert_eq!((b.seq, b.kind.code()), (4, "undecodable_entry"));
        assert!(matches!(
            verify_export(&f[..10], |_, _| {}),
            Err(OpenError::ShortHeader)
        ));
        assert!(matches!(
            verify_export(&[0u8; 200][..], |_, _| {}),
            Err(OpenError::NotAnExport)
        ));
    }
}
