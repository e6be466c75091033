//! The outbox publisher against a real, current `nats-server` (from .tools/, installed by
//! .ci/install-tools) on a free loopback port with JetStream in a temp dir.

use std::time::Duration;

use futures_util::StreamExt;
use ledger::commands::Command as HrCommand;
use ledger::outbox::{OutboxConfig, Publisher};
use ledger::{Ledger, LogStore, NewEntry, WriterConfig};
use proto_types::chain::EntryRef;
use proto_types::event::EventKind;
use proto_types::ids::{CustomerId, EmployeeId, EventId, SystemId};
use proto_types::{Actor, Event, Timestamp};

use e2e::nats::{NatsServer, free_port};

fn viewed(i: u64) -> NewEntry {
    NewEntry::new(Event {
        id: Some(EventId::parse(format!("v-{i}")).unwrap()),
        actor: Actor::Employee(EmployeeId::parse("E-2").unwrap()),
        occurred_at: Timestamp::now(),
        kind: EventKind::CustomerViewed {
            customer: CustomerId::parse("C-1").unwrap(),
        },
    })
    .unwrap()
}

fn hr() -> Actor {
    Actor::System(SystemId::parse("hr-system").unwrap())
}

fn hire(id: &str, manager: Option<&str>) -> HrCommand {
    HrCommand::Hire {
        employee: EmployeeId::parse(id).unwrap(),
        name: id.into(),
        email: String::new(),
        manager: manager.map(|m| EmployeeId::parse(m).unwrap()),
        department: String::new(),
        title: String::new(),
    }
}

/// Waits (event-driven, bounded) until the publisher's cursor reaches `n`.
async fn published_through(p: &Publisher, n: u64) {
    let mut w = p.published();
    tokio::time::timeout(Duration::from_secs(30), async {
        while *w.borrow_and_update() < n {
            w.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not published through {n} within 30 s"));
}

/// Every message of the stream on `subject`, in stream order.
async fn read_all(url: &str, subject: &str, expect: usize) -> Vec<async_nats::jetstream::Message> {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(proto_types::nats::STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: subject.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while out.len() < expect {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {expect} messages on {subject}", out.len()))
            .unwrap()
            .unwrap();
        out.push(m);
    }
    out
}

fn seq_of(m: &async_nats::jetstream::Message) -> u64 {
    m.headers
        .as_ref()
        .unwrap()
        .get(proto_types::nats::SEQ_HEADER)
        .unwrap()
        .as_str()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_entry_is_published_in_order_with_its_hash_and_departures_as_cloud_events()
{
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("js"));
    let store = LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
    let (ledger, handle) = Ledger::start(store, WriterConfig::default()).unwrap();
    let publisher = Publisher::start(ledger.clone(), OutboxConfig::new(nats.url()));
    ledger.command(hr(), hire("E-1", None)).await.unwrap();
    ledger
        .command(hr(), hire("E-2", Some("E-1")))
        .await
        .unwrap();
    for chunk in (0..600).collect::<Vec<u64>>().chunks(100) {
        ledger
            .append(chunk.iter().map(|i| viewed(*i)).collect())
            .await
            .unwrap();
    }
    let departure = HrCommand::Depart {
        employee: EmployeeId::parse("E-2").unwrap(),
        effective_at: Timestamp::now(),
        reason: "resigned".into(),
        successors: Default::default(),
        default_successor: None,
    };
    let recorded = ledger.command(hr(), departure).await.unwrap();
    let head = *ledger.head_watch().borrow();
    published_through(&publisher, head).await;

    let log = read_all(&nats.url(), "handover.v1.log.>", head as usize).await;
    let entries = ledger.reader().entries(0, head as usize).unwrap();
    for (i, (m, (seq, bytes))) in log.iter().zip(&entries).enumerate() {
        assert_eq!(seq_of(m), i as u64, "in seq order");
        assert_eq!(
            (i as u64, &m.payload[..]),
            (*seq, &bytes[..]),
            "the stored bytes"
        );
        let hash = EntryRef::parse(bytes).unwrap().hash().to_owned();
        assert_eq!(
            m.headers
                .as_ref()
                .unwrap()
                .get("Nats-Msg-Id")
                .unwrap()
                .as_str(),
            hex::encode(hash)
        );
    }
    assert_eq!(log[2].subject.as_str(), "handover.v1.log.customer_viewed");

    let ces = read_all(&nats.url(), proto_types::nats::DEPARTURES, 2).await;
    let ce: serde_json::Value = serde_json::from_slice(&ces[0].payload).unwrap();
    assert_eq!(ce["type"], "io.handover.employee.departed.v1");
    assert_eq!(ce["subject"], "E-2");
    assert_eq!(ce["data"]["seq"], recorded[0].ack.seq);
    assert_eq!(ce["data"]["entry_hash"], hex::encode(recorded[0].ack.hash));
    assert_eq!(
        ce["data"]["successors"],
        serde_json::json!([]),
        "E-2 held nothing"
    );
    let disabled: serde_json::Value = serde_json::from_slice(&ces[1].payload).unwrap();
    assert_eq!(disabled["type"], "io.handover.account.disabled.v1");

    publisher.stop().await;
    // The cursor is recorded with the next commit; the ledger's shutdown commits it.
    drop(ledger);
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .unwrap();
    let store = LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
    assert_eq!(store.reader().outbox_cursor().unwrap(), head);
    nats.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_writes_are_acknowledged_and_afterwards_every_entry_arrives_once_in_order()
 {
    let dir = tempfile::tempdir().unwrap();
    let js_dir = dir.path().join("js");
    let port = free_port();
    let nats = NatsServer::start_on(&js_dir, port);
    let store = LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
    let (ledger, handle) = Ledger::start(store, WriterConfig::default()).unwrap();
    let publisher = Publisher::start(ledger.clone(), OutboxConfig::new(nats.url()));
    for c in 0..5u64 {
        ledger
            .append((0..50).map(|i| viewed(c * 50 + i)).collect())
            .await
            .unwrap();
    }
    published_through(&publisher, 250).await;
    nats.stop();

    // NATS is down: the ledger goes on acknowledging.
    for c in 5..15u64 {
        let acks = ledger
            .append((0..50).map(|i| viewed(c * 50 + i)).collect())
            .await
            .unwrap();
        assert_eq!(acks.len(), 50);
    }
    assert!(
        *publisher.published().borrow() <= 250 + 50,
        "nothing much can be published while NATS is down"
    );

    let nats = NatsServer::start_on(&js_dir, port);
    published_through(&publisher, 750).await;
    let log = read_all(&nats.url(), "handover.v1.log.>", 750).await;
    let seqs: Vec<u64> = log.iter().map(seq_of).collect();
    assert_eq!(
        seqs,
        (0..750).collect::<Vec<u64>>(),
        "every entry once, in order"
    );
    // Nothing more is waiting in the stream.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut stream = async_nats::jetstream::new(client)
        .get_stream(proto_types::nats::STREAM)
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 750);
    publisher.stop().await;
    drop(ledger);
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .unwrap();
}
