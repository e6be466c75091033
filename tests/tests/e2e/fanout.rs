//! The real binary publishing to a real nats-server: a ledger killed with SIGKILL mid-stream
//! (between publishing and recording its cursor) resends on restart, and still nothing is missing
//! and nothing is duplicated for a subscriber.

use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::*;

fn serve_with_nats(data: &std::path::Path, url: &str) -> Server {
    let mut cmd = handover();
    cmd.args([
        "serve",
        "--data",
        path_str(data),
        "--listen",
        "127.0.0.1:0",
        "--nats",
        url,
    ])
    .stderr(std::process::Stdio::null());
    Server::spawn(cmd)
}

/// Posts batches until the server stops answering; sends each acknowledged (seq, hash).
fn load(
    addr: String,
    crm: String,
    round: usize,
    acks: mpsc::Sender<(u64, String)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for r in 0.. {
            let events: Vec<Value> = (0..25)
                .map(|i| json!({"id": format!("k{round}-r{r}-i{i}"), "actor": "E-1",
                                "occurred_at": chrono_now(), "type": "customer_viewed", "customer": "C-1"}))
                .collect();
            let body = json!({ "events": events }).to_string();
            let Ok((200, text)) = std::panic::catch_unwind(|| {
                http(&addr, "POST", "/v1/events", Some(&crm), Some(&body))
            }) else {
                return;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            for res in v["results"].as_array().unwrap() {
                if acks
                    .send((
                        res["seq"].as_u64().unwrap(),
                        res["hash"].as_str().unwrap().to_string(),
                    ))
                    .is_err()
                {
                    return;
                }
            }
        }
    })
}

fn chrono_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn sigkill_mid_publishing_loses_nothing_and_duplicates_nothing_downstream() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("js"));
    let data = dir.path().join("data");
    let crm = token(&data, "crm", "ingest");
    let mut acked: Vec<(u64, String)> = Vec::new();
    for round in 0..3 {
        let mut server = serve_with_nats(&data, &nats.url());
        let (tx, rx) = mpsc::channel();
        let poster = load(server.addr.clone(), crm.clone(), round, tx);
        // Kill while the load runs, after a different number of acks each round.
        for _ in 0..(300 + 200 * round) {
            acked.push(rx.recv().unwrap());
        }
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        acked.extend(rx.iter()); // answers that were already on their way
        poster.join().unwrap();
    }
    // A clean start catches up; then the stream must hold each entry exactly once, in order.
    let server = serve_with_nats(&data, &nats.url());
    let head = acked.iter().map(|(s, _)| s + 1).max().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (seqs, ids, stored) = rt.block_on(async {
        let js =
            async_nats::jetstream::new(async_nats::connect(nats.url().as_str()).await.unwrap());
        let mut stream = js.get_stream(proto_types::nats::STREAM).await.unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subject: "handover.v1.log.>".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let (mut seqs, mut ids) = (Vec::new(), Vec::new());
        while (seqs.len() as u64) < head {
            let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
                .await
                .expect("the publisher caught up")
                .unwrap()
                .unwrap();
            let h = m.headers.as_ref().unwrap();
            seqs.push(
                h.get(proto_types::nats::SEQ_HEADER)
                    .unwrap()
                    .as_str()
                    .parse::<u64>()
                    .unwrap(),
            );
            ids.push(h.get("Nats-Msg-Id").unwrap().as_str().to_string());
        }
        let stored = stream.info().await.unwrap().state.messages;
        (seqs, ids, stored)
    });
    assert_eq!(
        seqs,
        (0..head).collect::<Vec<u64>>(),
        "every entry once, in order"
    );
    assert_eq!(stored, head, "no duplicate was stored");
    for (seq, hash) in &acked {
        assert_eq!(
            &ids[*seq as usize], hash,
            "seq {seq} published with its acknowledged hash"
        );
    }
    assert_eq!(server.stop().0, 0);
}
