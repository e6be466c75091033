//! Crash safety: `handover demo` is killed with SIGKILL at random moments while it appends, and
//! restarted; every event it acknowledged must be in the log exactly once, with the hash it
//! acknowledged, and the chain must verify.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use proto_types::Event;

use crate::helpers::*;

struct Ack {
    seq: u64,
    hash: String,
    id: String,
}

#[test]
fn every_acknowledged_event_survives_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = Rng(0xdead_2026);
    let mut acks: Vec<Ack> = Vec::new();
    let kills = 12;
    for round in 0..kills {
        let mut child = handover()
            .args([
                "demo",
                "--data",
                path_str(&data),
                "--print-acks",
                "--batch",
                "64",
            ])
            .args(["--employees", "60", "--customers", "600", "--days", "400"])
            .args(["--seed", &round.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // Kill after a random number of acknowledgements: the writer is mid-stream then.
        let wait_for = 1 + rng.below(6_000);
        let mut line = String::new();
        let mut seen = 0;
        while seen < wait_for {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "demo ended before it was killed"
            );
            acks.push(parse_ack(&line));
            seen += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever it printed before dying was acknowledged too; a torn last line was not.
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        for l in rest.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            acks.push(parse_ack(l));
        }
    }
    // A last, clean run recovers the store and appends after the head.
    let r = run(&[
        "demo",
        "--data",
        path_str(&data),
        "--days",
        "1",
        "--employees",
        "3",
        "--customers",
        "3",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (code, v) = verify_json(&["--data", path_str(&data)]);
    assert_eq!(code, 0, "{v}");

    let file = export(&data, &dir.path().join("all.hlog"));
    let records = parse_export(&file);
    let mut id_count: HashMap<String, u32> = HashMap::new();
    let mut id_at: HashMap<u64, String> = HashMap::new();
    for r in &records {
        let e = Event::decode(&r.payload).unwrap();
        let id = e.id.unwrap().to_string();
        *id_count.entry(id.clone()).or_default() += 1;
        id_at.insert(r.seq, id);
    }
    assert!(acks.len() > kills as usize);
    for a in &acks {
        let r = records
            .get(a.seq as usize)
            .unwrap_or_else(|| panic!("acknowledged seq {} is missing", a.seq));
        assert_eq!(
            hex::encode(r.hash),
            a.hash,
            "seq {} has another hash than acknowledged",
            a.seq
        );
        assert_eq!(id_at[&a.seq], a.id, "seq {} holds another event", a.seq);
        assert_eq!(
            id_count[&a.id], 1,
            "event {} is in the log more than once",
            a.id
        );
    }
}

fn parse_ack(line: &str) -> Ack {
    let mut parts = line.split_whitespace();
    let (Some(seq), Some(hash), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("not an ack line: {line:?}");
    };
    assert_eq!(hash.len(), 64, "{line:?}");
    Ack {
        seq: seq.parse().unwrap(),
        hash: hash.into(),
        id: id.into(),
    }
}
