//! `handover rebuild`: the read side rebuilt from the log equals the one built live — every
//! entry, index row, name and read-model document — and a broken log stops it.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Value, json};

use crate::helpers::*;

/// Every row of every table of a query store, as text, table by table.
fn rows(path: &std::path::Path) -> Vec<(String, Vec<String>)> {
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let mut out = Vec::new();
    macro_rules! dump {
        ($name:literal, $k:ty, $v:ty) => {{
            let t = txn
                .open_table(TableDefinition::<$k, $v>::new($name))
                .unwrap();
            let rows: Vec<String> = t
                .iter()
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    format!("{:?} = {:?}", k.value(), v.value())
                })
                .collect();
            out.push(($name.to_string(), rows));
        }};
    }
    dump!("entries", u64, &[u8]);
    dump!("meta", &str, &[u8]);
    dump!("by_time", (i64, u64), ());
    dump!("by_actor", (u32, i64, u64), ());
    dump!("by_employee", (u32, i64, u64), ());
    dump!("by_customer", (u32, i64, u64), ());
    dump!("by_kind", (u32, i64, u64), ());
    dump!("names", &str, u32);
    dump!("employees", &str, &[u8]);
    dump!("handovers", &str, &[u8]);
    dump!("owners", (&str, u64), &[u8]);
    dump!("orphans", &str, &[u8]);
    dump!("anomalies", (&str, i64, u64, u8), &[u8]);
    dump!("deal_owners", (&str, u64), &[u8]);
    out
}

#[test]
fn the_read_side_rebuilt_from_the_log_equals_the_one_built_live() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "60");
    let (hr, crm, siem) = (
        token(&data, "hr", "hr"),
        token(&data, "crm", "ingest"),
        token(&data, "siem", "audit:read"),
    );
    let server = Server::start(&data);
    // More history while it runs, in small commits: other batch boundaries than a rebuild's.
    for r in 0..20 {
        let t = now();
        let events: Vec<Value> = (0..37)
            .map(|i| {
                json!({"id": format!("live-{r}-{i}"), "actor": "E-0002", "occurred_at": t,
                            "type": "customer_viewed", "customer": "C-00001"})
            })
            .collect();
        let body = json!({ "events": events }).to_string();
        assert_eq!(
            http(&server.addr, "POST", "/v1/events", Some(&crm), Some(&body)).0,
            200
        );
    }
    let (status, text) = http(
        &server.addr,
        "POST",
        "/v1/employees/E-0003/departure",
        Some(&hr),
        Some(&json!({"reason": "dismissed"}).to_string()),
    );
    assert!(status == 200 || status == 201, "{text}");
    let (_, text) = http(
        &server.addr,
        "GET",
        "/v1/employees/E-0003/handover",
        Some(&siem),
        None,
    );
    let plan: Value = serde_json::from_str(&text).unwrap();
    assert!(plan["assignments"].as_array().is_some(), "{plan}");
    // Applied everything the ledger holds?
    let applied = || {
        let (_, text) = http(&server.addr, "GET", "/v1/status", Some(&siem), None);
        let s: Value = serde_json::from_str(&text).unwrap();
        s["lag"] == 0
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !applied() {
        assert!(
            std::time::Instant::now() < deadline,
            "the read side never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(server.stop().0, 0);

    let live = dir.path().join("live.redb");
    std::fs::copy(data.join("query.redb"), &live).unwrap();
    let r = run(&["rebuild", "--data", path_str(&data)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("rebuilt"), "{}", r.stdout);
    let (live, rebuilt) = (rows(&live), rows(&data.join("query.redb")));
    for ((name, a), (_, b)) in live.iter().zip(&rebuilt) {
        assert_eq!(a.len(), b.len(), "table {name}: row counts");
        assert!(a == b, "table {name} differs");
    }
    assert!(
        live.iter()
            .all(|(n, r)| !r.is_empty() || n == "by_actor" || n == "handovers")
    );
}

#[test]
fn a_rebuild_over_a_broken_log_stops_and_leaves_the_read_side_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "3");
    let r = run(&["rebuild", "--data", path_str(&data)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = std::fs::read(data.join("query.redb")).unwrap();
    // Flip one byte inside entry 50's payload, in the store itself.
    {
        let db = redb::Database::open(data.join("ledger.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut log = txn
                .open_table(TableDefinition::<u64, &[u8]>::new("log"))
                .unwrap();
            let mut e = log.get(50).unwrap().unwrap().value().to_vec();
            let last = e.len() - 1;
            e[last] ^= 1;
            log.insert(50, e.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let r = run(&["rebuild", "--data", path_str(&data)]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("seq 50"), "{}", r.stdout);
    assert_eq!(std::fs::read(data.join("query.redb")).unwrap(), before);
    assert!(!data.join("query.redb.rebuilding").exists());
    let r = run(&["rebuild", "--data", path_str(&dir.path().join("nowhere"))]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nowhere"), "{}", r.stderr);
}
