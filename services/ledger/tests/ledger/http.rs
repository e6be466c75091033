//! The write API through its real router: every status it promises, and that a refused request
//! writes nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use ledger::http::auth::{Scope, TokenRecord, TokenSet, new_token, token_hash};
use ledger::http::{AppState, router};
use ledger::{Ledger, LogStore, WriterConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) struct App {
    pub router: Router,
    pub ledger: Ledger,
    pub ingest: String,
    pub hr: String,
    pub admin: String,
    _dir: tempfile::TempDir,
}

fn app_with(config: WriterConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
    let (ledger, _writer) = Ledger::start(store, config).unwrap();
    let (ingest, hr, admin) = (new_token(), new_token(), new_token());
    let rec = |name: &str, t: &str, scopes: Vec<Scope>| TokenRecord {
        name: name.into(),
        hash: token_hash(t),
        scopes,
        expires_at: None,
    };
    let tokens = TokenSet::new(vec![
        rec("crm", &ingest, vec![Scope::Ingest]),
        rec("hr-system", &hr, vec![Scope::Hr]),
        rec("ops", &admin, vec![Scope::Admin]),
    ]);
    let router = router(AppState {
        ledger: ledger.clone(),
        tokens: Arc::new(tokens),
    });
    App {
        router,
        ledger,
        ingest,
        hr,
        admin,
        _dir: dir,
    }
}

pub(crate) fn app() -> App {
    app_with(WriterConfig::default())
}

pub(crate) struct Res {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl App {
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Body>,
        content_type: &str,
    ) -> Res {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(body.unwrap_or_else(Body::empty)).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Res {
            status,
            content_type,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Res {
        self.send(
            "POST",
            path,
            Some(token),
            Some(Body::from(body.to_string())),
            "application/json",
        )
        .await
    }

    pub async fn entries(&self) -> u64 {
        self.ledger.read(|s| s.applied).await.unwrap()
    }

    pub async fn hire(&self, id: &str, manager: Option<&str>) {
        let r = self
            .post(
                "/v1/employees",
                &self.hr,
                json!({"id": id, "name": format!("Name {id}"), "manager": manager}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

fn viewed(id: &str, actor: &str, customer: &str) -> Value {
    json!({"id": id, "actor": actor, "occurred_at": now(), "type": "customer_viewed", "customer": customer})
}

fn assert_problem(r: &Res, status: StatusCode, kind: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.text);
    assert_eq!(
        r.body["type"],
        format!("urn:handover:problem:{kind}"),
        "{}",
        r.text
    );
    assert_eq!(r.body["status"], status.as_u16());
    assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn ingest_acknowledges_each_event_with_its_seq_and_hash_and_a_retry_writes_nothing() {
    let app = app();
    let batch = json!({"events": [viewed("e1", "E-1", "C-1"), viewed("e2", "E-1", "C-2")]});
    let r = app.post("/v1/events", &app.ingest, batch.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(
        (results[0]["seq"].as_u64(), results[1]["seq"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(results[0]["hash"].as_str().unwrap().len(), 64);
    let again = app.post("/v1/events", &app.ingest, batch).await;
    assert_eq!(again.body["results"][1]["seq"], 1);
    assert_eq!(again.body["results"][1]["hash"], results[1]["hash"]);
    assert_eq!(again.body["results"][1]["duplicate"], true);
    assert_eq!(app.entries().await, 2);
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_and_with_the_wrong_scope_403() {
    let app = app();
    let batch = json!({"events": [viewed("e1", "E-1", "C-1")]});
    let none = app
        .send(
            "POST",
            "/v1/events",
            None,
            Some(Body::from(batch.to_string())),
            "application/json",
        )
        .await;
    assert_problem(&none, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(none.headers.contains_key(header::WWW_AUTHENTICATE));
    let forged = app.post("/v1/events", &new_token(), batch.clone()).await;
    assert_problem(&forged, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = app.post("/v1/events", &app.hr, batch.clone()).await;
    assert_problem(&wrong, StatusCode::FORBIDDEN, "forbidden");
    let wrong = app
        .post(
            "/v1/employees",
            &app.ingest,
            json!({"id": "E-1", "name": "x"}),
        )
        .await;
    assert_problem(&wrong, StatusCode::FORBIDDEN, "forbidden");
    let metrics = app.send("GET", "/metrics", Some(&app.hr), None, "").await;
    assert_problem(&metrics, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(app.entries().await, 0);
}

#[tokio::test]
async fn malformed_bodies_get_400_415_or_413_and_write_nothing() {
    let app = app();
    let r = app
        .send(
            "POST",
            "/v1/events",
            Some(&app.ingest),
            Some(Body::from("{\"events\": [")),
            "application/json",
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "malformed_json");
    let r = app
        .send(
            "POST",
            "/v1/events",
            Some(&app.ingest),
            Some(Body::from(
                json!({"events": [viewed("e1", "E-1", "C-1")]}).to_string(),
            )),
            "text/plain",
        )
        .await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // A missing field in the third event: the batch is refused, naming the index.
    let mut bad = viewed("e3", "E-1", "C-1");
    bad.as_object_mut().unwrap().remove("customer");
    let batch = json!({"events": [viewed("e1", "E-1", "C-1"), viewed("e2", "E-1", "C-1"), bad]});
    let r = app.post("/v1/events", &app.ingest, batch).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(r.body["index"], 2);
    assert!(
        r.body["detail"].as_str().unwrap().contains("customer"),
        "{}",
        r.text
    );
    let r = app.post("/v1/events", &app.ingest, json!({"events": [{"id": "x", "actor": "E-1", "occurred_at": "yesterday", "type": "logged_out"}]})).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(r.body["field"], "events[0].occurred_at");
    let huge = "x".repeat(ledger::http::MAX_BODY_BYTES + 10);
    let r = app
        .send(
            "POST",
            "/v1/events",
            Some(&app.ingest),
            Some(Body::from(huge)),
            "application/json",
        )
        .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(app.entries().await, 0);
}

#[tokio::test]
async fn impossible_values_get_422_naming_the_event_and_write_nothing() {
    let app = app();
    let future = (chrono::Utc::now() + chrono::TimeDelta::minutes(10)).to_rfc3339();
    let cases = [
        (
            json!({"id": "a", "actor": "E-1", "occurred_at": future, "type": "logged_out"}),
            "events[1].occurred_at",
        ),
        (
            json!({"id": "a", "actor": "", "occurred_at": now(), "type": "logged_out"}),
            "events[1].actor",
        ),
        (
            json!({"id": "a", "actor": "E-1", "occurred_at": now(), "type": "employee_departed"}),
            "events[1].type",
        ),
    ];
    for (bad, field) in cases {
        let r = app
            .post(
                "/v1/events",
                &app.ingest,
                json!({"events": [viewed("ok", "E-1", "C-1"), bad]}),
            )
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
        assert_eq!(
            (r.body["index"].as_u64(), r.body["field"].as_str()),
            (Some(1), Some(field)),
            "{}",
            r.text
        );
    }
    let r = app
        .post("/v1/events", &app.ingest, json!({"events": []}))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| viewed(&format!("e{i}"), "E-1", "C-1"))
        .collect();
    let r = app
        .post("/v1/events", &app.ingest, json!({"events": too_many}))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    assert_eq!(app.entries().await, 0);
}

#[tokio::test]
async fn an_event_id_reused_for_other_content_gets_409_and_the_batch_writes_nothing() {
    let app = app();
    let first = viewed("e1", "E-1", "C-1");
    app.post(
        "/v1/events",
        &app.ingest,
        json!({"events": [first.clone()]}),
    )
    .await;
    let mut changed = first.clone();
    changed["customer"] = json!("C-2");
    let r = app
        .post(
            "/v1/events",
            &app.ingest,
            json!({"events": [viewed("new", "E-1", "C-1"), changed]}),
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "conflict");
    assert_eq!(r.body["index"], 1);
    assert_eq!(app.entries().await, 1);
}

#[tokio::test]
async fn a_full_writer_queue_gets_429_with_retry_after() {
    let app = app_with(WriterConfig {
        queue_capacity: 2,
        max_group_events: 1,
    });
    // Hold the writer inside a read until the queue has been filled.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let ledger = app.ledger.clone();
    let held = tokio::spawn(async move {
        ledger
            .read(move |_| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
            .await
    });
    entered_rx.await.unwrap();
    let mut pending = Vec::new();
    loop {
        let entry = ledger::NewEntry::new(proto_types::Event {
            id: None,
            actor: proto_types::Actor::Employee(
                proto_types::ids::EmployeeId::parse("E-1").unwrap(),
            ),
            occurred_at: proto_types::Timestamp::now(),
            kind: proto_types::event::EventKind::LoggedOut,
        })
        .unwrap();
        match app.ledger.try_submit(vec![entry]) {
            Ok(p) => pending.push(p),
            Err(ledger::AppendError::QueueFull) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let r = app
        .post(
            "/v1/events",
            &app.ingest,
            json!({"events": [viewed("e1", "E-1", "C-1")]}),
        )
        .await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "queue_full");
    assert_eq!(r.headers.get(header::RETRY_AFTER).unwrap(), "1");
    release_tx.send(()).unwrap();
    held.await.unwrap().unwrap();
    for p in pending {
        p.await.unwrap().unwrap();
    }
    assert_eq!(
        app.entries().await,
        2,
        "the queued events, not the refused batch"
    );
}

#[tokio::test]
async fn departure_errors_are_404_409_and_422_and_write_nothing() {
    let app = app();
    app.hire("E-1", None).await;
    app.hire("E-2", Some("E-1")).await;
    app.hire("E-3", Some("E-1")).await;
    let customer = json!({"id": "c1", "actor": "E-2", "occurred_at": now(), "type": "customer_created",
                          "customer": "C-1", "name": "Acme", "owner": "E-2"});
    app.post("/v1/events", &app.ingest, json!({"events": [customer]}))
        .await;
    let base = app.entries().await;

    let r = app
        .post(
            "/v1/employees/E-404/departure",
            &app.hr,
            json!({"reason": "x"}),
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .post(
            "/v1/employees/E-2/departure",
            &app.hr,
            json!({"successors": {"C-1": "E-404"}}),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    let ok = app
        .post(
            "/v1/employees/E-3/departure",
            &app.hr,
            json!({"reason": "left"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let after_e3 = app.entries().await;
    let r = app
        .post(
            "/v1/employees/E-2/departure",
            &app.hr,
            json!({"successors": {"C-1": "E-3"}}),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    let r = app
        .post("/v1/employees/E-3/departure", &app.hr, json!({}))
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "conflict");
    assert_eq!(app.entries().await, after_e3, "refusals wrote nothing");
    assert!(after_e3 > base);

    let r = app
        .post(
            "/v1/employees/E-2/departure",
            &app.hr,
            json!({"reason": "resigned"}),
        )
        .await;
    let kinds: Vec<&str> = r.body["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["employee_departed", "account_disabled", "handover_planned"]
    );
    let r = app
        .post(
            "/v1/employees/E-2/handover/transfers",
            &app.hr,
            json!({"transfers": [{"customer": "C-9"}]}),
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "conflict");
    let r = app
        .post(
            "/v1/employees/E-2/handover/transfers",
            &app.hr,
            json!({"transfers": [{"customer": "C-1"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            "/v1/employees/E-2/handover/items/teleport/complete",
            &app.hr,
            json!({}),
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn an_action_by_a_departed_account_is_recorded_and_flagged_critical() {
    let app = app();
    app.hire("E-1", None).await;
    app.hire("E-2", Some("E-1")).await;
    app.post(
        "/v1/employees/E-2/departure",
        &app.hr,
        json!({"reason": "fired"}),
    )
    .await;
    let r = app
        .post("/v1/events", &app.ingest, json!({"events": [viewed("a", "E-1", "C-1"), viewed("b", "E-2", "C-1"), viewed("c", "E-77", "C-1")]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["results"].as_array().unwrap().len(),
        3,
        "every action recorded"
    );
    let anomalies = r.body["anomalies"].as_array().unwrap();
    assert_eq!(anomalies.len(), 2, "{}", r.text);
    assert_eq!(
        (
            anomalies[0]["index"].as_u64(),
            anomalies[0]["rule"].as_str()
        ),
        (Some(1), Some("activity_after_disable"))
    );
    assert_eq!(anomalies[0]["severity"], "critical");
    assert!(anomalies[0]["seconds_since_disable"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        (
            anomalies[1]["index"].as_u64(),
            anomalies[1]["rule"].as_str()
        ),
        (Some(2), Some("unknown_actor"))
    );
}

#[tokio::test]
async fn health_needs_no_token_and_metrics_count_appends_and_rejects() {
    let app = app();
    let r = app.send("GET", "/healthz", None, None, "").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.send("GET", "/readyz", None, None, "").await;
    assert_eq!(r.status, StatusCode::OK);
    app.post(
        "/v1/events",
        &app.ingest,
        json!({"events": [viewed("e1", "E-1", "C-1")]}),
    )
    .await;
    app.post("/v1/events", &app.ingest, json!({"events": []}))
        .await;
    let r = app
        .send("GET", "/metrics", Some(&app.admin), None, "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/plain"));
    assert!(
        r.text.contains("handover_events_appended_total 1\n"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("handover_rejected_requests_total{kind=\"unprocessable\"} 1\n"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("handover_commit_seconds_count 1\n"),
        "{}",
        r.text
    );
    assert!(!r.text.contains(&app.admin) && !r.text.contains(&app.ingest));
    let r = app
        .send("GET", "/v1/nope", Some(&app.admin), None, "")
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_lists_exactly_the_routes_that_answer() {
    let app = app();
    let r = app
        .send(
            "GET",
            "/v1/openapi.json",
            Some(&app.ingest.clone()),
            None,
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.body["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        r.body["openapi"]
    );
    let paths = r.body["paths"].as_object().unwrap();
    for expected in [
        "/v1/events",
        "/v1/employees",
        "/v1/employees/{id}/departure",
        "/v1/employees/{id}/handover/transfers",
        "/v1/employees/{id}/handover/items/{item}/complete",
        "/scim/v2/Users/{id}",
        "/scim/v2/ServiceProviderConfig",
        "/healthz",
        "/metrics",
        "/v1/openapi.json",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the document"
        );
    }
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "E-1")
            .replace("{role}", "r")
            .replace("{module}", "export")
            .replace("{item}", "export_delivered");
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
        {
            operations += 1;
            let res = app
                .send(&method.to_uppercase(), &concrete, None, None, "")
                .await;
            assert!(
                res.status != StatusCode::NOT_FOUND && res.status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but the router answers {}",
                res.status
            );
        }
    }
    assert_eq!(operations, 30, "every operation of the API is documented");
    // And a route that is not documented does not answer.
    let r = app
        .send("POST", "/v1/employees/E-1/promote", None, None, "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let none = app.send("GET", "/v1/openapi.json", None, None, "").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_range_of_the_log_comes_as_a_verifiable_export_for_audit_readers_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
    let (ledger, _w) = Ledger::start(store, WriterConfig::default()).unwrap();
    let (auditor, crm) = (new_token(), new_token());
    let tokens = TokenSet::new(vec![
        TokenRecord {
            name: "siem".into(),
            hash: token_hash(&auditor),
            scopes: vec![Scope::AuditRead],
            expires_at: None,
        },
        TokenRecord {
            name: "crm".into(),
            hash: token_hash(&crm),
            scopes: vec![Scope::Ingest],
            expires_at: None,
        },
    ]);
    let app = App {
        router: router(AppState {
            ledger: ledger.clone(),
            tokens: Arc::new(tokens),
        }),
        ledger,
        ingest: crm.clone(),
        hr: String::new(),
        admin: String::new(),
        _dir: dir,
    };
    let events: Vec<Value> = (0..10)
        .map(|i| viewed(&format!("e{i}"), "E-1", "C-1"))
        .collect();
    let acks = app
        .post("/v1/events", &crm, json!({ "events": events }))
        .await;
    let get = |path: &str, token: String| {
        let app = &app;
        let path = path.to_string();
        async move {
            let res = app
                .router
                .clone()
                .oneshot(
                    Request::builder()
                        .uri(path)
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            let ct = res
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_string());
            (
                status,
                ct,
                res.into_body().collect().await.unwrap().to_bytes(),
            )
        }
    };
    let (status, ct, body) = get("/v1/log?from=3&limit=4", auditor.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("application/vnd.handover.log-export"));
    let report = proto_types::export::verify_export(&body[..], |_, _| {}).unwrap();
    assert_eq!(
        (report.header.first_seq, report.verified, report.broken),
        (3, 4, None)
    );
    assert_eq!(
        hex::encode(report.header.anchor),
        acks.body["results"][2]["hash"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(report.head_hash),
        acks.body["results"][6]["hash"].as_str().unwrap()
    );
    // At the head, fewer entries; from 0, the genesis anchor.
    let (_, _, body) = get("/v1/log?from=8&limit=100", auditor.clone()).await;
    assert_eq!(
        proto_types::export::verify_export(&body[..], |_, _| {})
            .unwrap()
            .verified,
        2
    );
    let (_, _, body) = get("/v1/log", auditor.clone()).await;
    let all = proto_types::export::verify_export(&body[..], |_, _| {}).unwrap();
    assert_eq!(
        (all.header.anchor, all.verified),
        (proto_types::chain::GENESIS, 10)
    );
    assert_eq!(
        get("/v1/log?limit=0", auditor.clone()).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        get("/v1/log?from=11", auditor.clone()).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(get("/v1/log", crm).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_role_is_defined_by_put_and_bad_definitions_are_refused_writing_nothing() {
    let app = app();
    let put = |body: &str, token: Option<String>| {
        let app = &app;
        let body = body.to_string();
        async move {
            app.send(
                "PUT",
                "/v1/roles/sales-rep",
                token.as_deref(),
                Some(Body::from(body)),
                "application/json",
            )
            .await
        }
    };
    let ok = put(
        r#"{"permissions": {"customers": "write", "export": "read"}}"#,
        Some(app.hr.clone()),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["recorded"][0]["type"], "role_defined");
    let head = *app.ledger.head_watch().borrow();
    for (body, token, status) in [
        (
            r#"{"permissions": {"customers": "write", "export": "read"}}"#,
            Some(app.hr.clone()),
            StatusCode::OK,
        ),
        (
            r#"{"permissions": {"payroll": "read"}}"#,
            Some(app.hr.clone()),
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"permissions": {"customers": "owner"}}"#,
            Some(app.hr.clone()),
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"grants": {}}"#,
            Some(app.hr.clone()),
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"permissions": {}}"#,
            Some(app.ingest.clone()),
            StatusCode::FORBIDDEN,
        ),
        (r#"{"permissions": {}}"#, None, StatusCode::UNAUTHORIZED),
    ] {
        let r = put(body, token).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        if status != StatusCode::OK {
            assert_eq!(r.content_type, "application/problem+json");
        }
    }
    let bad_name = app
        .send(
            "PUT",
            "/v1/roles/%20padded",
            Some(&app.hr),
            Some(Body::from(r#"{"permissions": {}}"#)),
            "application/json",
        )
        .await;
    assert_problem(&bad_name, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(bad_name.body["field"], "role");
    assert_eq!(
        *app.ledger.head_watch().borrow(),
        head,
        "an unchanged definition and every refusal write nothing"
    );
}

#[tokio::test]
async fn the_crm_reports_a_customers_contact_person_and_a_contact_without_a_name_is_refused() {
    let app = app();
    let ok = app
        .post(
            "/v1/events",
            &app.ingest,
            json!({"events": [{"id": "k1", "actor": "system:crm", "occurred_at": now(),
                "type": "customer_contact_recorded", "customer": "C-1", "name": "Li Na 李娜",
                "role": "Purchasing", "email": "li.na@example.com"}]}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let head = *app.ledger.head_watch().borrow();
    let bad = app
        .post(
            "/v1/events",
            &app.ingest,
            json!({"events": [{"id": "k2", "actor": "system:crm", "occurred_at": now(),
                "type": "customer_contact_recorded", "customer": "C-1"}]}),
        )
        .await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(*app.ledger.head_watch().borrow(), head);
}

#[tokio::test]
async fn an_expired_token_is_refused_and_says_when_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
    let (ledger, _w) = Ledger::start(store, WriterConfig::default()).unwrap();
    let (old, current) = (new_token(), new_token());
    let hour = proto_types::Timestamp::MICROS_PER_SECOND * 3600;
    let now = proto_types::Timestamp::now().0;
    let tokens = TokenSet::new(vec![
        TokenRecord {
            name: "contractor".into(),
            hash: token_hash(&old),
            scopes: vec![Scope::Ingest],
            expires_at: Some(proto_types::Timestamp(now - hour)),
        },
        TokenRecord {
            name: "crm".into(),
            hash: token_hash(&current),
            scopes: vec![Scope::Ingest],
            expires_at: Some(proto_types::Timestamp(now + hour)),
        },
    ]);
    let app = App {
        router: router(AppState {
            ledger: ledger.clone(),
            tokens: Arc::new(tokens),
        }),
        ledger: ledger.clone(),
        ingest: current.clone(),
        hr: String::new(),
        admin: String::new(),
        _dir: dir,
    };
    let batch = json!({"events": [viewed("e1", "E-1", "C-1")]});
    let refused = app.post("/v1/events", &old, batch.clone()).await;
    assert_problem(&refused, StatusCode::UNAUTHORIZED, "unauthorized");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"contractor\" expired at"),
        "the refusal says which token expired and when: {detail}"
    );
    assert_eq!(
        ledger.head_watch().borrow().to_owned(),
        0,
        "nothing written"
    );
    let accepted = app.post("/v1/events", &current, batch).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
}
