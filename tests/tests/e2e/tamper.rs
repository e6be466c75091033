//! Tamper evidence: one changed byte anywhere in an entry is caught, at the right seq, whether
//! the change is in an export file or in the store's redb file itself.

use crate::helpers::*;

#[test]
fn a_changed_byte_anywhere_in_an_export_is_caught_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "3");
    let out = dir.path().join("all.hlog");
    let file = export(&data, &out);
    let records = parse_export(&file);
    assert!(records.len() > 300, "{}", records.len());
    let bad = dir.path().join("bad.hlog");
    let mut rng = Rng(0x7a3_2026);
    for case in 0..150 {
        let pos = 96 + rng.below((file.len() - 96) as u64) as usize;
        let flip = 1 + rng.below(255) as u8;
        let mut copy = file.clone();
        copy[pos] ^= flip;
        std::fs::write(&bad, &copy).unwrap();
        let want = records
            .iter()
            .find(|r| r.start <= pos && pos < r.end)
            .unwrap()
            .seq;
        let (code, v) = verify_json(&["--file", path_str(&bad)]);
        assert_eq!(
            code, 1,
            "case {case}: byte {pos} ^ {flip:#x} not caught: {v}"
        );
        assert_eq!(
            v["first_bad_seq"], want,
            "case {case}: byte {pos} ^ {flip:#x}: {v}"
        );
    }
    // A change in the header is caught too (as a bad header, or a mismatch with the entries).
    for pos in (0..96).step_by(5) {
        let mut copy = file.clone();
        copy[pos] ^= 0x04;
        std::fs::write(&bad, &copy).unwrap();
        let r = run(&["verify", "--file", path_str(&bad)]);
        assert_ne!(r.code, 0, "header byte {pos}: {}", r.stdout);
    }
}

#[test]
fn a_changed_byte_inside_an_entry_of_the_redb_file_is_caught_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "3");
    let file = export(&data, &dir.path().join("all.hlog"));
    let records = parse_export(&file);
    let store = std::fs::read(data.join("ledger.redb")).unwrap();
    let copy_dir = dir.path().join("copy");
    std::fs::create_dir(&copy_dir).unwrap();
    let copy = copy_dir.join("ledger.redb");
    let mut rng = Rng(0x5eed_2026);
    for case in 0..60 {
        let r = &records[rng.below(records.len() as u64) as usize];
        let entry = &file[r.start + 4..r.end];
        // redb may also hold stale copies of a page; change every copy so the live one changes.
        let places: Vec<usize> = store
            .windows(entry.len())
            .enumerate()
            .filter(|(_, w)| *w == entry)
            .map(|(i, _)| i)
            .collect();
        assert!(
            !places.is_empty(),
            "entry {} not found in the redb file",
            r.seq
        );
        let offset = rng.below(entry.len() as u64) as usize;
        let flip = 1 + rng.below(255) as u8;
        let mut tampered = store.clone();
        for p in &places {
            tampered[p + offset] ^= flip;
        }
        std::fs::write(&copy, &tampered).unwrap();
        let (code, v) = verify_json(&["--data", path_str(&copy_dir)]);
        assert_eq!(
            code, 1,
            "case {case}: seq {} byte {offset} not caught: {v}",
            r.seq
        );
        assert_eq!(v["first_bad_seq"], r.seq, "case {case}: byte {offset}: {v}");
    }
}
