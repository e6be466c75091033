//! The read side's benchmarks.
//!
//! - **Fan-out, end to end**: demo events appended to a [`Ledger`], published by the outbox to a
//!   real nats-server, consumed, verified and applied by the query service (indexes, read
//!   models, one transaction per batch): events/s from the first append to the last entry
//!   applied, and the lag of each acknowledged batch (ack → applied here), against **raw
//!   JetStream**: publishing the very same messages (entry bytes, subject, `Nats-Msg-Id`, seq
//!   header) with pipelined acks, no ledger and no consumer — and, for context, the same with a
//!   bare consumer draining the stream meanwhile (what the server itself costs to deliver).
//! - **Forensic queries** on a store of demo events (1,000,000 by default): p50/p99 over HTTP on
//!   loopback of an employee timeline page (50 entries) and of a customer-owners history, through
//!   the embedded default's router — each read recorded as an `AuditLogQueried` event (a durable
//!   commit) before it is answered, as in production.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures_util::StreamExt;
use ledger::http::auth::{Scope, TokenRecord, TokenSet, new_token, token_hash};
use ledger::http::{AppState, router_with};
use ledger::outbox::{OutboxConfig, Publisher};
use ledger::{Ledger, LogStore, NewEntry, WriterConfig};
use proto_types::EntryRef;
use query::http::AuditSink;
use query::source::{Backfill, LogReaderHandle, NatsConfig, follow_ledger, follow_nats};

/// A nats-server of our own for the benchmark: JetStream in `dir`, a free loopback port.
pub struct BenchNats {
    child: Child,
    pub url: String,
}

impl BenchNats {
    /// # Errors
    /// When the binary is missing or does not start.
    pub fn start(bin: &Path, dir: &Path) -> anyhow::Result<BenchNats> {
        use std::io::BufRead;
        anyhow::ensure!(
            bin.exists(),
            "{}: no nats-server there (run .ci/install-tools, or give --nats-server PATH)",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut lines = std::io::BufReader::new(child.stderr.take().expect("piped")).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("Server is ready") => break,
                Some(Ok(_)) => {}
                _ => anyhow::bail!("nats-server exited before it was ready"),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Ok(BenchNats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        })
    }
}

impl Drop for BenchNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time a process has used (user + system), from `/proc/PID/stat`; zero where there is no
/// such file (not Linux).
fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    // Clock ticks: USER_HZ, 100 on Linux.
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

/// CPU time of this process and of the nats-server, so that a phase's cost can be told apart.
#[derive(Clone, Copy)]
struct Cpu {
    ours: Duration,
    server: Duration,
}

impl Cpu {
    fn now(nats: &BenchNats) -> Cpu {
        Cpu {
            ours: cpu_time(std::process::id()),
            server: cpu_time(nats.child.id()),
        }
    }

    /// Microseconds of CPU per event since `self`: (ours, nats-server).
    fn per_event_since(self, nats: &BenchNats, n: u64) -> (f64, f64) {
        let now = Cpu::now(nats);
        let us = |d: Duration| d.as_secs_f64() * 1e6 / n.max(1) as f64;
        (us(now.ours - self.ours), us(now.server - self.server))
    }
}

pub struct FanoutFigures {
    pub events: u64,
    pub ours_per_s: f64,
    pub raw_per_s: f64,
    /// Raw publishing with a consumer draining the stream at the same time.
    pub raw_consumed_per_s: f64,
    /// Lag (ack → applied) while the pipeline is saturated.
    pub lag_p50: Duration,
    pub lag_p99: Duration,
    /// CPU per event (µs) while saturated: this process (ledger, publisher, query service) and
    /// nats-server; and the same for raw publishing, and raw with a bare consumer.
    pub cpu_ours: (f64, f64),
    pub cpu_raw: (f64, f64),
    pub cpu_raw_consumed: (f64, f64),
    /// Lag at a steady 10,000 events/s.
    pub steady_lag_p50: Duration,
    pub steady_lag_p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Append → JetStream → applied, then the same bytes raw into JetStream.
///
/// # Errors
/// When a store, NATS or a task fails.
pub async fn fanout(
    dir: &Path,
    nats: &BenchNats,
    entries: Vec<NewEntry>,
    steady: Vec<NewEntry>,
) -> anyhow::Result<FanoutFigures> {
    let n = entries.len() as u64;
    for f in ["fanout-ledger.redb", "fanout-query.redb"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    // A fresh stream each round, as the raw side gets.
    let js = jetstream::new(async_nats::connect(nats.url.as_str()).await?);
    let _ = js.delete_stream(proto_types::nats::STREAM).await;
    let store = LogStore::open_or_create(&dir.join("fanout-ledger.redb"))?;
    let (ledger, writer) = Ledger::start(store, WriterConfig::default())?;
    let publisher = Publisher::start(ledger.clone(), OutboxConfig::new(nats.url.clone()));
    let read = query::ReadSide::open(&dir.join("fanout-query.redb"))?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut config = NatsConfig::new(nats.url.clone());
    config.durable = format!("bench-{}", std::process::id());
    // Only the stream feeds it: what is measured is the path through NATS.
    let feed = tokio::spawn(follow_nats(
        read.applier.clone(),
        config,
        Backfill::None,
        stop_rx,
    ));
    let mut status = read.status.clone();
    let recorder = tokio::spawn(async move {
        let mut seen: Vec<(u64, Instant)> = Vec::new();
        while status.changed().await.is_ok() {
            let next = status.borrow_and_update().next_seq;
            seen.push((next, Instant::now()));
            if next >= n {
                break;
            }
        }
        seen
    });

    let batches: Vec<Vec<NewEntry>> = entries.chunks(1024).map(<[NewEntry]>::to_vec).collect();
    let mut shares: Vec<Vec<Vec<NewEntry>>> = vec![Vec::new(); 4];
    for (i, b) in batches.into_iter().enumerate() {
        shares[i % 4].push(b);
    }
    let cpu = Cpu::now(nats);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mine in shares {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::with_capacity(mine.len());
            for b in mine {
                let acks = ledger.append(b).await?;
                acked.push((acks.last().map_or(0, |a| a.seq), Instant::now()));
            }
            anyhow::Ok(acked)
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await??);
    }
    let seen = recorder.await?;
    let took = started.elapsed();
    let cpu_ours = cpu.per_event_since(nats, n);
    let mut lags: Vec<Duration> = acked
        .iter()
        .map(|(seq, at)| {
            seen.iter()
                .find(|(next, _)| next > seq)
                .map_or(Duration::ZERO, |(_, t)| t.saturating_duration_since(*at))
        })
        .collect();
    lags.sort_unstable();

    // Lag at a steady rate the pipeline sustains: batches of 100 every 10 ms (10,000 events/s).
    let mut steady_lags = Vec::with_capacity(steady.len() / 100 + 1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status = read.status.clone();
    for chunk in steady.chunks(100) {
        tick.tick().await;
        let acks = ledger.append(chunk.to_vec()).await?;
        let (seq, at) = (acks.last().map_or(0, |a| a.seq), Instant::now());
        tokio::time::timeout(
            Duration::from_secs(30),
            status.wait_for(|s| s.next_seq > seq),
        )
        .await
        .map_err(|_| anyhow::anyhow!("entry {seq} was not applied within 30 s"))??;
        steady_lags.push(at.elapsed());
    }
    steady_lags.sort_unstable();
    let _ = stop.send(true);
    let _ = feed.await;
    publisher.stop().await;
    let stored: Vec<Vec<u8>> = ledger
        .reader()
        .entries(0, n as usize)?
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    drop(ledger);
    tokio::task::spawn_blocking(move || writer.join()).await?;

    // The limit: the same bytes into JetStream, pipelined as the outbox does, with ids, nothing
    // else — on a server left as it was found (the stream ours filled is gone).
    js.delete_stream(proto_types::nats::STREAM).await?;
    let in_flight = OutboxConfig::new(nats.url.clone()).max_in_flight;
    let cpu = Cpu::now(nats);
    let raw_took = raw_publish(&js, &stored, in_flight, false).await?;
    let cpu_raw = cpu.per_event_since(nats, n);
    // And beside it, the same with a consumer draining the stream as it fills.
    let cpu = Cpu::now(nats);
    let raw_consumed_took = raw_publish(&js, &stored, in_flight, true).await?;
    let cpu_raw_consumed = cpu.per_event_since(nats, n);
    Ok(FanoutFigures {
        events: n,
        ours_per_s: n as f64 / took.as_secs_f64(),
        raw_per_s: n as f64 / raw_took.as_secs_f64(),
        raw_consumed_per_s: n as f64 / raw_consumed_took.as_secs_f64(),
        cpu_ours,
        cpu_raw,
        cpu_raw_consumed,
        lag_p50: percentile(&lags, 0.50),
        lag_p99: percentile(&lags, 0.99),
        steady_lag_p50: percentile(&steady_lags, 0.50),
        steady_lag_p99: percentile(&steady_lags, 0.99),
    })
}

/// Publishes `stored` to a fresh stream, pipelined with ids; with `consume`, a pull consumer
/// drains it meanwhile (acking each batch), and the time runs until it has everything.
async fn raw_publish(
    js: &jetstream::Context,
    stored: &[Vec<u8>],
    in_flight: usize,
    consume: bool,
) -> anyhow::Result<Duration> {
    let _ = js.delete_stream("RAW").await;
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: "RAW".into(),
            subjects: vec!["raw.>".into()],
            storage: jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        })
        .await?;
    let n = stored.len();
    let drain = if consume {
        let consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some("raw".into()),
                ack_policy: jetstream::consumer::AckPolicy::All,
                max_ack_pending: 100_000,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(4096)
            .messages()
            .await?;
        Some(tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                let m = messages
                    .next()
                    .await
                    .ok_or_else(|| anyhow::anyhow!("the raw consumer stopped"))?
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                got += 1;
                if got % 1024 == 0 || got == n {
                    m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                }
            }
            anyhow::Ok(())
        }))
    } else {
        None
    };
    // The very messages the outbox sends (subject by kind, id, seq header), prepared before the
    // clock starts.
    let mut subjects = Vec::with_capacity(n);
    let mut headers = Vec::with_capacity(n);
    for bytes in stored {
        let entry = EntryRef::parse(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let kind = proto_types::event::kind_name_of(entry.payload())?;
        subjects.push(format!("raw.log.{kind}"));
        headers.push((hex::encode(entry.hash()), entry.seq().to_string()));
    }
    let started = Instant::now();
    let mut inflight = VecDeque::new();
    for ((bytes, subject), (id, seq)) in stored.iter().zip(&subjects).zip(&headers) {
        let msg = PublishMessage::build()
            .payload(Bytes::copy_from_slice(bytes))
            .message_id(id.as_str())
            .header(proto_types::nats::SEQ_HEADER, seq.as_str());
        inflight.push_back(js.send_publish(subject.clone(), msg).await?);
        if inflight.len() >= in_flight {
            inflight.pop_front().expect("non-empty").await?;
        }
    }
    while let Some(ack) = inflight.pop_front() {
        ack.await?;
    }
    if let Some(d) = drain {
        d.await??;
    }
    let took = started.elapsed();
    js.delete_stream("RAW").await?;
    Ok(took)
}

pub struct QueryFigures {
    pub events: u64,
    pub applied_per_s: f64,
    pub requests: usize,
    pub timeline_p50: Duration,
    pub timeline_p99: Duration,
    pub owners_p50: Duration,
    pub owners_p99: Duration,
}

/// Builds a store of `entries`, lets the read side apply it all, then times forensic queries
/// over HTTP. `employees` and `customers` are the ids the demo used.
///
/// # Errors
/// When a store or socket fails, or a query is refused.
pub async fn forensic(
    dir: &Path,
    entries: Vec<NewEntry>,
    employees: &[String],
    customers: &[String],
    requests: usize,
) -> anyhow::Result<QueryFigures> {
    let n = entries.len() as u64;
    for f in ["forensic-ledger.redb", "forensic-query.redb"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let store = LogStore::open_or_create(&dir.join("forensic-ledger.redb"))?;
    let (ledger, writer) = Ledger::start(store, WriterConfig::default())?;
    let mut it = entries.into_iter();
    loop {
        let chunk: Vec<NewEntry> = it.by_ref().take(4096).collect();
        if chunk.is_empty() {
            break;
        }
        ledger.append(chunk).await?;
    }
    let read = query::ReadSide::open(&dir.join("forensic-query.redb"))?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let feed = tokio::spawn(follow_ledger(
        read.applier.clone(),
        LogReaderHandle::of(&ledger),
        stop_rx,
    ));
    read.status.clone().wait_for(|s| s.next_seq >= n).await?;
    let applied_per_s = n as f64 / started.elapsed().as_secs_f64();

    let token = new_token();
    let tokens = Arc::new(TokenSet::new(vec![TokenRecord {
        name: "bench".into(),
        hash: token_hash(&token),
        scopes: vec![Scope::AuditRead],
        expires_at: None,
    }]));
    let beside = crate::serve_cmd::beside(&read, tokens.clone(), AuditSink::Local(ledger.clone()));
    let app = router_with(
        AppState {
            ledger: ledger.clone(),
            tokens,
        },
        Some(beside),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_http, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_http_rx.await;
            })
            .await
    });
    let mut conn = crate::bench_ingest::Conn::open(addr, token).await?;
    let (mut timeline, mut owners) = (Vec::new(), Vec::new());
    for i in 0..requests {
        let e = &employees[(i * 7919) % employees.len()];
        let t = Instant::now();
        let status = conn
            .send(&format!("/v1/employees/{e}/timeline?limit=50"), None)
            .await?;
        anyhow::ensure!(status == 200, "timeline of {e} answered {status}");
        timeline.push(t.elapsed());
        let c = &customers[(i * 104_729) % customers.len()];
        let t = Instant::now();
        let status = conn
            .send(&format!("/v1/customers/{c}/owners"), None)
            .await?;
        anyhow::ensure!(status == 200, "owners of {c} answered {status}");
        owners.push(t.elapsed());
    }
    let _ = stop_http.send(());
    server.await??;
    let _ = stop.send(true);
    let _ = feed.await;
    drop(read);
    drop(ledger);
    tokio::task::spawn_blocking(move || writer.join()).await?;
    timeline.sort_unstable();
    owners.sort_unstable();
    Ok(QueryFigures {
        events: n,
        applied_per_s,
        requests,
        timeline_p50: percentile(&timeline, 0.50),
        timeline_p99: percentile(&timeline, 0.99),
        owners_p50: percentile(&owners, 0.50),
        owners_p99: percentile(&owners, 0.99),
    })
}
