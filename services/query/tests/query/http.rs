//! The forensic API through its real router (no socket), fed by the ledger in-process.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use ledger::Ledger;
use ledger::http::auth::{Scope, TokenRecord, TokenSet, new_token, token_hash};
use proto_types::event::EventKind;
use query::ReadSide;
use query::http::AuditSink;
use query::source::{LogReaderHandle, follow_ledger};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{by, cust, ev, story};

/// Requests to a router with a token of `audit:read`.
pub struct Client {
    pub router: Router,
    pub token: String,
}

impl Client {
    pub fn over(router: Router, token: String) -> Client {
        Client { router, token }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, String, Value) {
        let mut req = Request::builder().uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            ct,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn ok(&self, path: &str) -> Value {
        let (status, _, body) = self.get(path, Some(&self.token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}

/// A ledger holding the story, and the read side over it, fed in-process.
pub struct Api {
    pub client: Client,
    pub ledger: Ledger,
    pub read: ReadSide,
    pub siem: String,
    pub crm: String,
    pub hr: String,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Api {
    pub async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = ledger::LogStore::open_or_create(&dir.path().join("ledger.redb")).unwrap();
        let (ledger, _writer) = Ledger::start(store, ledger::WriterConfig::default()).unwrap();
        ledger.append(story()).await.unwrap();
        let read = ReadSide::open(&dir.path().join("query.redb")).unwrap();
        let (siem, crm, hr) = (new_token(), new_token(), new_token());
        let tokens = Arc::new(TokenSet::new(vec![
            TokenRecord {
                name: "siem".into(),
                hash: token_hash(&siem),
                scopes: vec![Scope::AuditRead],
                expires_at: None,
            },
            TokenRecord {
                name: "crm".into(),
                hash: token_hash(&crm),
                scopes: vec![Scope::Ingest],
                expires_at: None,
            },
            TokenRecord {
                name: "hr-system".into(),
                hash: token_hash(&hr),
                scopes: vec![Scope::Hr],
                expires_at: None,
            },
        ]));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(follow_ledger(
            read.applier.clone(),
            LogReaderHandle::of(&ledger),
            stop_rx,
        ));
        let router = query::http::router(read.http_state(tokens, AuditSink::Local(ledger.clone())));
        let api = Api {
            client: Client::over(router, siem.clone()),
            ledger,
            read,
            siem,
            crm,
            hr,
            _stop: stop,
            _dir: dir,
        };
        api.caught_up().await;
        api
    }

    /// Waits until the read side has applied everything the ledger committed.
    pub async fn caught_up(&self) {
        let head = *self.ledger.head_watch().borrow();
        self.read
            .status
            .clone()
            .wait_for(|s| s.next_seq >= head)
            .await
            .unwrap();
    }

    pub fn head(&self) -> u64 {
        *self.ledger.head_watch().borrow()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, String, Value) {
        self.client.get(path, token).await
    }

    pub async fn ok(&self, path: &str) -> Value {
        self.client.ok(path).await
    }

    /// The `AuditLogQueried` events in the ledger: (actor, query).
    pub fn audit_records(&self) -> Vec<(String, String)> {
        crate::stored(&self.ledger)
            .iter()
            .filter_map(|(_, b)| {
                let e = proto_types::EntryRef::parse(b).unwrap();
                let ev = proto_types::Event::decode(e.payload()).unwrap();
                match ev.kind {
                    EventKind::AuditLogQueried { query, .. } => Some((ev.actor.to_string(), query)),
                    _ => None,
                }
            })
            .collect()
    }
}

fn seqs(body: &Value) -> Vec<u64> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_forensic_query_states_its_log_position_and_is_recorded_before_it_is_answered() {
    let api = Api::start().await;
    let hashes: Vec<String> = crate::stored(&api.ledger)
        .iter()
        .map(|(_, b)| hex::encode(proto_types::EntryRef::parse(b).unwrap().hash()))
        .collect();

    let exports = api.ok("/v1/events?actor=E-2&kind=customers_exported").await;
    assert_eq!(seqs(&exports), vec![11]);
    assert_eq!(exports["as_of_seq"], 18);
    assert_eq!(exports["head_hash"], hashes[18]);
    assert_eq!(exports["events"][0]["fields"]["count"], 2);
    assert_eq!(exports["next_cursor"], Value::Null);
    // Filtered by actor: only what E-2 did, not what was done to E-2's account.
    let by_e2 = api.ok("/v1/events?actor=E-2").await;
    assert_eq!(seqs(&by_e2), vec![4, 5, 6, 7, 9, 11, 18]);
    let by_hr = api
        .ok("/v1/events?actor=system:hr-system&customer=C-1")
        .await;
    assert_eq!(seqs(&by_hr), vec![15, 16]);
    // The first read is in the log now, and the next answer reflects it.
    api.caught_up().await;
    let c1 = api
        .ok("/v1/events?customer=C-1&to=2026-09-01T00:25:00Z")
        .await;
    assert_eq!(seqs(&c1), vec![4, 6, 7, 9]);
    assert_eq!(
        c1["as_of_seq"], 21,
        "the three recorded reads are entries 19 to 21"
    );

    let timeline = api.ok("/v1/employees/E-2/timeline").await;
    let kinds: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "employee_hired",
        "customers_exported",
        "employee_departed",
        "handover_planned",
        "ownership_transferred",
    ] {
        assert!(kinds.contains(&k), "timeline holds {k}: {kinds:?}");
    }

    let departed = api.ok("/v1/employees?status=departed").await;
    assert_eq!(departed["employees"].as_array().unwrap().len(), 1);
    let e2 = &departed["employees"][0];
    assert_eq!(
        (e2["id"].as_str(), e2["departure"]["reason"].as_str()),
        (Some("E-2"), Some("resigned"))
    );
    assert_eq!(e2["departure"]["successors"], json!(["E-1"]));
    assert_eq!(
        e2["departure"]["effective_at"],
        "2026-09-02T09:20:00.000000Z"
    );
    let active = api.ok("/v1/employees?status=active").await;
    assert_eq!(active["employees"][0]["id"], "E-1");

    let before = api
        .ok("/v1/employees/E-2/permissions?at=2026-09-01T00:05:00Z")
        .await;
    assert_eq!(before["account"], "active");
    assert_eq!(before["roles"], json!(["sales-rep"]));
    assert_eq!(before["effective"], json!({"export": "write"}));
    let now = api.ok("/v1/employees/E-2/permissions").await;
    assert_eq!(
        (now["account"].as_str(), &now["roles"], &now["effective"]),
        (Some("disabled"), &json!([]), &json!({}))
    );
    let unhired = api
        .ok("/v1/employees/E-2/permissions?at=2026-08-01T00:00:00Z")
        .await;
    assert_eq!(unhired["account"], "not_hired");

    let owners = api.ok("/v1/customers/C-1/owners").await;
    assert_eq!(owners["current_owner"], "E-1");
    let history = owners["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (history[0]["owner"].as_str(), history[0]["reason"].as_str()),
        (Some("E-2"), Some("created"))
    );
    assert_eq!(history[0]["until"], history[1]["from"]);
    assert_eq!(
        (
            history[1]["previous"].as_str(),
            history[1]["reason"].as_str()
        ),
        (Some("E-2"), Some("handover"))
    );
    assert_eq!(history[1]["hash"], hashes[16]);

    let handover = api.ok("/v1/employees/E-2/handover").await;
    assert_eq!(handover["remaining_customers"], 1);
    assert_eq!(handover["remaining_deals"], 1);
    assert_eq!(
        handover["to_transfer"][0]["resource"],
        json!({"type": "customer", "id": "C-2"})
    );
    assert!(
        !handover["open_items"]
            .as_array()
            .unwrap()
            .contains(&json!("access_reviewed"))
    );

    let entry = api.ok("/v1/entries/11").await;
    assert_eq!(entry["hash"], hashes[11]);
    assert_eq!(entry["prev"], hashes[10]);
    assert_eq!(
        entry["bytes"],
        hex::encode(&crate::stored(&api.ledger)[11].1)
    );
    assert_eq!(entry["kind"], "customers_exported");

    // Thirteen answers, thirteen records, each naming the token's holder and what was asked.
    let records = api.audit_records();
    assert_eq!(records.len(), 13, "{records:?}");
    assert!(records.iter().all(|(actor, _)| actor == "system:siem"));
    assert_eq!(
        records[0].1,
        "GET /v1/events?actor=E-2&kind=customers_exported"
    );
    assert_eq!(records[1].1, "GET /v1/events?actor=E-2");
    assert_eq!(records[12].1, "GET /v1/entries/11");
}

#[tokio::test]
async fn bad_queries_get_a_problem_with_the_right_status_and_record_nothing() {
    let api = Api::start().await;
    let head = api.head();
    let crm = api.crm.clone();
    let siem = Some(api.siem.as_str());
    let cases: Vec<(&str, Option<&str>, StatusCode)> = vec![
        ("/v1/events", None, StatusCode::UNAUTHORIZED),
        (
            "/v1/events",
            Some("hov_not-a-token"),
            StatusCode::UNAUTHORIZED,
        ),
        ("/v1/events", Some(&crm), StatusCode::FORBIDDEN),
        (
            "/v1/employees/E-2/timeline",
            Some(&crm),
            StatusCode::FORBIDDEN,
        ),
        ("/v1/events?from=yesterday", siem, StatusCode::BAD_REQUEST),
        ("/v1/events?limit=ten", siem, StatusCode::BAD_REQUEST),
        ("/v1/events?cursor=00ff", siem, StatusCode::BAD_REQUEST),
        ("/v1/events?limit=0", siem, StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/v1/events?limit=1001",
            siem,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/events?kind=customer_stolen",
            siem,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/events?from=2026-09-02T00:00:00Z&to=2026-09-01T00:00:00Z",
            siem,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/employees?status=retired",
            siem,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/events?format=xml",
            siem,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/employees/E-2/timeline?format=pdf",
            siem,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/v1/employees/E-404/timeline", siem, StatusCode::NOT_FOUND),
        (
            "/v1/employees/E-404/permissions",
            siem,
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/employees/E-2/permissions?at=soon",
            siem,
            StatusCode::BAD_REQUEST,
        ),
        ("/v1/customers/C-404/owners", siem, StatusCode::NOT_FOUND),
        ("/v1/employees/E-1/handover", siem, StatusCode::NOT_FOUND),
        ("/v1/entries/999", siem, StatusCode::NOT_FOUND),
        ("/v1/entries/minus-one", siem, StatusCode::BAD_REQUEST),
        ("/v1/nothing-here", siem, StatusCode::NOT_FOUND),
    ];
    for (path, token, want) in cases {
        let (status, ct, body) = api.get(path, token).await;
        assert_eq!(status, want, "{path}: {body}");
        assert_eq!(ct, "application/problem+json", "{path}");
        assert_eq!(body["status"], want.as_u16(), "{path}");
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:handover:problem:")
        );
    }
    assert_eq!(
        api.head(),
        head,
        "a refused read is not recorded (nothing was read)"
    );
    assert!(api.audit_records().is_empty());
}

#[tokio::test]
async fn a_listing_paged_by_its_cursor_neither_skips_nor_repeats_while_the_log_grows() {
    let api = Api::start().await;
    let mut all = seqs(&api.ok("/v1/events?limit=1000").await);
    // That read is entry 19 (dated now, after the story): the first page will reflect it.
    api.caught_up().await;
    all.push(19);
    let mut paged = Vec::new();
    let mut path = "/v1/events?limit=4".to_string();
    let mut as_of = None;
    for round in 0.. {
        let page = api.ok(&path).await;
        assert_eq!(
            *as_of.get_or_insert(page["as_of_seq"].clone()),
            page["as_of_seq"],
            "every page reflects the first page's position"
        );
        paged.extend(seqs(&page));
        // Meanwhile, actions dated before and after the listing's pages arrive.
        api.ledger
            .append(vec![
                ev(
                    &format!("early-{round}"),
                    by("E-1"),
                    15,
                    EventKind::CustomerViewed {
                        customer: cust("C-1"),
                    },
                ),
                ev(
                    &format!("late-{round}"),
                    by("E-1"),
                    5000,
                    EventKind::CustomerViewed {
                        customer: cust("C-1"),
                    },
                ),
            ])
            .await
            .unwrap();
        api.caught_up().await;
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/events?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        paged, all,
        "the pages are exactly the listing as of the first page"
    );
}

/// The same listing as CSV, page by page through the cursor header, is the JSON listing row for
/// row; the position comes in headers; and each page is recorded as a read like any other.
#[tokio::test]
async fn a_listing_comes_as_csv_too_with_its_position_and_cursor_in_headers() {
    let api = Api::start().await;
    let json = api.ok("/v1/employees/E-2/timeline?limit=1000").await;
    api.caught_up().await;
    let recorded = api.audit_records().len();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut path = "/v1/employees/E-2/timeline?limit=3&format=csv".to_string();
    let mut pages = 0;
    let mut first = None;
    loop {
        let req = Request::builder()
            .uri(&path)
            .header(header::AUTHORIZATION, format!("Bearer {}", api.siem))
            .body(Body::empty())
            .unwrap();
        let res = api.client.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let h = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(h("content-type").unwrap(), "text/csv; charset=utf-8");
        let at = (
            h("handover-as-of-seq").unwrap(),
            h("handover-head-hash").unwrap(),
        );
        assert_eq!(
            *first.get_or_insert(at.clone()),
            at,
            "every page states the first page's position"
        );
        let next = h("handover-next-cursor");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..3], "\u{feff}".as_bytes());
        let mut reader = csv::Reader::from_reader(&body[3..]);
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            vec![
                "seq",
                "occurred_at",
                "recorded_at",
                "actor",
                "kind",
                "event_id",
                "fields",
                "hash",
                "prev"
            ]
        );
        rows.extend(
            reader
                .records()
                .map(|r| r.unwrap().iter().map(str::to_string).collect()),
        );
        pages += 1;
        match next {
            Some(c) => path = format!("/v1/employees/E-2/timeline?limit=3&format=csv&cursor={c}"),
            None => break,
        }
    }
    // The JSON read was recorded in between: the CSV listing is one entry further on.
    let (as_of, head) = first.unwrap();
    assert_eq!(as_of, (json["as_of_seq"].as_u64().unwrap() + 1).to_string());
    let recorded_entry = api.ok(&format!("/v1/entries/{as_of}")).await;
    assert_eq!(recorded_entry["hash"], head.as_str());
    let events = json["events"].as_array().unwrap();
    assert!(
        pages > 1 && events.len() > 3,
        "the listing took several pages"
    );
    assert_eq!(rows.len(), events.len());
    for (row, e) in rows.iter().zip(events) {
        assert_eq!(row[0], e["seq"].to_string());
        assert_eq!(row[1], e["occurred_at"].as_str().unwrap());
        assert_eq!(row[3], e["actor"].as_str().unwrap());
        assert_eq!(row[4], e["kind"].as_str().unwrap());
        assert_eq!(
            serde_json::from_str::<Value>(&row[6]).unwrap(),
            e["fields"],
            "fields as JSON in one cell"
        );
        assert_eq!(row[7], e["hash"].as_str().unwrap());
    }
    api.caught_up().await;
    assert_eq!(
        api.audit_records().len(),
        recorded + pages + 1,
        "each CSV page is recorded as a read (and so was the entry read)"
    );
}

#[tokio::test]
async fn status_and_integrity_say_how_far_the_read_side_is() {
    let api = Api::start().await;
    let (status, _, s) = api.get("/v1/status", Some(&api.siem)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (s["lag"].as_u64(), s["integrity"].as_str()),
        (Some(0), Some("ok"))
    );
    assert_eq!(s["applied_seq_next"], api.head());
    let (_, _, i) = api.get("/v1/integrity", Some(&api.siem)).await;
    assert_eq!(
        (i["status"].as_str(), i["break"].clone()),
        (Some("ok"), Value::Null)
    );
    assert_eq!(i["verified_through_seq"], api.head() - 1);
    let (status, _, _) = api.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = api.get("/v1/status", Some(&api.crm)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn customers_left_without_an_active_owner_are_listed_for_hr_longest_first() {
    let api = Api::start().await;
    let (status, _, body) = api.get("/v1/handover/orphaned", Some(&api.hr)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // E-2 left with C-1 and C-2; C-1 was handed over, C-2 was not.
    assert_eq!(body["count"], 1);
    let c2 = &body["orphaned"][0];
    assert_eq!(
        (
            c2["customer"].as_str(),
            c2["owner"].as_str(),
            c2["owner_status"].as_str()
        ),
        (Some("C-2"), Some("E-2"), Some("departed"))
    );
    assert_eq!(c2["planned_successor"], "E-1");
    assert_eq!(c2["since"], "2026-09-02T09:20:00.000000Z");
    assert!(c2["orphaned_for_days"].as_u64().unwrap() >= 1);
    // Handed over now: it leaves the list.
    api.ledger
        .append(vec![ev(
            "late-transfer",
            crate::hr(),
            2300,
            EventKind::OwnershipTransferred {
                resource: proto_types::event::Resource::Customer(cust("C-2")),
                from: crate::emp("E-2"),
                to: crate::emp("E-1"),
                reason: "handover".into(),
            },
        )])
        .await
        .unwrap();
    api.caught_up().await;
    let after = api.ok("/v1/handover/orphaned").await;
    assert_eq!(after["count"], 0, "{after}");
    let (status, _, _) = api.get("/v1/handover/orphaned", Some(&api.crm)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn effective_permissions_at_a_time_follow_the_role_definitions_of_that_time() {
    let api = Api::start().await;
    // sales-rep (granted to E-2 at minute 2) is defined only at minute 1500.
    api.ledger
        .append(vec![ev(
            "define-rep",
            crate::hr(),
            1500,
            EventKind::RoleDefined {
                role: proto_types::ids::RoleName::parse("sales-rep").unwrap(),
                permissions: vec![
                    (
                        proto_types::event::Module::Customers,
                        proto_types::event::Level::Write,
                    ),
                    (
                        proto_types::event::Module::Export,
                        proto_types::event::Level::Read,
                    ),
                ],
            },
        )])
        .await
        .unwrap();
    api.caught_up().await;
    let before = api
        .ok("/v1/employees/E-2/permissions?at=2026-09-01T08:00:00Z")
        .await;
    assert_eq!(before["effective"], json!({"export": "write"}));
    assert_eq!(before["role_definitions"], json!({"sales-rep": null}));
    let after = api
        .ok("/v1/employees/E-2/permissions?at=2026-09-02T02:00:00Z")
        .await;
    assert_eq!(
        after["effective"],
        json!({"customers": "write", "export": "write"}),
        "the higher of the role's read and the direct write"
    );
    assert_eq!(
        after["role_definitions"],
        json!({"sales-rep": {"customers": "write", "export": "read"}})
    );
    // Departed since: nothing, whatever the roles say.
    let now = api.ok("/v1/employees/E-2/permissions").await;
    assert_eq!(now["effective"], json!({}));
}

impl Client {
    /// The raw body of a GET, with its content type.
    pub async fn raw(&self, path: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
        let req = Request::builder()
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, ct, bytes.to_vec())
    }
}

#[tokio::test]
async fn a_leavers_customers_deals_and_activity_export_as_csv_json_and_ndjson() {
    let api = Api::start().await;
    let tricky = "Zhang \"Big\" Trading, 张伟贸易\nGmbH";
    api.ledger
        .append(vec![
            ev(
                "tricky",
                by("E-2"),
                1200,
                EventKind::CustomerCreated {
                    customer: cust("C-3"),
                    name: tricky.into(),
                    owner: crate::emp("E-2"),
                },
            ),
            ev(
                "contact",
                crate::hr(),
                1201,
                EventKind::CustomerContactRecorded {
                    customer: cust("C-3"),
                    name: "Li Na 李娜".into(),
                    role: "Head of Purchasing".into(),
                    email: "li.na@zhang.example".into(),
                    phone: "+86 10 5555 0100".into(),
                },
            ),
            // Two more deals on C-3: E-2's, won; and E-1's, which is not E-2's to export.
            ev(
                "d3",
                by("E-2"),
                1202,
                EventKind::DealCreated {
                    deal: proto_types::ids::DealId::parse("D-3").unwrap(),
                    customer: cust("C-3"),
                    owner: crate::emp("E-2"),
                    amount: usd(50_000),
                    stage: "proposal".into(),
                },
            ),
            ev(
                "d4",
                by("E-1"),
                1203,
                EventKind::DealCreated {
                    deal: proto_types::ids::DealId::parse("D-4").unwrap(),
                    customer: cust("C-3"),
                    owner: crate::emp("E-1"),
                    amount: usd(70_000),
                    stage: "qualified".into(),
                },
            ),
            ev(
                "d3-won",
                by("E-2"),
                1204,
                EventKind::DealClosed {
                    deal: proto_types::ids::DealId::parse("D-3").unwrap(),
                    outcome: proto_types::event::DealOutcome::Won,
                    amount: usd(48_000),
                },
            ),
        ])
        .await
        .unwrap();
    api.caught_up().await;
    let siem = api.siem.clone();
    let get = |path: &str| {
        let (c, path, siem) = (&api.client, path.to_string(), siem.clone());
        async move { c.raw(&path, &siem).await }
    };

    // CSV: a BOM, the header, one row per customer; quoting survives commas, quotes, newlines
    // and Chinese.
    let (status, ct, body) = get("/v1/employees/E-2/export?days=365").await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    assert_eq!(&body[..3], "\u{feff}".as_bytes());
    let mut reader = csv::Reader::from_reader(&body[3..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        vec![
            "customer",
            "name",
            "contacts",
            "owner_now",
            "owned_from",
            "owned_until",
            "interactions",
            "last_interaction_at",
            "last_interaction"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let by_id: std::collections::BTreeMap<&str, &csv::StringRecord> =
        rows.iter().map(|r| (&r[0], r)).collect();
    assert_eq!(
        by_id.keys().copied().collect::<Vec<_>>(),
        vec!["C-1", "C-2", "C-3"]
    );
    assert_eq!(&by_id["C-3"][1], tricky);
    assert_eq!(
        (&by_id["C-1"][3], &by_id["C-1"][5]),
        ("E-1", "2026-09-02T11:00:00.000000Z")
    );
    assert_eq!((&by_id["C-2"][3], &by_id["C-2"][5]), ("E-2", ""));
    assert_eq!(
        &by_id["C-3"][2],
        "Li Na 李娜 (Head of Purchasing) <li.na@zhang.example> +86 10 5555 0100"
    );
    // Within the default 90 days, C-1 (handed over in September) is no longer the leaver's.
    let (_, _, body) = get("/v1/employees/E-2/export").await;
    let ids: Vec<String> = csv::Reader::from_reader(&body[3..])
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    assert_eq!(ids, vec!["C-2", "C-3"]);

    // JSON: the position, and each customer's history of interactions.
    let (_, ct, body) = get("/v1/employees/E-2/export?format=json&days=365").await;
    assert_eq!(ct, "application/json");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["as_of_seq"].as_u64().unwrap() >= 19);
    let c1 = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["customer"] == "C-1")
        .unwrap();
    let c3 = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["customer"] == "C-3")
        .unwrap();
    assert_eq!(c3["contacts"][0]["email"], "li.na@zhang.example");
    let kinds: Vec<&str> = c1["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "customer_created",
            "deal_created",
            "customer_viewed",
            "deal_updated",
            "handover_planned",
            "ownership_transferred"
        ]
    );

    // Deals, with amounts and the latest stage.
    let (_, ct, body) = get("/v1/employees/E-2/export?format=ndjson&what=deals&days=365").await;
    assert_eq!(ct, "application/x-ndjson");
    let lines: Vec<Value> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |l: &Value| {
        (
            l["deal"].as_str().map(str::to_string),
            l["customer"].as_str().map(str::to_string),
            l["amount"].as_str().map(str::to_string),
            l["currency"].as_str().map(str::to_string),
            l["stage"].as_str().map(str::to_string),
            l["status"].as_str().map(str::to_string),
        )
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        lines.iter().map(row).collect::<Vec<_>>(),
        vec![
            (
                s("D-1"),
                s("C-1"),
                s("9900.00"),
                s("EUR"),
                s("negotiation"),
                s("open")
            ),
            (
                s("D-3"),
                s("C-3"),
                s("48000.00"),
                s("USD"),
                s("proposal"),
                s("won")
            ),
        ]
    );
    assert!(lines[1]["closed_at"].is_string());

    // Activity: only what E-2 did (the setup's 4–19 and 18; here 21 and 23, not E-1's 22).
    let (_, _, body) = get("/v1/employees/E-2/export?format=ndjson&what=activity&days=365").await;
    let seqs: Vec<u64> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        vec![4, 5, 6, 7, 9, 11, 19, 21, 23, 18],
        "by the time they happened"
    );

    // Each export is recorded.
    let records = api.audit_records();
    assert!(
        records.iter().any(|(a, q)| a == "system:siem"
            && q == "GET /v1/employees/E-2/export?format=ndjson&what=deals&days=365"),
        "{records:?}"
    );

    let head = api.head();
    for (path, token, want) in [
        (
            "/v1/employees/E-2/export?format=xml",
            siem.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/employees/E-2/export?what=salary",
            siem.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/employees/E-2/export?days=0",
            siem.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/employees/E-2/export?days=many",
            siem.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/employees/E-404/export",
            siem.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/employees/E-2/export",
            api.crm.clone(),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (status, ct, _) = api.client.raw(path, &token).await;
        assert_eq!(
            (status, ct.as_str()),
            (want, "application/problem+json"),
            "{path}"
        );
    }
    assert_eq!(api.head(), head, "a refused export records nothing");
}

#[tokio::test]
async fn anomalies_come_with_their_evidence_and_a_leavers_risk_sums_them_up() {
    let api = Api::start().await;
    let hashes: Vec<String> = crate::stored(&api.ledger)
        .iter()
        .map(|(_, b)| hex::encode(proto_types::EntryRef::parse(b).unwrap().hash()))
        .collect();
    let all = api.ok("/v1/anomalies").await;
    let rules: Vec<&str> = all["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        vec!["export_in_notice_period", "activity_after_disable"]
    );
    let export = api.ok("/v1/anomalies?rule=export_in_notice_period").await;
    let a = &export["anomalies"][0];
    assert_eq!(
        (a["employee"].as_str(), a["severity"].as_str()),
        (Some("E-2"), Some("high"))
    );
    assert_eq!(
        a["evidence"],
        json!([{"seq": 10, "hash": hashes[10]}, {"seq": 11, "hash": hashes[11]}]),
        "the resignation and the export"
    );
    assert!(
        a["explanation"]
            .as_str()
            .unwrap()
            .contains("2 customer records")
    );
    let critical = api.ok("/v1/anomalies?severity=critical").await;
    assert_eq!(critical["count"], 1);
    assert_eq!(critical["anomalies"][0]["evidence"][1]["seq"], 18);
    assert_eq!(api.ok("/v1/anomalies?employee=E-1").await["count"], 0);
    assert_eq!(
        api.ok("/v1/anomalies?from=2026-09-01T20:00:00Z").await["count"],
        1,
        "only the action after the disable is that late"
    );

    let risk = api.ok("/v1/employees/E-2/risk").await;
    assert_eq!(risk["highest_severity"], "critical");
    assert_eq!(risk["anomalies"]["by_rule"]["export_in_notice_period"], 1);
    assert_eq!(risk["exports"][0]["seq"], 11);
    assert_eq!(risk["exports"][0]["records"], 2);
    let notice = &risk["notice_period"];
    assert_eq!(
        (notice["from"].as_str(), notice["until"].as_str()),
        (
            Some("2026-09-01T16:40:00.000000Z"),
            Some("2026-09-02T09:20:00.000000Z")
        )
    );
    assert_eq!(notice["actions"], 1);
    assert_eq!(risk["revocation_gap_seconds"], 0);

    for (path, want) in [
        (
            "/v1/anomalies?rule=rudeness",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/anomalies?severity=urgent",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/v1/anomalies?from=yesterday", StatusCode::BAD_REQUEST),
        ("/v1/employees/E-404/risk", StatusCode::NOT_FOUND),
    ] {
        let (status, ct, _) = api.get(path, Some(&api.siem)).await;
        assert_eq!(
            (status, ct.as_str()),
            (want, "application/problem+json"),
            "{path}"
        );
    }
    let (status, _, _) = api.get("/v1/anomalies", Some(&api.crm)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let metrics = api.read.metrics.render();
    assert!(
        metrics.contains(
            "handover_anomalies_total{rule=\"activity_after_disable\",severity=\"critical\"} 1\n"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_deals_owners_are_told_from_its_creation_through_its_handover() {
    let api = Api::start().await;
    let before = api.ok("/v1/deals/D-1/owners").await;
    assert_eq!(before["current_owner"], "E-2");
    assert_eq!(before["history"][0]["reason"], "created");
    api.ledger
        .append(vec![ev(
            "deal-handover",
            crate::hr(),
            2150,
            EventKind::OwnershipTransferred {
                resource: proto_types::event::Resource::Deal(
                    proto_types::ids::DealId::parse("D-1").unwrap(),
                ),
                from: crate::emp("E-2"),
                to: crate::emp("E-1"),
                reason: "handover".into(),
            },
        )])
        .await
        .unwrap();
    api.caught_up().await;
    let after = api.ok("/v1/deals/D-1/owners").await;
    assert_eq!(after["current_owner"], "E-1");
    let h = after["history"].as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[1]["previous"].as_str(), h[1]["reason"].as_str()),
        (Some("E-2"), Some("handover"))
    );
    assert_eq!(h[0]["until"], h[1]["from"]);
    let (status, ct, _) = api.get("/v1/deals/D-404/owners", Some(&api.siem)).await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_that_answer() {
    let api = Api::start().await;
    let doc = api.ok("/v1/openapi.json").await;
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let concrete = path.replace("{id}", "E-2").replace("{seq}", "3");
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header(header::AUTHORIZATION, format!("Bearer {}", api.siem))
                .body(Body::empty())
                .unwrap();
            let res = api.client.router.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let body: Value =
                serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes())
                    .unwrap_or(Value::Null);
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && body["detail"] != "no such endpoint",
                "{method} {concrete}: {status} {body}"
            );
        }
    }
    assert_eq!(
        operations, 18,
        "every operation of the forensic API is documented"
    );
    let (status, _, body) = api.get("/v1/promotions", Some(&api.siem)).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such endpoint"))
    );
}

fn usd(units: i64) -> proto_types::event::Money {
    proto_types::event::Money {
        minor_units: units * 100,
        currency: *b"USD",
    }
}
