//! One story against every deployment of the one binary: the embedded default (`handover serve`,
//! ledger and query in one process, in-process bus), the same over NATS (`serve --nats`), and the
//! split one (`handover ledger` and `handover query` as two processes with a real nats-server
//! between them). An employee is
//! hired, works, resigns, departs and is handed over; the security team then asks the forensic
//! API about it, and every answer must agree with what the write API acknowledged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

struct Deployment {
    /// Where the write API listens.
    write: String,
    /// Where the forensic API listens.
    read: String,
    hr: String,
    crm: String,
    siem: String,
    /// The ledger's data directory.
    ledger_data: PathBuf,
    /// Stopped in this order.
    servers: Vec<Server>,
    /// How to start the query service again (split only).
    query: Option<QueryLaunch>,
    nats: Option<Nats>,
}

/// What `handover query` is started with.
#[derive(Clone)]
struct QueryLaunch {
    data: PathBuf,
    nats: String,
    ledger: String,
    token: String,
}

impl QueryLaunch {
    fn start(&self) -> Server {
        let mut cmd = handover();
        cmd.args([
            "query",
            "--data",
            path_str(&self.data),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--nats", &self.nats])
        .args(["--ledger", &self.ledger])
        .env("HANDOVER_LEDGER_TOKEN", &self.token)
        .stderr(std::process::Stdio::null());
        Server::spawn(cmd)
    }
}

impl Deployment {
    fn embedded(dir: &Path) -> Deployment {
        Deployment::one_process(dir, None)
    }

    /// `handover serve --nats`: one process that publishes to JetStream and feeds its read side
    /// from the stream (backfilling from its own log).
    fn embedded_over_nats(dir: &Path) -> Deployment {
        Deployment::one_process(dir, Some(Nats::start(&dir.join("js"))))
    }

    /// `handover serve`, over `nats` when given.
    fn one_process(dir: &Path, nats: Option<Nats>) -> Deployment {
        let data = dir.join("data");
        let (hr, crm, siem) = (
            token(&data, "hr-system", "hr"),
            token(&data, "crm", "ingest"),
            token(&data, "siem", "audit:read"),
        );
        let mut cmd = handover();
        cmd.args([
            "serve",
            "--data",
            path_str(&data),
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(std::process::Stdio::null());
        if let Some(n) = &nats {
            cmd.args(["--nats", &n.url()]);
        }
        let server = Server::spawn(cmd);
        Deployment {
            write: server.addr.clone(),
            read: server.addr.clone(),
            hr,
            crm,
            siem,
            ledger_data: data,
            servers: vec![server],
            query: None,
            nats,
        }
    }

    fn split(dir: &Path) -> Deployment {
        let nats = Nats::start(&dir.join("js"));
        let (ldata, qdata) = (dir.join("ledger"), dir.join("query"));
        let (hr, crm, service) = (
            token(&ldata, "hr-system", "hr"),
            token(&ldata, "crm", "ingest"),
            token(&ldata, "query-service", "audit:read,ingest"),
        );
        let siem = token(&qdata, "siem", "audit:read");
        let mut cmd = handover();
        cmd.args([
            "ledger",
            "--data",
            path_str(&ldata),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--nats", &nats.url()])
        .stderr(std::process::Stdio::null());
        let ledger = Server::spawn(cmd);
        let launch = QueryLaunch {
            data: qdata,
            nats: nats.url(),
            ledger: format!("http://{}", ledger.addr),
            token: service,
        };
        let query = launch.start();
        Deployment {
            write: ledger.addr.clone(),
            read: query.addr.clone(),
            hr,
            crm,
            siem,
            ledger_data: ldata,
            servers: vec![query, ledger],
            query: Some(launch),
            nats: Some(nats),
        }
    }

    fn post(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, text) = http(
            &self.write,
            "POST",
            path,
            Some(token),
            Some(&body.to_string()),
        );
        assert!(status == 200 || status == 201, "{path}: {status}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn ask(&self, path: &str) -> Value {
        let (status, text) = http(&self.read, "GET", path, Some(&self.siem), None);
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Waits (polling its status, with a deadline) until the read side has applied `seq`.
    fn applied(&self, seq: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.ask("/v1/status");
            if s["applied_seq_next"].as_u64().unwrap() > seq {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the read side never applied {seq}: {s}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(self) {
        for s in self.servers {
            let (code, said) = s.stop();
            assert_eq!(code, 0, "{said}");
        }
    }
}

fn seq_of(recorded: &Value) -> u64 {
    recorded["seq"].as_u64().unwrap()
}

fn offboarding_story_is_told_by_the_forensic_api(d: Deployment) {
    let (hr, crm) = (d.hr.clone(), d.crm.clone());
    d.post(
        "/v1/employees",
        &hr,
        json!({"id": "E-1", "name": "Maria Boss", "title": "Head of Sales"}),
    );
    d.post(
        "/v1/employees",
        &hr,
        json!({"id": "E-2", "name": "Zhang Wei 张伟", "manager": "E-1"}),
    );
    d.post("/v1/employees/E-2/roles", &hr, json!({"role": "sales-rep"}));
    let granted = d.post(
        "/v1/employees/E-2/permissions",
        &hr,
        json!({"module": "export", "level": "write"}),
    );
    let t = now();
    let acks = d.post("/v1/events", &crm, json!({"events": [
        {"id": "a1", "actor": "E-2", "occurred_at": t, "type": "logged_in", "ip": "10.0.0.7"},
        {"id": "a2", "actor": "E-2", "occurred_at": t, "type": "customer_created", "customer": "C-1", "name": "Acme", "owner": "E-2"},
        {"id": "a3", "actor": "E-2", "occurred_at": t, "type": "deal_created", "deal": "D-1", "customer": "C-1", "owner": "E-2",
         "amount": {"minor_units": 1250000, "currency": "EUR"}, "stage": "proposal"},
        {"id": "a4", "actor": "E-2", "occurred_at": t, "type": "customers_exported", "count": 1, "filter": "all"}
    ]}));
    let export = acks["results"][3].clone();
    d.post(
        "/v1/employees/E-2/resignation",
        &hr,
        json!({"last_day": "2030-01-31", "reason": "new job"}),
    );
    let departed = d.post(
        "/v1/employees/E-2/departure",
        &hr,
        json!({"reason": "resigned"}),
    );
    let kinds: Vec<&str> = departed["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "employee_departed",
            "account_disabled",
            "role_revoked",
            "permission_revoked",
            "handover_planned"
        ]
    );
    // Still in the middle of the handover: the plan shows what is left.
    d.applied(seq_of(&departed["recorded"][4]));
    let plan = d.ask("/v1/employees/E-2/handover");
    assert_eq!(
        (
            plan["remaining_customers"].as_u64(),
            plan["remaining_deals"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(plan["completed"], false);

    // The leaver logs in after being disabled: recorded, and flagged.
    let late = d.post("/v1/events", &crm, json!({"events": [{"id": "a5", "actor": "E-2", "occurred_at": now(), "type": "logged_in"}]}));
    assert_eq!(late["anomalies"][0]["rule"], "activity_after_disable");
    let moved = d.post(
        "/v1/employees/E-2/handover/transfers",
        &hr,
        json!({"transfers": [{"customer": "C-1"}, {"deal": "D-1"}]}),
    );
    assert_eq!(moved["recorded"].as_array().unwrap().len(), 4, "{moved}");
    let transfer = moved["recorded"][0].clone();
    d.post(
        "/v1/employees/E-2/handover/items/export_delivered/complete",
        &hr,
        json!({}),
    );
    let last = d.post(
        "/v1/employees/E-2/handover/items/access_reviewed/complete",
        &hr,
        json!({}),
    );
    assert_eq!(last["recorded"][1]["type"], "handover_completed");
    let head = seq_of(&last["recorded"][1]);
    d.applied(head);

    // The security team's questions, each answered from a position at or past the story's end.
    let exports = d.ask("/v1/events?actor=E-2&kind=customers_exported");
    assert!(exports["as_of_seq"].as_u64().unwrap() >= head);
    assert_eq!(exports["events"].as_array().unwrap().len(), 1);
    assert_eq!(exports["events"][0]["hash"], export["hash"]);
    assert_eq!(exports["events"][0]["seq"], export["seq"]);

    let timeline = d.ask("/v1/employees/E-2/timeline?limit=1000");
    let kinds: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "employee_hired",
        "role_granted",
        "logged_in",
        "customers_exported",
        "resignation_submitted",
        "employee_departed",
        "account_disabled",
        "handover_planned",
        "ownership_transferred",
        "handover_completed",
    ] {
        assert!(kinds.contains(&k), "the timeline holds {k}: {kinds:?}");
    }

    let departed = d.ask("/v1/employees?status=departed");
    let e2 = &departed["employees"][0];
    assert_eq!(
        (e2["id"].as_str(), e2["account"].as_str()),
        (Some("E-2"), Some("disabled"))
    );
    assert_eq!(e2["departure"]["successors"], json!(["E-1"]));
    assert_eq!(e2["departure"]["reason"], "resigned");

    let now_perms = d.ask("/v1/employees/E-2/permissions");
    assert_eq!(
        (now_perms["effective"].clone(), now_perms["roles"].clone()),
        (json!({}), json!([]))
    );
    // As they stood when the export permission was granted.
    let grant = d.ask(&format!("/v1/entries/{}", seq_of(&granted["recorded"][0])));
    let then = d.ask(&format!(
        "/v1/employees/E-2/permissions?at={}",
        grant["occurred_at"].as_str().unwrap()
    ));
    assert_eq!(then["effective"], json!({"export": "write"}));
    assert_eq!(then["roles"], json!(["sales-rep"]));

    let owners = d.ask("/v1/customers/C-1/owners");
    assert_eq!(owners["current_owner"], "E-1");
    assert_eq!(owners["history"][1]["hash"], transfer["hash"]);

    let plan = d.ask("/v1/employees/E-2/handover");
    assert_eq!(
        (
            plan["completed"].as_bool(),
            plan["remaining_customers"].as_u64()
        ),
        (Some(true), Some(0))
    );

    let entry = d.ask(&format!("/v1/entries/{head}"));
    assert_eq!(entry["hash"], last["recorded"][1]["hash"]);
    assert_eq!(entry["kind"], "handover_completed");

    // The auditors are audited: each of those reads is in the log, by the token's holder.
    // (Nine reads since `head`; status polls are not forensic reads and are not recorded.)
    d.applied(head + 9);
    let reads = d.ask("/v1/events?kind=audit_log_queried&limit=1000");
    let queries: Vec<&str> = reads["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "system:siem")
        .map(|e| e["fields"]["query"].as_str().unwrap())
        .collect();
    for q in [
        "GET /v1/employees/E-2/handover",
        "GET /v1/events?actor=E-2&kind=customers_exported",
        "GET /v1/customers/C-1/owners",
    ] {
        assert!(queries.contains(&q), "{q} was recorded: {queries:?}");
    }

    // Over NATS, the read side was fed by its durable consumer: it took the whole stream.
    if let Some(nats) = &d.nats {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let info = rt.block_on(async {
            let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
            let stream = js.get_stream(proto_types::nats::STREAM).await.unwrap();
            let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer("handover-query").await.unwrap();
            consumer.info().await.unwrap().clone()
        });
        assert!(
            info.delivered.stream_sequence > head && info.num_pending == 0,
            "{info:?}"
        );
    }
    let ledger_data = d.ledger_data.clone();
    d.stop();
    let (code, v) = verify_json(&["--data", path_str(&ledger_data)]);
    assert_eq!(code, 0, "{v}");
    assert!(v["entries"].as_u64().unwrap() > head + 10, "{v}");
}

#[test]
fn embedded_the_offboarding_story_is_recorded_verified_and_told_by_the_forensic_api() {
    let dir = tempfile::tempdir().unwrap();
    offboarding_story_is_told_by_the_forensic_api(Deployment::embedded(dir.path()));
}

#[test]
fn embedded_over_nats_the_offboarding_story_is_recorded_verified_and_told_by_the_forensic_api() {
    let dir = tempfile::tempdir().unwrap();
    offboarding_story_is_told_by_the_forensic_api(Deployment::embedded_over_nats(dir.path()));
}

#[test]
fn split_over_nats_the_offboarding_story_is_recorded_verified_and_told_by_the_forensic_api() {
    let dir = tempfile::tempdir().unwrap();
    offboarding_story_is_told_by_the_forensic_api(Deployment::split(dir.path()));
}

/// The query service killed with SIGKILL while entries stream in (with batches applied but not
/// yet flushed or acknowledged): started again, it holds every entry exactly once, verified.
#[test]
fn split_a_query_service_killed_mid_stream_resumes_with_every_entry_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Deployment::split(dir.path());
    let (write, crm) = (d.write.clone(), d.crm.clone());
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u64>>();
    let poster = std::thread::spawn(move || {
        for r in 0..30 {
            let t = now();
            let events: Vec<Value> = (0..200)
                .map(|i| {
                    json!({"id": format!("v{r}-{i}"), "actor": "E-1", "occurred_at": t,
                                "type": "customer_viewed", "customer": "C-1"})
                })
                .collect();
            let body = json!({ "events": events }).to_string();
            let (status, text) = http(&write, "POST", "/v1/events", Some(&crm), Some(&body));
            assert_eq!(status, 200, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let seqs = v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["seq"].as_u64().unwrap())
                .collect();
            tx.send(seqs).unwrap();
        }
    });
    let mut acked: Vec<u64> = Vec::new();
    for _ in 0..8 {
        acked.extend(rx.recv().unwrap());
    }
    // Kill it once it has applied something, while the rest is still coming.
    d.applied(acked[0]);
    let mut query = d.servers.remove(0);
    query.child.kill().unwrap(); // SIGKILL
    query.child.wait().unwrap();
    acked.extend(rx.iter().flatten());
    poster.join().unwrap();
    assert_eq!(acked.len(), 6000);

    let query = d.query.as_ref().unwrap().start();
    d.read = query.addr.clone();
    d.servers.insert(0, query);
    let last = *acked.iter().max().unwrap();
    d.applied(last);
    let status = d.ask("/v1/status");
    assert_eq!(status["integrity"], "ok", "{status}");
    let mut seen: Vec<u64> = Vec::new();
    let mut path = "/v1/events?kind=customer_viewed&limit=1000".to_string();
    loop {
        let page = d.ask(&path);
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/events?kind=customer_viewed&limit=1000&cursor={c}"),
            None => break,
        }
    }
    seen.sort_unstable();
    acked.sort_unstable();
    assert_eq!(seen, acked, "every acknowledged event once, none twice");
    d.stop();
}
