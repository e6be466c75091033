//! The ingest benchmark: `POST /v1/events` over HTTP on loopback, batches of 100 events, 32
//! concurrent clients on keep-alive connections, against appending the same batches straight
//! into a [`Ledger`] with the same concurrency, in the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::http::auth::{Scope, TokenRecord, TokenSet, new_token, token_hash};
use ledger::http::{AppState, router};
use ledger::{Ledger, LogStore, NewEntry, WriterConfig};
use proto_types::Event;
use proto_types::event::EventKind;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::demo::{DemoConfig, DemoGenerator};

pub struct IngestFigures {
    pub clients: usize,
    pub batch: usize,
    pub events: u64,
    pub http_per_s: f64,
    pub direct_per_s: f64,
    pub http_p50: Duration,
    pub http_p99: Duration,
    pub direct_p50: Duration,
    pub direct_p99: Duration,
}

/// The ingest JSON of a user action (None for HR kinds, which go through commands).
pub fn ingest_json(e: &Event) -> Option<Value> {
    let actor = query::index::actor_key(&e.actor);
    let money = |m: &proto_types::event::Money| json!({"minor_units": m.minor_units, "currency": String::from_utf8_lossy(&m.currency)});
    let mut v = match &e.kind {
        EventKind::LoggedIn { ip, user_agent } => {
            json!({"type": "logged_in", "ip": ip, "user_agent": user_agent})
        }
        EventKind::LoginFailed {
            username,
            ip,
            reason,
        } => {
            json!({"type": "login_failed", "username": username, "ip": ip, "reason": reason})
        }
        EventKind::LoggedOut => json!({"type": "logged_out"}),
        EventKind::ModuleAccessed { module: m } => {
            json!({"type": "module_accessed", "module": m.name()})
        }
        EventKind::CustomerCreated {
            customer,
            name,
            owner,
        } => {
            json!({"type": "customer_created", "customer": customer, "name": name, "owner": owner})
        }
        EventKind::CustomerViewed { customer } => {
            json!({"type": "customer_viewed", "customer": customer})
        }
        EventKind::CustomerUpdated { customer, fields } => {
            json!({"type": "customer_updated", "customer": customer, "fields": fields})
        }
        EventKind::CustomersExported {
            count,
            filter,
            format,
        } => {
            json!({"type": "customers_exported", "count": count, "filter": filter, "format": format})
        }
        EventKind::CustomerDeleted { customer } => {
            json!({"type": "customer_deleted", "customer": customer})
        }
        EventKind::DealCreated {
            deal,
            customer,
            owner,
            amount,
            stage,
        } => json!({"type": "deal_created",
            "deal": deal, "customer": customer, "owner": owner, "amount": money(amount), "stage": stage}),
        EventKind::DealUpdated {
            deal,
            fields,
            stage,
        } => {
            json!({"type": "deal_updated", "deal": deal, "fields": fields, "stage": stage})
        }
        EventKind::DealClosed {
            deal,
            outcome,
            amount,
        } => json!({"type": "deal_closed", "deal": deal,
            "outcome": outcome.name(), "amount": money(amount)}),
        EventKind::ReportExported {
            report,
            rows,
            format,
        } => {
            json!({"type": "report_exported", "report": report, "rows": rows, "format": format})
        }
        _ => return None,
    };
    v["id"] = json!(e.id.as_ref()?.to_string());
    v["actor"] = json!(actor);
    v["occurred_at"] = json!(e.occurred_at.to_rfc3339());
    Some(v)
}

/// Demo events split into the setup (hires, grants: appended untimed) and the user actions.
fn workload(n: usize) -> (Vec<Event>, Vec<Event>) {
    let mut setup = Vec::new();
    let mut actions = Vec::with_capacity(n);
    let now = proto_types::Timestamp::now();
    for mut e in DemoGenerator::new(DemoConfig {
        employees: 200,
        customers: 2_000,
        days: 36_500,
        seed: 3,
        id_prefix: Some("ingest-bench".into()),
    }) {
        // The demo's history lies in the past; ingest refuses only the future.
        e.occurred_at = e.occurred_at.min(now);
        if ingest_json(&e).is_some() {
            actions.push(e);
            if actions.len() == n {
                break;
            }
        } else {
            setup.push(e);
        }
    }
    (setup, actions)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn fresh_ledger(
    dir: &Path,
    name: &str,
    setup: &[Event],
) -> anyhow::Result<(Ledger, ledger::WriterHandle)> {
    let store = LogStore::open_or_create(&dir.join(name))?;
    let (ledger, handle) = Ledger::start(store, WriterConfig::default())?;
    for chunk in setup.chunks(1000) {
        let entries = chunk
            .iter()
            .map(NewEntry::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        ledger.append(entries).await?;
    }
    Ok((ledger, handle))
}

/// One keep-alive HTTP/1.1 connection with a bearer token: send a request, read the status and
/// the body (the benchmarks' client: no library between them and the server's own cost).
pub(crate) struct Conn {
    stream: BufReader<tokio::net::TcpStream>,
    host: String,
    token: String,
}

impl Conn {
    pub(crate) async fn open(addr: std::net::SocketAddr, token: String) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            host: addr.to_string(),
            token,
        })
    }

    /// POSTs a JSON body (`Some`) or GETs (`None`) `path`: the status.
    pub(crate) async fn send(&mut self, path: &str, body: Option<&[u8]>) -> anyhow::Result<u16> {
        let (method, extra) = match body {
            Some(b) => (
                "POST",
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    b.len()
                ),
            ),
            None => ("GET", String::new()),
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{extra}\r\n",
            self.host, self.token
        );
        self.stream.get_mut().write_all(req.as_bytes()).await?;
        if let Some(b) = body {
            self.stream.get_mut().write_all(b).await?;
        }
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse()?;
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await?;
        Ok(status)
    }
}

/// Runs the benchmark.
///
/// # Errors
/// When a store or socket fails, or a request is refused.
pub async fn run(
    dir: &Path,
    clients: usize,
    requests: usize,
    batch: usize,
) -> anyhow::Result<IngestFigures> {
    let total = clients * requests * batch;
    let (setup, actions) = workload(total);
    anyhow::ensure!(actions.len() == total, "the demo generator ran dry");
    let batches: Vec<Vec<Event>> = actions.chunks(batch).map(<[Event]>::to_vec).collect();

    // Direct: the same batches, appended by as many concurrent tasks.
    for name in ["direct.redb", "http.redb"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let (ledger, handle) = fresh_ledger(dir, "direct.redb", &setup).await?;
    let work: Vec<Vec<Vec<Event>>> = (0..clients)
        .map(|c| batches.iter().skip(c).step_by(clients).cloned().collect())
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mine in work.clone() {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len());
            for b in mine {
                let t = Instant::now();
                let entries = b
                    .into_iter()
                    .map(NewEntry::new)
                    .collect::<Result<Vec<_>, _>>()?;
                ledger.append(entries).await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut direct_lat = Vec::new();
    for t in tasks {
        direct_lat.extend(t.await??);
    }
    let direct_time = started.elapsed();
    drop(ledger);
    tokio::task::spawn_blocking(move || handle.join()).await?;

    // HTTP: the real router on loopback; the clients speak HTTP/1.1 over keep-alive connections.
    let (ledger, handle) = fresh_ledger(dir, "http.redb", &setup).await?;
    let token = new_token();
    let tokens = TokenSet::new(vec![TokenRecord {
        name: "bench".into(),
        hash: token_hash(&token),
        scopes: vec![Scope::Ingest],
        expires_at: None,
    }]);
    let app = router(AppState {
        ledger: ledger.clone(),
        tokens: Arc::new(tokens),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    // Bodies are serialised before the clock starts: the CRM has its JSON ready too.
    let bodies: Vec<Vec<Vec<u8>>> = work
        .iter()
        .map(|mine| {
            mine.iter()
                .map(|b| {
                    let events: Vec<Value> = b.iter().filter_map(ingest_json).collect();
                    json!({ "events": events }).to_string().into_bytes()
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mine in bodies {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr, token).await?;
            let mut lat = Vec::with_capacity(mine.len());
            for body in mine {
                let t = Instant::now();
                let status = conn.send("/v1/events", Some(&body)).await?;
                anyhow::ensure!(status == 200, "ingest answered {status}");
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut http_lat = Vec::new();
    for t in tasks {
        http_lat.extend(t.await??);
    }
    let http_time = started.elapsed();
    let _ = stop_tx.send(());
    server.await??;
    drop(ledger);
    tokio::task::spawn_blocking(move || handle.join()).await?;

    direct_lat.sort_unstable();
    http_lat.sort_unstable();
    Ok(IngestFigures {
        clients,
        batch,
        events: total as u64,
        http_per_s: total as f64 / http_time.as_secs_f64(),
        direct_per_s: total as f64 / direct_time.as_secs_f64(),
        http_p50: percentile(&http_lat, 0.50),
        http_p99: percentile(&http_lat, 0.99),
        direct_p50: percentile(&direct_lat, 0.50),
        direct_p99: percentile(&direct_lat, 0.99),
    })
}
