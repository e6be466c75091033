//! The applier over real ledger entries: filing, restart, gaps, and breaks.

use std::sync::Arc;

use query::applier::{Applier, Outcome};
use query::metrics::Metrics;
use query::store::{IndexName, QueryStore, STORE_FILE};
use serde_json::Value;

use crate::{ledger_with, stored, story};

fn open(dir: &std::path::Path) -> Applier {
    let (store, progress) = QueryStore::open_or_create(&dir.join(STORE_FILE)).unwrap();
    Applier::open(store, progress, Arc::new(Metrics::default())).unwrap()
}

fn list(a: &Applier, index: Option<(IndexName, &str)>) -> Vec<u64> {
    let snap = a.store().snapshot().unwrap();
    let index = index.map(|(n, k)| (n, snap.name_id(n, k).unwrap().expect("a name filed under")));
    snap.list(index, i64::MIN, i64::MAX, None, u64::MAX, 1000, |_, _| {
        Ok(true)
    })
    .unwrap()
    .0
}

#[test]
fn entries_are_filed_under_actor_employee_customer_and_kind_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _w) = ledger_with(dir.path(), story());
    let entries = stored(&ledger);
    let mut a = open(dir.path());
    let (first, rest) = entries.split_at(7);
    assert_eq!(
        a.apply(first, "test").unwrap(),
        Outcome::Applied { applied: 7 }
    );
    assert_eq!(
        a.apply(rest, "test").unwrap(),
        Outcome::Applied { applied: 12 }
    );
    assert_eq!(a.next_seq(), 19);

    // What HR did (an employee's own actions are found through the employee index), and
    // everything by or about E-2.
    assert_eq!(
        list(&a, Some((IndexName::Actor, "system:hr-system"))),
        vec![0, 1, 2, 3, 10, 12, 13, 14, 15, 16, 17]
    );
    let e2 = list(&a, Some((IndexName::Employee, "E-2")));
    for seq in [1, 2, 3, 10, 12, 13, 14, 15, 16, 17, 18] {
        assert!(e2.contains(&seq), "E-2's timeline holds {seq}: {e2:?}");
    }
    assert!(!e2.contains(&8), "E-1's view of C-2 is not E-2's");
    // A deal's events count for its customer; the handover plan names both customers.
    assert_eq!(
        list(&a, Some((IndexName::Customer, "C-1"))),
        vec![4, 6, 7, 9, 15, 16]
    );
    assert_eq!(
        list(&a, Some((IndexName::Kind, "customers_exported"))),
        vec![11]
    );
    assert_eq!(list(&a, None).len(), 19);

    let snap = a.store().snapshot().unwrap();
    let doc: Value = serde_json::from_slice(&snap.employee("E-2").unwrap().unwrap()).unwrap();
    assert_eq!(doc["status"], "departed");
    assert_eq!(doc["departure"]["successors"], serde_json::json!(["E-1"]));
    let owners = snap.owners("C-1").unwrap();
    assert_eq!(owners.len(), 2, "created, then handed over");
    let handover: Value = serde_json::from_slice(&snap.handover("E-2").unwrap().unwrap()).unwrap();
    assert_eq!(handover["remaining_customers"], 1);
    drop(snap);

    // A restart resumes after the last entry; a redelivery applies nothing twice.
    drop(a);
    let mut a = open(dir.path());
    assert_eq!(a.next_seq(), 19);
    assert_eq!(
        a.apply(&entries, "test").unwrap(),
        Outcome::Applied { applied: 0 }
    );
    assert_eq!(list(&a, None).len(), 19);
}

#[test]
fn a_missing_entry_is_a_gap_to_backfill_not_a_break() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _w) = ledger_with(dir.path(), story());
    let entries = stored(&ledger);
    let mut a = open(dir.path());
    let mut offered = entries[..5].to_vec();
    offered.extend_from_slice(&entries[8..]);
    assert_eq!(
        a.apply(&offered, "nats").unwrap(),
        Outcome::Gap {
            expected: 5,
            found: 8
        }
    );
    assert_eq!(a.next_seq(), 5, "the entries before the gap are applied");
    assert!(a.broken().is_none());
    assert_eq!(
        a.apply(&entries[5..8], "ledger").unwrap(),
        Outcome::Applied { applied: 3 }
    );
    assert_eq!(
        a.apply(&offered, "nats").unwrap(),
        Outcome::Applied { applied: 11 }
    );
    assert_eq!(a.next_seq(), 19);
}

#[test]
fn a_tampered_entry_stops_applying_for_good_and_nothing_past_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _w) = ledger_with(dir.path(), story());
    let mut entries = stored(&ledger);
    let last = entries[11].1.len() - 1;
    entries[11].1[last] ^= 0x01; // one bit of the export's payload
    let mut a = open(dir.path());
    let Outcome::Broken(b) = a.apply(&entries, "nats").unwrap() else {
        panic!("a tampered entry must break the chain");
    };
    assert_eq!(
        (b.seq, b.code.as_str(), b.source.as_str()),
        (11, "payload_hash_mismatch", "nats")
    );
    assert_eq!(a.next_seq(), 11);
    assert_eq!(list(&a, None), (0..11).collect::<Vec<_>>());
    // The genuine entry does not mend it: a break is for people to look at.
    let genuine = stored(&ledger);
    assert!(matches!(
        a.apply(&genuine[11..], "ledger").unwrap(),
        Outcome::Broken(_)
    ));
    drop(a);
    let a = open(dir.path());
    assert_eq!(
        a.broken().map(|b| b.seq),
        Some(11),
        "the break is remembered"
    );
    assert_eq!(a.status().borrow().lag(), 0);
}

#[test]
fn an_entry_altered_inside_the_query_store_is_caught_when_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _w) = ledger_with(dir.path(), story());
    let mut a = open(dir.path());
    a.apply(&stored(&ledger), "test").unwrap();
    drop(a);
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
        let t: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("entries");
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(t).unwrap();
            let mut bytes = redb::ReadableTable::get(&table, 4)
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            bytes[10] ^= 0x80; // inside recorded_at: the entry hash no longer matches
            table.insert(4, bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let a = open(dir.path());
    let b = a.broken().expect("the altered copy is caught");
    assert_eq!(
        (b.seq, b.code.as_str(), b.source.as_str()),
        (4, "hash_mismatch", "local")
    );
}
