//! The command line contract: exit codes, messages, and what is (not) written.

use crate::helpers::*;

fn assert_one_line_error(r: &Run, needle: &str) {
    assert_eq!(r.code, 2, "stdout {} stderr {}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", r.stderr);
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
}

#[test]
fn verify_and_export_of_a_missing_path_exit_2_naming_it_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let m = path_str(&missing);
    assert_one_line_error(&run(&["verify", "--data", m]), m);
    assert_one_line_error(&run(&["verify", "--file", m]), m);
    let out = dir.path().join("out.hlog");
    assert_one_line_error(
        &run(&["export-log", "--data", m, "--out", path_str(&out)]),
        m,
    );
    assert!(!missing.exists());
    assert!(!out.exists());
}

#[test]
fn verify_of_something_that_is_not_a_handover_store_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_one_line_error(
        &run(&["verify", "--data", path_str(&empty)]),
        "not a Handover data directory",
    );
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing was created"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "just some notes, long enough to not be a header ........................................",
    )
    .unwrap();
    assert_one_line_error(
        &run(&["verify", "--data", path_str(&text)]),
        "not a Handover store",
    );
    assert_one_line_error(
        &run(&["verify", "--file", path_str(&text)]),
        "not a Handover log export",
    );

    let data = demo_store(dir.path(), "3");
    let store = data.join("ledger.redb");
    assert_one_line_error(
        &run(&["verify", "--file", path_str(&store)]),
        "not a Handover log export",
    );
}

#[test]
fn a_store_of_a_newer_format_version_is_refused_with_exit_2_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "2");
    let store = data.join("ledger.redb");
    {
        let db = redb::Database::open(&store).unwrap();
        let t = db.begin_write().unwrap();
        t.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
            .unwrap()
            .insert("format_version", 7u32.to_le_bytes().as_slice())
            .unwrap();
        t.commit().unwrap();
    }
    let before = std::fs::read(&store).unwrap();
    let d = path_str(&data);
    assert_one_line_error(&run(&["verify", "--data", d]), "format version 7 is newer");
    let out = dir.path().join("x.hlog");
    assert_one_line_error(
        &run(&["export-log", "--data", d, "--out", path_str(&out)]),
        "newer",
    );
    assert_one_line_error(&run(&["demo", "--data", d, "--days", "1"]), "newer");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "the store was not modified"
    );
    assert!(!out.exists());
}

#[test]
fn export_log_refuses_bad_ranges_and_missing_output_directories_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "2");
    let d = path_str(&data);
    let nowhere = dir.path().join("missing").join("x.hlog");
    assert_one_line_error(
        &run(&["export-log", "--data", d, "--out", path_str(&nowhere)]),
        "does not exist",
    );
    let out = dir.path().join("x.hlog");
    let o = path_str(&out);
    assert_one_line_error(
        &run(&["export-log", "--data", d, "--to", "99999999", "--out", o]),
        "past the end",
    );
    assert_one_line_error(
        &run(&[
            "export-log",
            "--data",
            d,
            "--from",
            "9",
            "--to",
            "3",
            "--out",
            o,
        ]),
        "after --to",
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left behind"
    );
}

#[test]
fn bad_demo_arguments_exit_2() {
    for args in [
        &["demo", "--employees", "0"][..],
        &["demo", "--days", "many"],
        &["demo", "--customers", "-3"],
        &["verify", "--data", "x", "--file", "y"],
        &["ledger", "--data", "x"],
        &["frobnicate"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty());
    }
}

#[test]
fn query_without_its_stream_ledger_or_token_says_which_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("q");
    let d = path_str(&data);
    let nats = ["--nats", "nats://127.0.0.1:9"];
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (&["query", "--data", d], Some("hov_x"), "--nats"),
        (
            &["query", "--data", d, nats[0], nats[1]],
            Some("hov_x"),
            "--ledger",
        ),
        (
            &[
                "query",
                "--data",
                d,
                nats[0],
                nats[1],
                "--ledger",
                "http://127.0.0.1:9",
            ],
            None,
            "HANDOVER_LEDGER_TOKEN",
        ),
        (
            &[
                "query",
                "--data",
                d,
                nats[0],
                nats[1],
                "--ledger",
                "https://ledger.example",
            ],
            Some("hov_x"),
            "http://HOST:PORT",
        ),
    ];
    for (args, token, named) in cases {
        let mut cmd = handover();
        cmd.args(args)
            .env_remove("HANDOVER_NATS_URL")
            .env_remove("HANDOVER_LEDGER_URL");
        match token {
            Some(t) => cmd.env("HANDOVER_LEDGER_TOKEN", t),
            None => cmd.env_remove("HANDOVER_LEDGER_TOKEN"),
        };
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} names {named}: {stderr}");
        assert!(!data.exists(), "{args:?} created nothing");
    }
}

#[test]
fn a_bad_configuration_option_is_named_and_nothing_starts() {
    for (text, named) in [
        ("[stream]\nreplicas = 9\n", "stream.replicas"),
        ("[consumer]\nbatch = 0\n", "consumer.batch"),
        ("[consumer]\ndurable = \"a b\"\n", "consumer.durable"),
        ("[stream]\nretention = \"forever\"\n", "retention"),
        (
            "[anomalies]\nspike_factor = 0.5\n",
            "anomalies.spike_factor",
        ),
        (
            "[anomalies]\nspike_min_days = 30\n",
            "anomalies.spike_min_days",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("handover.toml"), text).unwrap();
        let r = run(&[
            "serve",
            "--data",
            path_str(&data),
            "--listen",
            "127.0.0.1:0",
        ]);
        assert_eq!(r.code, 2, "{text}: {}", r.stderr);
        assert!(
            r.stderr.contains(named),
            "{text} names {named}: {}",
            r.stderr
        );
        assert!(!data.join("ledger.redb").exists(), "nothing was created");
    }
}

#[test]
fn a_healthy_log_verifies_with_its_entry_count_and_head_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "3");
    let d = path_str(&data);
    let out = dir.path().join("all.hlog");
    let file = export(&data, &out);
    let records = parse_export(&file);
    let head = records.last().unwrap();

    let text = run(&["verify", "--data", d]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains(&format!("{} entries", records.len())),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&hex::encode(head.hash)),
        "{}",
        text.stdout
    );

    for source in [["--data", d], ["--file", path_str(&out)]] {
        let (code, v) = verify_json(&source);
        assert_eq!(code, 0);
        assert_eq!(v["ok"], true);
        assert_eq!(v["entries"], records.len() as u64);
        assert_eq!(v["head_seq"], head.seq);
        assert_eq!(v["head_hash"], hex::encode(head.hash));
        assert!(v["first_bad_seq"].is_null());
    }
}

#[test]
fn a_second_demo_run_appends_after_the_head_and_the_chain_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "2");
    let (_, first) = verify_json(&["--data", path_str(&data)]);
    let data2 = demo_store(dir.path(), "2");
    assert_eq!(data, data2);
    let (code, second) = verify_json(&["--data", path_str(&data)]);
    assert_eq!(code, 0, "{second}");
    let n1 = first["entries"].as_u64().unwrap();
    assert_eq!(
        second["entries"].as_u64().unwrap(),
        2 * n1,
        "the same history again, after the head"
    );
    // Entry n1 links to the old head.
    let file = export(&data, &dir.path().join("x.hlog"));
    let bytes_at = |seq: u64| {
        let r = parse_export(&file)
            .into_iter()
            .find(|r| r.seq == seq)
            .unwrap();
        file[r.start + 4..r.end].to_vec()
    };
    assert_eq!(
        hex::encode(&bytes_at(n1)[16..48]),
        first["head_hash"].as_str().unwrap()
    );
}

#[test]
fn an_export_from_the_middle_verifies_from_its_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "2");
    let all = export(&data, &dir.path().join("all.hlog"));
    let all = parse_export(&all);
    let out = dir.path().join("mid.hlog");
    let r = run(&[
        "export-log",
        "--data",
        path_str(&data),
        "--from",
        "10",
        "--to",
        "19",
        "--out",
        path_str(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        &bytes[32..64],
        &all[9].hash,
        "the anchor is the hash of seq 9"
    );
    let (code, v) = verify_json(&["--file", path_str(&out)]);
    assert_eq!(
        (code, v["entries"].as_u64(), v["head_seq"].as_u64()),
        (0, Some(10), Some(19))
    );
}

/// docs/verify_export.py, written from docs/log-format.md alone, agrees with the binary.
#[test]
fn the_documented_python_verifier_accepts_an_export_and_names_a_tampered_seq() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_store(dir.path(), "2");
    let out = dir.path().join("all.hlog");
    let mut file = export(&data, &out);
    let py = python_with_blake3();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/verify_export.py");
    let ok = std::process::Command::new(&py)
        .arg(script)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let records = parse_export(&file);
    let target = &records[records.len() / 2];
    file[target.end - 1] ^= 0x20; // the last payload byte
    std::fs::write(&out, &file).unwrap();
    let bad = std::process::Command::new(&py)
        .arg(script)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stdout).trim(),
        format!("seq {}: payload hash mismatch", target.seq)
    );
}

fn python_with_blake3() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python");
    let py = if venv.exists() {
        venv
    } else {
        "python3".into()
    };
    let ok = std::process::Command::new(&py)
        .args(["-c", "import blake3"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import blake3: run .ci/install-tools (just test does)",
        py.display()
    );
    py
}

#[test]
fn bench_only_runs_the_parts_named_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench").join("log.json");
    let bad = run(&["bench", "--only", "log,speed", "--out", path_str(&out)]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("invalid value 'speed' for '--only"),
        "{}",
        bad.stderr
    );
    assert!(!dir.path().join("bench").exists(), "nothing written");
    let r = run(&[
        "bench",
        "--only",
        "detection",
        "--detection-seeds",
        "1",
        "--out",
        path_str(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.with_file_name("detection.json").exists());
    for other in ["log.json", "ingest.json", "query.json", "replay.json"] {
        assert!(
            !out.with_file_name(other).exists(),
            "{other} was not asked for"
        );
    }
    assert!(!r.stdout.contains("durable appends"), "{}", r.stdout);
}

#[test]
fn bench_prints_a_table_and_writes_its_figures_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench").join("log.json");
    let r = run(&[
        "bench",
        "--out",
        path_str(&out),
        "--verify-entries",
        "3000",
        "--commits",
        "3",
        "--rounds",
        "1",
        "--ingest-requests",
        "3",
        "--fanout-events",
        "3000",
        "--query-events",
        "5000",
        "--query-requests",
        "20",
        "--nats-server",
        path_str(&e2e::nats::nats_bin()),
        "--detection-seeds",
        "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for row in [
        "fan-out",
        "raw JetStream",
        "employee timeline",
        "customer owners",
    ] {
        assert!(r.stdout.contains(row), "{row:?} missing from\n{}", r.stdout);
    }
    let q: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_file_name("query.json")).unwrap()).unwrap();
    let f = &q["fanout"];
    assert_eq!(f["events"], 3000);
    assert!(
        f["ours_per_s"].as_f64().unwrap() > 0.0 && f["raw_jetstream_per_s"].as_f64().unwrap() > 0.0
    );
    assert!(
        (f["ratio"].as_f64().unwrap()
            - f["ours_per_s"].as_f64().unwrap() / f["raw_jetstream_per_s"].as_f64().unwrap())
        .abs()
            < 1e-9
    );
    for side in ["ours", "raw", "raw_with_consumer"] {
        for who in ["process", "nats_server"] {
            assert!(
                f["cpu_us_per_event"][side][who].is_f64(),
                "CPU per event of {side}/{who}: {f}"
            );
        }
    }
    assert!(r.stdout.contains("CPU per event (us)"));
    assert_eq!(q["forensic"]["events"], 5000);
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_file_name("detection.json")).unwrap())
            .unwrap();
    assert_eq!(d["rules"].as_object().unwrap().len(), 7);
    assert_eq!(d["targets"]["every_planted_case_found"], true);
    let replay: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_file_name("replay.json")).unwrap()).unwrap();
    assert!(replay["projections"]["events_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        q["forensic"]["timeline_p99_ms"].as_f64().unwrap()
            >= q["forensic"]["timeline_p50_ms"].as_f64().unwrap()
    );
    for row in [
        "batch 1 ",
        "batch 64 ",
        "batch 1024 ",
        "raw redb",
        "BLAKE3 chain",
        "bytes/entry",
    ] {
        assert!(r.stdout.contains(row), "{row:?} missing from\n{}", r.stdout);
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let append = v["append"].as_array().unwrap();
    assert_eq!(append.len(), 4);
    for row in append {
        assert!(
            row["ours_per_s"].as_f64().unwrap() > 0.0
                && row["raw_redb_per_s"].as_f64().unwrap() > 0.0
        );
        let ratio = row["ours_per_s"].as_f64().unwrap() / row["raw_redb_per_s"].as_f64().unwrap();
        assert!((ratio - row["ratio"].as_f64().unwrap()).abs() < 1e-9);
    }
    assert_eq!(v["verify"]["entries"], 3000);
    assert!(v["verify"]["ours_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        v["storage"]["bytes_per_entry"].as_f64().unwrap()
            > v["storage"]["logical_bytes_per_entry"].as_f64().unwrap() * 0.5
    );
}

#[test]
fn token_add_refuses_unknown_scopes_bad_names_and_duplicates_and_revoke_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path());
    assert_one_line_error(
        &run(&[
            "token",
            "add",
            "crm",
            "--scopes",
            "ingest,superuser",
            "--data",
            d,
        ]),
        "unknown scope",
    );
    assert_one_line_error(
        &run(&["token", "add", " crm", "--scopes", "ingest", "--data", d]),
        "token name",
    );
    assert!(
        !dir.path().join("handover.toml").exists(),
        "nothing written"
    );
    let t = token(dir.path(), "crm", "ingest");
    assert!(t.starts_with("hov_"));
    assert_one_line_error(
        &run(&["token", "add", "crm", "--scopes", "hr", "--data", d]),
        "exists already",
    );
    assert_one_line_error(
        &run(&["token", "revoke", "nobody", "--data", d]),
        "no token named",
    );
    let list = run(&["token", "list", "--data", d]);
    assert_eq!(list.stdout, "crm\tingest\texpires never\n");
    assert!(
        !std::fs::read_to_string(dir.path().join("handover.toml"))
            .unwrap()
            .contains(&t)
    );
}

/// The NATS configuration shipped in deploy/ is one the current nats-server accepts.
#[test]
fn the_shipped_nats_configuration_is_valid() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats-server.conf");
    let out = std::process::Command::new(e2e::nats::nats_bin())
        .args(["-t", "-c"])
        .arg(&conf)
        .env("LEDGER_NATS_PASSWORD", "a")
        .env("QUERY_NATS_PASSWORD", "b")
        .env("DOWNSTREAM_NATS_PASSWORD", "c")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("is valid"), "{said}");
}

#[test]
fn a_token_can_expire_and_a_bad_lifetime_or_expiry_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path());
    let add = |lifetime: &str| {
        run(&[
            "token",
            "add",
            "crm",
            "--scopes",
            "ingest",
            "--expires-in",
            lifetime,
            "--data",
            d,
        ])
    };
    for bad in ["2w", "0d", "90"] {
        assert_one_line_error(&add(bad), "is not a lifetime like 90d, 12h or 30m");
    }
    assert!(
        !dir.path().join("handover.toml").exists(),
        "nothing written"
    );
    let added = add("90d");
    assert_eq!(added.code, 0, "{}", added.stderr);
    let list = run(&["token", "list", "--data", d]);
    let expires = list
        .stdout
        .trim()
        .strip_prefix("crm\tingest\texpires ")
        .unwrap_or_else(|| panic!("{:?}", list.stdout));
    let at = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
    let ahead = at.to_utc() - chrono::Utc::now();
    assert!(
        (ahead - chrono::Duration::days(90)).num_seconds().abs() < 120,
        "about 90 days ahead: {ahead}"
    );

    // A configuration whose expiry is not a time stops a start before the store is made.
    let cfg = dir.path().join("handover.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace(expires, "next spring")).unwrap();
    let serve = run(&["serve", "--data", d, "--listen", "127.0.0.1:0"]);
    assert_eq!(serve.code, 2, "{}", serve.stderr);
    assert!(
        serve
            .stderr
            .contains("token \"crm\": expires \"next spring\" is not an RFC 3339 time"),
        "{}",
        serve.stderr
    );
    assert!(!dir.path().join("ledger.redb").exists(), "no store made");
}
