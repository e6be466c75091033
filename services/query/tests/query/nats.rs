//! The durable JetStream consumer against a real nats-server: backfill of what the stream lost,
//! resuming after a restart, and a forged message caught and reported.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use axum::http::StatusCode;
use bytes::Bytes;
use e2e::nats::NatsServer;
use ledger::http::auth::{Scope, TokenRecord, TokenSet, new_token, token_hash};
use ledger::outbox::{OutboxConfig, Publisher};
use ledger::{Ledger, LogStore, WriterConfig};
use proto_types::event::EventKind;
use proto_types::nats;
use query::ReadSide;
use query::http::AuditSink;
use query::ledger_client::LedgerClient;
use query::source::{Backfill, NatsConfig, follow_nats};
use tokio::sync::watch;

use crate::{by, cust, ev, story};

fn views(from: usize, n: usize) -> Vec<ledger::NewEntry> {
    (from..from + n)
        .map(|i| {
            ev(
                &format!("v{i}"),
                by("E-1"),
                3000 + i as i64,
                EventKind::CustomerViewed {
                    customer: cust("C-1"),
                },
            )
        })
        .collect()
}

async fn wait_applied(read: &ReadSide, head: u64) {
    tokio::time::timeout(
        Duration::from_secs(30),
        read.status.clone().wait_for(|s| s.next_seq >= head),
    )
    .await
    .expect("the read side caught up")
    .unwrap();
}

/// The ledger's HTTP API on a loopback port, and a token for the query service to call it with.
async fn serve_ledger(ledger: &Ledger) -> (String, String) {
    let token = new_token();
    let tokens = TokenSet::new(vec![TokenRecord {
        name: "query-service".into(),
        hash: token_hash(&token),
        scopes: vec![Scope::AuditRead, Scope::Ingest],
        expires_at: None,
    }]);
    let app = ledger::http::router(ledger::http::AppState {
        ledger: ledger.clone(),
        tokens: Arc::new(tokens),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_lost_by_the_stream_are_backfilled_from_the_ledger_and_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("js"));
    let store = LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
    let (ledger, _w) = Ledger::start(store, WriterConfig::default()).unwrap();
    ledger.append(story()).await.unwrap();
    ledger.append(views(0, 300)).await.unwrap();
    let publisher = Publisher::start(ledger.clone(), OutboxConfig::new(nats.url()));
    let head = *ledger.head_watch().borrow();
    publisher
        .published()
        .wait_for(|p| *p >= head)
        .await
        .unwrap();

    // JetStream loses messages (as after an OS crash before its fsync): some in the middle, and
    // the tail, which no later message will reveal.
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut stream = js.get_stream(nats::STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    for s in (100..=140).chain(last - 9..=last) {
        assert!(stream.delete_message(s).await.unwrap());
    }

    let (url, token) = serve_ledger(&ledger).await;
    let client = LedgerClient::new(&url, token).unwrap();
    let read = ReadSide::open(&dir.path().join("query.redb")).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let mut config = NatsConfig::new(nats.url());
    config.idle = Duration::from_millis(200);
    let feed = tokio::spawn(follow_nats(
        read.applier.clone(),
        config.clone(),
        Backfill::Remote(client.clone()),
        stop_rx,
    ));
    wait_applied(&read, head).await;
    let snap = read.store.snapshot().unwrap();
    for (seq, bytes) in ledger.reader().entries(0, head as usize).unwrap() {
        assert_eq!(
            snap.entry(seq).unwrap().as_deref(),
            Some(&bytes[..]),
            "entry {seq}"
        );
    }
    drop(snap);
    assert!(
        read.metrics.backfilled_total() >= 51,
        "{}",
        read.metrics.backfilled_total()
    );
    assert!(read.status.borrow().broken.is_none());

    // Stopped, then started again while the ledger went on: it resumes where it was.
    stop.send(true).unwrap();
    feed.await.unwrap();
    drop(read);
    ledger.append(views(300, 50)).await.unwrap();
    let head = *ledger.head_watch().borrow();
    let read = ReadSide::open(&dir.path().join("query.redb")).unwrap();
    assert_eq!(read.status.borrow().next_seq, head - 50);
    let (_stop, stop_rx) = watch::channel(false);
    tokio::spawn(follow_nats(
        read.applier.clone(),
        config,
        Backfill::Remote(client),
        stop_rx,
    ));
    wait_applied(&read, head).await;
    let rendered = read.metrics.render();
    assert!(
        rendered.contains("handover_query_entries_applied_total 50\n"),
        "only the new entries are applied: {rendered}"
    );
    assert!(rendered.contains("handover_query_lag_entries 0\n"));
    publisher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_message_on_the_stream_stops_the_read_side_which_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("js"));
    let store = LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
    let (ledger, _w) = Ledger::start(store, WriterConfig::default()).unwrap();
    ledger.append(story()).await.unwrap();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.create_stream(jetstream::stream::Config {
        name: nats::STREAM.into(),
        subjects: vec![nats::STREAM_SUBJECTS.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // Someone with access to NATS slips in an altered copy of entry 11 (the notice-period export,
    // now "2" customers become "0"), before the genuine one.
    for (seq, bytes) in ledger.reader().entries(0, 100).unwrap() {
        let mut bytes = bytes;
        if seq == 11 {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(nats::SEQ_HEADER, seq.to_string().as_str());
        js.publish_with_headers("handover.v1.log.x", headers, Bytes::from(bytes))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let read = ReadSide::open(&dir.path().join("query.redb")).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let feed = tokio::spawn(follow_nats(
        read.applier.clone(),
        NatsConfig::new(nats.url()),
        Backfill::None,
        stop_rx,
    ));
    tokio::time::timeout(
        Duration::from_secs(30),
        read.status.clone().wait_for(|s| s.broken.is_some()),
    )
    .await
    .expect("the break is found")
    .unwrap();

    let auditor = new_token();
    let tokens = Arc::new(TokenSet::new(vec![TokenRecord {
        name: "siem".into(),
        hash: token_hash(&auditor),
        scopes: vec![Scope::AuditRead],
        expires_at: None,
    }]));
    let api = crate::http::Client::over(
        query::http::router(read.http_state(tokens, AuditSink::Local(ledger.clone()))),
        auditor,
    );
    let (status, ct, body) = api.get("/readyz", None).await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "application/problem+json")
    );
    assert!(
        body["detail"].as_str().unwrap().contains("seq 11"),
        "{body}"
    );
    let integrity = api.ok("/v1/integrity").await;
    assert_eq!(integrity["status"], "broken");
    assert_eq!(integrity["verified_through_seq"], 10);
    assert_eq!(
        (
            integrity["break"]["seq"].as_u64(),
            integrity["break"]["code"].as_str(),
            integrity["break"]["source"].as_str()
        ),
        (Some(11), Some("payload_hash_mismatch"), Some("nats"))
    );
    // Nothing at or past the break is served, though the genuine entries followed it.
    let events = api.ok("/v1/events?limit=1000").await;
    assert_eq!(events["as_of_seq"], 10);
    let seqs: Vec<u64> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.iter().max(), Some(&10));
    let (status, _, _) = api.get("/v1/entries/11", Some("")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = api.get("/v1/entries/11", Some(&api.token.clone())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        read.metrics
            .render()
            .contains("handover_query_integrity_broken 1\n")
    );

    // A restart does not forget it.
    drop(api);
    stop.send(true).unwrap();
    feed.await.unwrap();
    drop(read);
    let read = ReadSide::open(&dir.path().join("query.redb")).unwrap();
    assert_eq!(
        read.status.borrow().broken.as_ref().map(|b| b.seq),
        Some(11)
    );
    assert_eq!(read.status.borrow().next_seq, 11);
}
