//! The ledger's store and writer, through their public API, on real redb files.

use std::path::{Path, PathBuf};

use ledger::reader::{export_store, verify_store};
use ledger::{AppendError, Ledger, LogStore, NewEntry, OpenError, WriterConfig};
use proto_types::event::EventKind;
use proto_types::ids::{CustomerId, EmployeeId, EventId};
use proto_types::{Actor, Event, Timestamp};

fn event(id: Option<&str>, customer: &str) -> NewEntry {
    NewEntry::from_event(&Event {
        id: id.map(|i| EventId::parse(i).unwrap()),
        actor: Actor::Employee(EmployeeId::parse("E-1").unwrap()),
        occurred_at: Timestamp(1_700_000_000_000_000),
        kind: EventKind::CustomerViewed {
            customer: CustomerId::parse(customer).unwrap(),
        },
    })
    .unwrap()
}

fn store_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join(ledger::STORE_FILE)
}

fn start(path: &Path) -> (Ledger, ledger::WriterHandle) {
    Ledger::start(
        LogStore::open_or_create(path).unwrap(),
        WriterConfig::default(),
    )
    .unwrap()
}

#[test]
fn appends_get_gapless_seqs_and_a_chain_that_verifies_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let (ledger, handle) = start(&path);
    let first = ledger
        .append_blocking((0..10).map(|i| event(None, &format!("C-{i}"))).collect())
        .unwrap();
    assert_eq!(
        first.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    drop(ledger);
    handle.join();

    let (ledger, handle) = start(&path);
    let more = ledger.append_blocking(vec![event(None, "C-x")]).unwrap();
    assert_eq!(more[0].seq, 10, "a reopened store continues after its head");
    drop(ledger);
    handle.join();

    let report = verify_store(&path, |_, _| {}).unwrap();
    assert_eq!(report.broken, None);
    assert_eq!((report.verified, report.announced), (11, 11));
    assert_eq!(report.head_hash, more[0].hash);
}

#[test]
fn a_retried_event_returns_its_original_seq_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, handle) = start(&store_path(&dir));
    let a = ledger
        .append_blocking(vec![
            event(Some("evt-1"), "C-1"),
            event(Some("evt-2"), "C-2"),
        ])
        .unwrap();
    let again = ledger
        .append_blocking(vec![
            event(Some("evt-1"), "C-1"),
            event(Some("evt-3"), "C-3"),
            event(Some("evt-3"), "C-3"),
        ])
        .unwrap();
    assert!(!a[0].duplicate);
    assert_eq!(
        (again[0].seq, again[0].hash, again[0].duplicate),
        (a[0].seq, a[0].hash, true)
    );
    assert_eq!((again[1].seq, again[1].duplicate), (2, false));
    assert_eq!(
        (again[2].seq, again[2].hash, again[2].duplicate),
        (2, again[1].hash, true)
    );
    let next = ledger.append_blocking(vec![event(None, "C-4")]).unwrap();
    assert_eq!(next[0].seq, 3, "duplicates took no seq");
    drop(ledger);
    handle.join();
}

#[test]
fn an_id_reused_for_other_content_is_rejected_and_nothing_of_its_request_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let (ledger, handle) = start(&path);
    ledger
        .append_blocking(vec![event(Some("evt-1"), "C-1")])
        .unwrap();
    let err = ledger
        .append_blocking(vec![
            event(Some("evt-9"), "C-9"),
            event(Some("evt-1"), "C-2"),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, AppendError::Rejected(r) if r.to_string().contains("event 1")),
        "{err}"
    );
    let within = ledger
        .append_blocking(vec![
            event(Some("evt-5"), "C-5"),
            event(Some("evt-5"), "C-6"),
        ])
        .unwrap_err();
    assert!(matches!(within, AppendError::Rejected(_)));
    let next = ledger
        .append_blocking(vec![event(Some("evt-9"), "C-9")])
        .unwrap();
    assert_eq!(
        (next[0].seq, next[0].duplicate),
        (1, false),
        "evt-9 was not written before"
    );
    drop(ledger);
    handle.join();
    assert_eq!(verify_store(&path, |_, _| {}).unwrap().verified, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_are_all_acknowledged_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let (ledger, handle) = start(&path);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for r in 0..20 {
                let batch = (0..5)
                    .map(|i| event(Some(&format!("t{t}-r{r}-i{i}")), "C-1"))
                    .collect();
                let acks = ledger.append(batch).await.unwrap();
                assert!(
                    acks.windows(2).all(|w| w[1].seq == w[0].seq + 1),
                    "a request stays contiguous"
                );
                seqs.extend(acks.iter().map(|a| a.seq));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..1600).collect::<Vec<u64>>());
    drop(ledger);
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .unwrap();
    let report = verify_store(&path, |_, _| {}).unwrap();
    assert_eq!((report.verified, report.broken), (1600, None));
}

#[test]
fn a_full_queue_is_reported_instead_of_growing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open_or_create(&store_path(&dir)).unwrap();
    let (ledger, handle) = Ledger::start(
        store,
        WriterConfig {
            queue_capacity: 1,
            max_group_events: 1,
        },
    )
    .unwrap();
    // Submit until the queue refuses; the writer cannot drain 1,000 fsyncs faster than this loop.
    let mut pending = Vec::new();
    let mut full = false;
    for i in 0..1000 {
        match ledger.try_submit(vec![event(None, &format!("C-{i}"))]) {
            Ok(p) => pending.push(p),
            Err(AppendError::QueueFull) => {
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full);
    for p in pending {
        p.blocking_recv().unwrap().unwrap();
    }
    drop(ledger);
    handle.join();
}

#[test]
fn an_export_of_a_range_verifies_against_its_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let (ledger, handle) = start(&path);
    let acks = ledger
        .append_blocking((0..20).map(|i| event(None, &format!("C-{i}"))).collect())
        .unwrap();
    drop(ledger);
    handle.join();
    let mut file = Vec::new();
    let summary = export_store(&path, Some(5), Some(9), &mut file, |_, _| {}).unwrap();
    assert_eq!((summary.header.first_seq, summary.header.count), (5, 5));
    assert_eq!(summary.header.anchor, acks[4].hash);
    let report = proto_types::export::verify_export(&file[..], |_, _| {}).unwrap();
    assert_eq!(
        (report.verified, report.broken, report.head_hash),
        (5, None, acks[9].hash)
    );
    let err = export_store(&path, Some(5), Some(20), Vec::new(), |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("past the end"), "{err}");
    let err = export_store(&path, Some(7), Some(6), Vec::new(), |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("after --to"), "{err}");
}

#[test]
fn foreign_files_and_newer_formats_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.redb");
    assert!(matches!(
        verify_store(&missing, |_, _| {}),
        Err(OpenError::NotFound(_))
    ));
    assert!(!missing.exists());

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"hello, I am not a database").unwrap();
    for r in [
        verify_store(&text, |_, _| {}).map(|_| ()),
        LogStore::open_or_create(&text).map(|_| ()),
    ] {
        assert!(matches!(r, Err(OpenError::NotAStore { .. })), "{r:?}");
    }
    assert_eq!(std::fs::read(&text).unwrap(), b"hello, I am not a database");

    // A redb file of someone else's.
    let other = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&other).unwrap();
        let t = db.begin_write().unwrap();
        t.open_table(redb::TableDefinition::<u64, u64>::new("x"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        t.commit().unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    assert!(matches!(
        LogStore::open_or_create(&other),
        Err(OpenError::NotAStore { .. })
    ));
    assert_eq!(std::fs::read(&other).unwrap(), before);

    // A Handover store from a newer build.
    let newer = store_path(&dir);
    drop(LogStore::open_or_create(&newer).unwrap());
    {
        let db = redb::Database::open(&newer).unwrap();
        let t = db.begin_write().unwrap();
        t.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
            .unwrap()
            .insert("format_version", 99u32.to_le_bytes().as_slice())
            .unwrap();
        t.commit().unwrap();
    }
    let before = std::fs::read(&newer).unwrap();
    for r in [
        verify_store(&newer, |_, _| {}).map(|_| ()),
        LogStore::open_or_create(&newer).map(|_| ()),
    ] {
        assert!(
            matches!(r, Err(OpenError::NewerFormat { found: 99, .. })),
            "{r:?}"
        );
    }
    assert_eq!(std::fs::read(&newer).unwrap(), before);
}

#[test]
fn a_duplicate_in_a_later_request_of_the_same_commit_group_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open_or_create(&store_path(&dir)).unwrap();
    let a = [event(Some("evt-a"), "C-1"), event(Some("evt-b"), "C-2")];
    let b = [event(Some("evt-b"), "C-2"), event(Some("evt-c"), "C-3")];
    let c = [event(Some("evt-a"), "C-9")];
    let results = store.append_group(&[&a, &b, &c], Timestamp(2)).unwrap();
    let ra = results[0].as_ref().unwrap();
    let rb = results[1].as_ref().unwrap();
    assert_eq!(
        (rb[0].seq, rb[0].hash, rb[0].duplicate),
        (ra[1].seq, ra[1].hash, true)
    );
    assert_eq!((rb[1].seq, rb[1].duplicate), (2, false));
    assert!(
        results[2].is_err(),
        "evt-a reused for other content in the same group"
    );
    assert_eq!(store.head().next_seq, 3);
}

#[test]
fn a_retry_after_a_restart_is_still_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let (ledger, handle) = start(&path);
    let first = ledger
        .append_blocking(vec![
            event(Some("evt-1"), "C-1"),
            event(Some("evt-2"), "C-2"),
        ])
        .unwrap();
    drop(ledger);
    handle.join();
    let (ledger, handle) = start(&path);
    let again = ledger
        .append_blocking(vec![event(Some("evt-1"), "C-1")])
        .unwrap();
    assert_eq!(
        (again[0].seq, again[0].hash, again[0].duplicate),
        (first[0].seq, first[0].hash, true)
    );
    drop(ledger);
    handle.join();
}

/// The idempotency index against a plain map, through in-order and out-of-order events, retries
/// within a request, within a commit group and across commits, conflicting reuse of ids, and
/// restarts.
#[test]
fn idempotency_agrees_with_a_model_through_disorder_retries_conflicts_and_restarts() {
    use std::collections::HashMap;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        }
    }
    fn make(id: Option<&str>, time: i64, customer: &str) -> NewEntry {
        NewEntry::from_event(&Event {
            id: id.map(|i| EventId::parse(i).unwrap()),
            actor: Actor::Employee(EmployeeId::parse("E-1").unwrap()),
            occurred_at: Timestamp(time),
            kind: EventKind::CustomerViewed {
                customer: CustomerId::parse(customer).unwrap(),
            },
        })
        .unwrap()
    }

    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut store = LogStore::open_or_create(&path).unwrap();
    // id → (seq, occurred_at, customer)
    let mut model: HashMap<String, (u64, i64, String)> = HashMap::new();
    let mut ids: Vec<String> = Vec::new();
    let mut rng = Rng(42);
    let mut next_seq = 0u64;
    let mut fresh = 0u64;
    let (mut dups, mut conflicts, mut late) = (0, 0, 0);
    for round in 0..400 {
        if round % 60 == 59 {
            drop(store);
            store = LogStore::open_or_create(&path).unwrap();
        }
        let clock = 1_000_000 + round * 1_000;
        let mut requests: Vec<Vec<NewEntry>> = Vec::new();
        let mut expected: Vec<Option<Vec<(u64, bool)>>> = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let mut req = Vec::new();
            let mut exp = Vec::new();
            let mut added: Vec<(String, (u64, i64, String))> = Vec::new();
            let mut seq = next_seq;
            let mut rejected = false;
            for _ in 0..1 + rng.below(12) {
                let roll = rng.below(100);
                let known = |added: &Vec<(String, (u64, i64, String))>, id: &str| {
                    model
                        .get(id)
                        .cloned()
                        .or_else(|| added.iter().find(|(i, _)| i == id).map(|(_, v)| v.clone()))
                };
                if roll < 25 && !ids.is_empty() {
                    let id = ids[rng.below(ids.len() as u64) as usize].clone();
                    let Some((s, t, c)) = known(&added, &id) else {
                        continue;
                    };
                    req.push(make(Some(&id), t, &c));
                    exp.push((s, true));
                    dups += 1;
                } else if roll < 28 && !ids.is_empty() {
                    let id = ids[rng.below(ids.len() as u64) as usize].clone();
                    let Some((_, t, _)) = known(&added, &id) else {
                        continue;
                    };
                    req.push(make(Some(&id), t, "C-other"));
                    rejected = true;
                    conflicts += 1;
                } else if roll < 35 {
                    req.push(make(None, clock, "C-anon"));
                    exp.push((seq, false));
                    seq += 1;
                } else {
                    fresh += 1;
                    let id = format!("evt-{fresh}");
                    // About a third of new events are older than ones already indexed.
                    let t = clock + rng.below(3_000) as i64 - 2_000;
                    if t < clock - 1_000 {
                        late += 1;
                    }
                    let c = format!("C-{}", rng.below(50));
                    req.push(make(Some(&id), t, &c));
                    exp.push((seq, false));
                    added.push((id.clone(), (seq, t, c)));
                    ids.push(id);
                    seq += 1;
                }
            }
            if req.is_empty() {
                continue;
            }
            if rejected {
                expected.push(None);
            } else {
                next_seq = seq;
                model.extend(added);
                expected.push(Some(exp));
            }
            requests.push(req);
        }
        let slices: Vec<&[NewEntry]> = requests.iter().map(Vec::as_slice).collect();
        let results = store.append_group(&slices, Timestamp(clock)).unwrap();
        for (i, (got, want)) in results.iter().zip(&expected).enumerate() {
            match (got, want) {
                (Err(_), None) => {}
                (Ok(acks), Some(want)) => {
                    let got: Vec<(u64, bool)> = acks.iter().map(|a| (a.seq, a.duplicate)).collect();
                    assert_eq!(&got, want, "round {round}, request {i}");
                }
                (got, want) => panic!("round {round}, request {i}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(store.head().next_seq, next_seq, "round {round}");
    }
    assert!(
        dups > 200 && conflicts > 20 && late > 200,
        "{dups} {conflicts} {late}"
    );
    drop(store);
    assert_eq!(verify_store(&path, |_, _| {}).unwrap().verified, next_seq);
}

mod commands {
    use super::*;
    use ledger::CommandFailure;
    use ledger::commands::{Command, CommandError};
    use projections::flags::Flag;
    use proto_types::ids::SystemId;
    use std::collections::BTreeMap;

    fn hr() -> Actor {
        Actor::System(SystemId::parse("hr-system").unwrap())
    }
    fn emp(s: &str) -> EmployeeId {
        EmployeeId::parse(s).unwrap()
    }
    fn hire(id: &str, manager: Option<&str>) -> Command {
        Command::Hire {
            employee: emp(id),
            name: id.into(),
            email: format!("{id}@example.com"),
            manager: manager.map(emp),
            department: "Sales".into(),
            title: "Rep".into(),
        }
    }
    fn depart(id: &str) -> Command {
        Command::Depart {
            employee: emp(id),
            effective_at: Timestamp::now(),
            reason: "resigned".into(),
            successors: BTreeMap::new(),
            default_successor: None,
        }
    }
    fn viewed_by(who: &str) -> NewEntry {
        NewEntry::new(Event {
            id: None,
            actor: Actor::Employee(emp(who)),
            occurred_at: Timestamp::now(),
            kind: EventKind::CustomerViewed {
                customer: CustomerId::parse("C-1").unwrap(),
            },
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_refused_command_writes_nothing_and_the_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let (ledger, handle) = start(&path);
        ledger.command(hr(), hire("E-1", None)).await.unwrap();
        ledger
            .command(hr(), hire("E-2", Some("E-1")))
            .await
            .unwrap();
        let recorded = ledger.command(hr(), depart("E-2")).await.unwrap();
        let kinds: Vec<&str> = recorded.iter().map(|r| r.event.kind.name()).collect();
        assert_eq!(
            kinds,
            ["employee_departed", "account_disabled", "handover_planned"]
        );
        assert_eq!(recorded[0].ack.seq, 2);
        let again = ledger.command(hr(), depart("E-2")).await.unwrap_err();
        assert!(
            matches!(again, CommandFailure::Refused(CommandError::Conflict(_))),
            "{again}"
        );
        let head = ledger.read(|s| s.applied).await.unwrap();
        assert_eq!(head, 5, "the refusal wrote nothing");
        drop(ledger);
        tokio::task::spawn_blocking(move || handle.join())
            .await
            .unwrap();

        let (ledger, handle) = start(&path);
        let again = ledger.command(hr(), depart("E-2")).await.unwrap_err();
        assert!(
            matches!(again, CommandFailure::Refused(CommandError::Conflict(_))),
            "replayed state"
        );
        drop(ledger);
        tokio::task::spawn_blocking(move || handle.join())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn actions_by_disabled_or_unknown_accounts_are_recorded_and_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, handle) = start(&store_path(&dir));
        ledger.command(hr(), hire("E-1", None)).await.unwrap();
        ledger
            .command(hr(), hire("E-2", Some("E-1")))
            .await
            .unwrap();
        let departed = ledger.command(hr(), depart("E-2")).await.unwrap();
        let acks = ledger
            .append(vec![viewed_by("E-1"), viewed_by("E-2"), viewed_by("E-404")])
            .await
            .unwrap();
        assert_eq!(acks.len(), 3, "every action is recorded");
        assert_eq!(acks[0].flag, None);
        let Some(Flag::ActivityAfterDisable {
            gap_micros,
            disabled_at,
        }) = acks[1].flag
        else {
            panic!("{:?}", acks[1].flag);
        };
        assert_eq!(disabled_at, departed[1].event.occurred_at);
        assert!(gap_micros >= 0);
        assert_eq!(acks[2].flag, Some(Flag::UnknownActor));
        drop(ledger);
        tokio::task::spawn_blocking(move || handle.join())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_racing_departures_of_one_employee_exactly_one_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, handle) = start(&store_path(&dir));
        ledger.command(hr(), hire("E-1", None)).await.unwrap();
        ledger
            .command(hr(), hire("E-2", Some("E-1")))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let ledger = ledger.clone();
                tokio::spawn(async move { ledger.command(hr(), depart("E-2")).await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(CommandFailure::Refused(CommandError::Conflict(_))) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ok, 1);
        drop(ledger);
        tokio::task::spawn_blocking(move || handle.join())
            .await
            .unwrap();
    }
}
