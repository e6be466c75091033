//! The real binary serving its write API: the whole offboarding of one employee, then SIGTERM,
//! then an intact chain holding exactly the story told.

use serde_json::{Value, json};

use crate::helpers::*;

fn now() -> String {
    // RFC 3339 from the system clock, without a date library: `date` is on every test machine.
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn an_employee_is_hired_works_resigns_departs_and_is_handed_over_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hr = token(&data, "hr-system", "hr");
    let crm = token(&data, "crm", "ingest");
    let server = Server::start(&data);
    let a = server.addr.clone();
    let post = |path: &str, token: &str, body: Value| {
        let (status, text) = http(&a, "POST", path, Some(token), Some(&body.to_string()));
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    let ok = |(status, body): (u16, Value)| {
        assert!(status == 200 || status == 201, "{status}: {body}");
        body
    };

    ok(post(
        "/v1/employees",
        &hr,
        json!({"id": "E-1", "name": "Maria Boss", "title": "Head of Sales"}),
    ));
    ok(post(
        "/v1/employees",
        &hr,
        json!({"id": "E-2", "name": "Zhang Wei 张伟", "manager": "E-1"}),
    ));
    ok(post(
        "/v1/employees/E-2/roles",
        &hr,
        json!({"role": "sales-rep"}),
    ));
    ok(post(
        "/v1/employees/E-2/permissions",
        &hr,
        json!({"module": "export", "level": "write"}),
    ));
    let t = now();
    let activity = json!({"events": [
        {"id": "a1", "actor": "E-2", "occurred_at": t, "type": "logged_in", "ip": "10.0.0.7"},
        {"id": "a2", "actor": "E-2", "occurred_at": t, "type": "customer_created", "customer": "C-1", "name": "Acme", "owner": "E-2"},
        {"id": "a3", "actor": "E-2", "occurred_at": t, "type": "deal_created", "deal": "D-1", "customer": "C-1", "owner": "E-2",
         "amount": {"minor_units": 1250000, "currency": "EUR"}, "stage": "proposal"},
        {"id": "a4", "actor": "E-2", "occurred_at": t, "type": "customers_exported", "count": 1, "filter": "all"}
    ]});
    let acks = ok(post("/v1/events", &crm, activity));
    assert_eq!(acks["results"].as_array().unwrap().len(), 4);
    ok(post(
        "/v1/employees/E-2/resignation",
        &hr,
        json!({"last_day": "2030-01-31", "reason": "new job"}),
    ));
    let departed = ok(post(
        "/v1/employees/E-2/departure",
        &hr,
        json!({"reason": "resigned"}),
    ));
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
    // The leaver logs in after being disabled: recorded, and flagged.
    let late = ok(post(
        "/v1/events",
        &crm,
        json!({"events": [{"id": "a5", "actor": "E-2", "occurred_at": now(), "type": "logged_in"}]}),
    ));
    assert_eq!(late["anomalies"][0]["rule"], "activity_after_disable");
    let moved = ok(post(
        "/v1/employees/E-2/handover/transfers",
        &hr,
        json!({"transfers": [{"customer": "C-1"}, {"deal": "D-1"}]}),
    ));
    assert_eq!(moved["recorded"].as_array().unwrap().len(), 4, "{moved}");
    ok(post(
        "/v1/employees/E-2/handover/items/export_delivered/complete",
        &hr,
        json!({}),
    ));
    let last = ok(post(
        "/v1/employees/E-2/handover/items/access_reviewed/complete",
        &hr,
        json!({}),
    ));
    assert_eq!(last["recorded"][1]["type"], "handover_completed");
    let head_hash = last["recorded"][1]["hash"].as_str().unwrap().to_string();

    let (code, said) = server.stop();
    assert_eq!(code, 0, "{said}");
    let (code, v) = verify_json(&["--data", path_str(&data)]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["head_hash"], head_hash,
        "the last acknowledged event is the head"
    );

    let file = export(&data, &dir.path().join("log.hlog"));
    let kinds: Vec<String> = parse_export(&file)
        .iter()
        .map(|r| {
            proto_types::Event::decode(&r.payload)
                .unwrap()
                .kind
                .name()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "employee_hired",
            "employee_hired",
            "role_granted",
            "permission_granted",
            "logged_in",
            "customer_created",
            "deal_created",
            "customers_exported",
            "resignation_submitted",
            "employee_departed",
            "account_disabled",
            "role_revoked",
            "permission_revoked",
            "handover_planned",
            "logged_in",
            "ownership_transferred",
            "ownership_transferred",
            "handover_item_completed",
            "handover_item_completed",
            "handover_item_completed",
            "handover_item_completed",
            "handover_completed",
        ]
    );
}

#[test]
fn serve_makes_and_prints_an_admin_token_once_when_none_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let token = server
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("hov_").map(|t| format!("hov_{t}")))
        .expect("a printed admin token");
    let (status, body) = http(&server.addr, "GET", "/metrics", Some(&token), None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(&server.addr, "GET", "/metrics", Some("hov_wrong"), None);
    assert_eq!(status, 401);
    let config = std::fs::read_to_string(data.join("handover.toml")).unwrap();
    assert!(!config.contains(&token), "only the hash is stored");
    assert_eq!(server.stop().0, 0);

    // The next start finds the token and prints none.
    let again = Server::start(&data);
    let (status, _) = http(&again.addr, "GET", "/metrics", Some(&token), None);
    assert_eq!(status, 200);
    assert!(!again.banner.contains("hov_"), "{}", again.banner);
    assert_eq!(again.stop().0, 0);
}

/// An off-the-shelf SCIM conformance checker (scim-sanity, installed by .ci/install-tools) probes
/// the real server: discovery, the User lifecycle, search and errors.
#[test]
fn an_off_the_shelf_scim_checker_finds_the_users_endpoint_conformant() {
    let checker =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/scim-sanity");
    assert!(
        checker.exists(),
        "{} is missing: run .ci/install-tools (just test does)",
        checker.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let okta = token(&data, "okta", "hr");
    let server = Server::start(&data);
    let out = std::process::Command::new(&checker)
        .args([
            "probe",
            &format!("http://{}/scim/v2", server.addr),
            "--token",
            &okta,
        ])
        .args([
            "--i-accept-side-effects",
            "--json-output",
            "--timeout",
            "30",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let summary = &report["summary"];
    let failures: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "pass" && r["status"] != "skip")
        .collect();
    assert_eq!(
        (summary["failed"].as_u64(), summary["errors"].as_u64()),
        (Some(0), Some(0)),
        "{failures:#?}"
    );
    assert!(summary["passed"].as_u64().unwrap() >= 18, "{summary}");
    assert_eq!(server.stop().0, 0);
}

/// SIGTERM while clients are sending: the server stops taking connections, finishes what is in
/// flight, and every batch it acknowledged is in the log, exactly as acknowledged.
#[test]
fn sigterm_under_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let crm = token(&data, "crm", "ingest");
    let server = Server::start(&data);
    let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (addr, crm, first_tx) = (server.addr.clone(), crm.clone(), first_tx.clone());
            std::thread::spawn(move || {
                let mut acked: Vec<(u64, String, String)> = Vec::new();
                for r in 0..10_000 {
                    let events: Vec<Value> = (0..20)
                        .map(|i| json!({"id": format!("c{c}-r{r}-i{i}"), "actor": "E-1", "occurred_at": now(),
                                         "type": "customer_viewed", "customer": "C-1"}))
                        .collect();
                    let body = json!({ "events": events }).to_string();
                    let Ok((status, text)) = std::panic::catch_unwind(|| http(&addr, "POST", "/v1/events", Some(&crm), Some(&body))) else {
                        break; // the server no longer takes connections
                    };
                    if status != 200 {
                        break;
                    }
                    let v: Value = serde_json::from_str(&text).unwrap();
                    for (i, res) in v["results"].as_array().unwrap().iter().enumerate() {
                        acked.push((res["seq"].as_u64().unwrap(), res["hash"].as_str().unwrap().to_string(), format!("c{c}-r{r}-i{i}")));
                    }
                    let _ = first_tx.send(());
                }
                acked
            })
        })
        .collect();
    // Every client has had at least one batch acknowledged: the server is under load.
    for _ in 0..4 {
        first_rx.recv().unwrap();
    }
    let (code, said) = server.stop();
    assert_eq!(code, 0, "{said}");
    let acked: Vec<(u64, String, String)> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(acked.len() >= 80);

    let (code, v) = verify_json(&["--data", path_str(&data)]);
    assert_eq!(code, 0, "{v}");
    let file = export(&data, &dir.path().join("log.hlog"));
    let records = parse_export(&file);
    for (seq, hash, id) in &acked {
        let r = &records[*seq as usize];
        assert_eq!(&hex::encode(r.hash), hash, "seq {seq}");
        assert_eq!(
            proto_types::Event::decode(&r.payload)
                .unwrap()
                .id
                .unwrap()
                .to_string(),
            *id
        );
    }
}

/// Even at the most verbose log level, no token (valid or not) reaches the log.
#[test]
fn tokens_never_appear_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let crm = token(&data, "crm", "ingest");
    let log_path = dir.path().join("serve.log");
    let mut cmd = handover();
    cmd.args([
        "serve",
        "--data",
        path_str(&data),
        "--listen",
        "127.0.0.1:0",
    ])
    .env("RUST_LOG", "trace")
    .stderr(std::fs::File::create(&log_path).unwrap());
    let server = Server::spawn(cmd);
    let forged = "hov_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let body = json!({"events": [{"id": "e1", "actor": "E-1", "occurred_at": now(), "type": "logged_out"}]}).to_string();
    assert_eq!(
        http(&server.addr, "POST", "/v1/events", Some(&crm), Some(&body)).0,
        200
    );
    assert_eq!(
        http(
            &server.addr,
            "POST",
            "/v1/events",
            Some(forged),
            Some(&body)
        )
        .0,
        401
    );
    assert_eq!(server.stop().0, 0);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("serving"), "the log was written: {log}");
    assert!(
        !log.contains(&crm) && !log.contains(forged) && !log.contains(&crm[4..20]),
        "a token leaked into the log"
    );
}
