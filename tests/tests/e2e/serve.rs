//! The real binary serving: its first admin token, SCIM conformance, SIGTERM under load, and
//! logs free of tokens. (The whole offboarding story runs in `deployments.rs`, against both
//! deployments.)

use serde_json::{Value, json};

use crate::helpers::*;

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
    let server = Server::start_logging(&data, "trace", &log_path);
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

/// A compliance officer takes an export from the running ledger (no need to stop it), and it
/// verifies offline; a bad token or a bad combination of options is refused with exit 2.
#[test]
fn an_export_taken_from_a_running_ledger_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (crm, auditor) = (
        token(&data, "crm", "ingest"),
        token(&data, "compliance", "audit:read"),
    );
    let server = Server::start(&data);
    let t = now();
    let events: Vec<Value> = (0..25_000)
        .map(|i| json!({"id": format!("e{i}"), "actor": "E-1", "occurred_at": t, "type": "customer_viewed", "customer": "C-1"}))
        .collect();
    for chunk in events.chunks(5_000) {
        let body = json!({ "events": chunk }).to_string();
        assert_eq!(
            http(&server.addr, "POST", "/v1/events", Some(&crm), Some(&body)).0,
            200
        );
    }
    let url = format!("http://{}", server.addr);
    let out = dir.path().join("live.hlog");
    let export = |token: Option<&str>, extra: &[&str]| {
        let mut cmd = handover();
        cmd.args(["export-log", "--url", &url, "--out", path_str(&out)])
            .args(extra);
        match token {
            Some(t) => cmd.env("HANDOVER_TOKEN", t),
            None => cmd.env_remove("HANDOVER_TOKEN"),
        };
        let o = cmd.output().unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, said) = export(Some(&auditor), &[]);
    assert_eq!(code, 0, "{said}");
    let (code, v) = verify_json(&["--file", path_str(&out)]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["entries"], 25_000, "{v}");
    // A range, across page boundaries, anchored to the entry before it.
    let (code, said) = export(Some(&auditor), &["--from", "9999", "--to", "20001"]);
    assert_eq!(code, 0, "{said}");
    let (code, v) = verify_json(&["--file", path_str(&out)]);
    assert_eq!((code, v["entries"].as_u64()), (0, Some(10_003)), "{v}");

    for (token, extra, named) in [
        (None, &[][..], "HANDOVER_TOKEN"),
        (Some(crm.as_str()), &[][..], "403"),
        (Some("hov_forged"), &[][..], "401"),
        (
            Some(auditor.as_str()),
            &["--to", "99999"][..],
            "past the end",
        ),
        (Some(auditor.as_str()), &["--data", "x"][..], "--data"),
    ] {
        let before = std::fs::read(&out).unwrap();
        let (code, said) = export(token, extra);
        assert_eq!(code, 2, "{extra:?}: {said}");
        assert!(said.contains(named), "{extra:?} names {named}: {said}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            before,
            "the earlier export is untouched"
        );
    }
    let before = std::fs::read(&out).unwrap();
    let o = handover()
        .args([
            "export-log",
            "--url",
            "https://ledger.example",
            "--out",
            path_str(&out),
        ])
        .env("HANDOVER_TOKEN", &auditor)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(said.contains("http://HOST:PORT"), "{said}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(server.stop().0, 0);
}

/// `handover export`: a leaver's customers from the running service into a CSV file that Excel
/// opens (UTF-8 with BOM); refusals exit 2 and leave the file alone.
#[test]
fn a_leavers_customers_export_to_a_csv_file_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "5");
    let hr_auditor = token(&data, "hr-team", "audit:read");
    let server = Server::start(&data);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, text) = http(&server.addr, "GET", "/v1/status", Some(&hr_auditor), None);
        if serde_json::from_str::<Value>(&text).unwrap()["lag"] == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = dir.path().join("E-0002.csv");
    let export = |token: Option<&str>, employee: &str| {
        let mut cmd = handover();
        cmd.args(["export", "--employee", employee, "--format", "csv", "--out"])
            .arg(&out)
            .args(["--url", &format!("http://{}", server.addr)]);
        match token {
            Some(t) => cmd.env("HANDOVER_TOKEN", t),
            None => cmd.env_remove("HANDOVER_TOKEN"),
        };
        let o = cmd.output().unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, said) = export(Some(&hr_auditor), "E-0002");
    assert_eq!(code, 0, "{said}");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..3], "\u{feff}".as_bytes());
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("customer,name,contacts,owner_now")
    );
    assert!(text.contains(".example"), "contact emails are in: {text}");
    assert!(lines.count() >= 1, "{text}");
    for (token, employee, named) in [
        (None, "E-0002", "HANDOVER_TOKEN"),
        (Some("hov_forged"), "E-0002", "401"),
        (Some(hr_auditor.as_str()), "E-9999", "404"),
    ] {
        let (code, said) = export(token, employee);
        assert_eq!(code, 2, "{said}");
        assert!(said.contains(named), "{named}: {said}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            bytes,
            "the earlier export is untouched"
        );
    }
    assert_eq!(server.stop().0, 0);
}

/// A token revoked with `handover token` is refused by the running server once it has re-read
/// its tokens (SIGHUP, what `systemctl reload` sends), and one added then is accepted; a
/// configuration that does not read leaves the tokens in use as they were.
#[test]
fn sighup_rereads_the_tokens_so_a_revoked_one_is_refused_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let crm = token(&data, "crm", "ingest");
    let log_path = dir.path().join("serve.log");
    let server = Server::start_logging(&data, "info", &log_path);
    let sent = std::cell::Cell::new(0);
    let post = |t: &str| {
        sent.set(sent.get() + 1);
        let body = json!({"events": [{"id": format!("e{}", sent.get()), "actor": "E-1",
                                      "occurred_at": now(), "type": "logged_out"}]})
        .to_string();
        http(&server.addr, "POST", "/v1/events", Some(t), Some(&body)).0
    };
    // Sends SIGHUP and waits for the server to say it re-read (or kept) its tokens.
    let hangup = |expect: &str| {
        let seen = || {
            std::fs::read_to_string(&log_path)
                .unwrap()
                .matches(expect)
                .count()
        };
        let before = seen();
        let pid = server.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while seen() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not log {expect:?} after SIGHUP"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    assert_eq!(post(&crm), 200);

    let r = run(&["token", "revoke", "crm", "--data", path_str(&data)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let crm2 = token(&data, "crm2", "ingest");
    assert_eq!(post(&crm), 200, "still in use until the server re-reads");
    assert_eq!(post(&crm2), 401, "not yet known");
    hangup("tokens reloaded");
    assert_eq!(post(&crm), 401, "revoked");
    assert_eq!(post(&crm2), 200, "added");

    // A configuration that does not read: the tokens in use stay.
    let cfg = data.join("handover.toml");
    std::fs::write(&cfg, "this is not toml [").unwrap();
    hangup("tokens not reloaded");
    assert_eq!(post(&crm2), 200);
    assert_eq!(server.stop().0, 0);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !log.contains(&crm) && !log.contains(&crm2),
        "a token leaked into the log"
    );
}
