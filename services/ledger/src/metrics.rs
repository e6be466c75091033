//! The ledger's metrics, rendered in the Prometheus text format. Counters are atomics; the few
//! labelled ones sit behind a mutex touched once per request, never per event.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the commit latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub events_appended: AtomicU64,
    pub duplicates: AtomicU64,
    pub commits: AtomicU64,
    commit_buckets: [AtomicU64; BUCKETS.len()],
    commit_micros_sum: AtomicU64,
    /// Head seq + 1 (the number of entries), as of the last commit.
    pub entries: AtomicU64,
    /// Messages JetStream acknowledged from the outbox, and of those, how many it had seen.
    pub outbox_published: AtomicU64,
    pub outbox_duplicates: AtomicU64,
    /// The first seq not yet acknowledged by JetStream.
    pub outbox_cursor: AtomicU64,
    labelled: Mutex<Labelled>,
}

#[derive(Debug, Default)]
struct Labelled {
    rejects: BTreeMap<String, u64>,
    commands: BTreeMap<(String, &'static str), u64>,
    flags: BTreeMap<&'static str, u64>,
}

impl Metrics {
    pub fn observe_commit(&self, took: Duration, events: u64, duplicates: u64, entries: u64) {
        self.commits.fetch_add(1, Relaxed);
        self.events_appended.fetch_add(events, Relaxed);
        self.duplicates.fetch_add(duplicates, Relaxed);
        self.entries.store(entries, Relaxed);
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.commit_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.commit_micros_sum
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// A request refused, by the problem type it got.
    pub fn reject(&self, kind: &str) {
        let mut l = self.labelled.lock().expect("metrics lock");
        *l.rejects.entry(kind.to_string()).or_default() += 1;
    }

    pub fn command(&self, name: &str, outcome: &'static str) {
        let mut l = self.labelled.lock().expect("metrics lock");
        *l.commands.entry((name.to_string(), outcome)).or_default() += 1;
    }

    pub fn flag(&self, rule: &'static str) {
        let mut l = self.labelled.lock().expect("metrics lock");
        *l.flags.entry(rule).or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, queue_depth: usize) -> String {
        let mut out = String::new();
        fn counter(out: &mut String, name: &str, help: &str, v: u64) {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        counter(
            &mut out,
            "handover_events_appended_total",
            "Events appended to the log.",
            self.events_appended.load(Relaxed),
        );
        counter(
            &mut out,
            "handover_duplicate_events_total",
            "Events recognised as retries and not appended again.",
            self.duplicates.load(Relaxed),
        );
        counter(
            &mut out,
            "handover_commits_total",
            "Durable write transactions.",
            self.commits.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP handover_log_entries Entries in the log.\n# TYPE handover_log_entries gauge\nhandover_log_entries {}",
            self.entries.load(Relaxed)
        );
        counter(
            &mut out,
            "handover_outbox_published_total",
            "Messages JetStream acknowledged from the outbox.",
            self.outbox_published.load(Relaxed),
        );
        counter(
            &mut out,
            "handover_outbox_duplicates_total",
            "Resent messages JetStream recognised and dropped (after a restart).",
            self.outbox_duplicates.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP handover_outbox_lag_entries Committed entries not yet acknowledged by JetStream.\n# TYPE handover_outbox_lag_entries gauge\nhandover_outbox_lag_entries {}",
            self.entries
                .load(Relaxed)
                .saturating_sub(self.outbox_cursor.load(Relaxed))
        );
        let _ = writeln!(
            out,
            "# HELP handover_writer_queue_depth Jobs waiting for the writer.\n# TYPE handover_writer_queue_depth gauge\nhandover_writer_queue_depth {queue_depth}"
        );
        let _ = writeln!(
            out,
            "# HELP handover_commit_seconds Time of one durable commit (a group of requests).\n# TYPE handover_commit_seconds histogram"
        );
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "handover_commit_seconds_bucket{{le=\"{le}\"}} {}",
                self.commit_buckets[i].load(Relaxed)
            );
        }
        let commits = self.commits.load(Relaxed);
        let _ = writeln!(
            out,
            "handover_commit_seconds_bucket{{le=\"+Inf\"}} {commits}"
        );
        let _ = writeln!(
            out,
            "handover_commit_seconds_sum {}\nhandover_commit_seconds_count {commits}",
            self.commit_micros_sum.load(Relaxed) as f64 / 1e6
        );
        let l = self.labelled.lock().expect("metrics lock");
        let _ = writeln!(
            out,
            "# HELP handover_rejected_requests_total Requests refused, by problem type.\n# TYPE handover_rejected_requests_total counter"
        );
        for (kind, n) in &l.rejects {
            let _ = writeln!(
                out,
                "handover_rejected_requests_total{{kind=\"{kind}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP handover_commands_total Commands, by name and outcome.\n# TYPE handover_commands_total counter"
        );
        for ((name, outcome), n) in &l.commands {
            let _ = writeln!(
                out,
                "handover_commands_total{{command=\"{name}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP handover_flagged_events_total Events flagged the moment they were recorded, by rule.\n# TYPE handover_flagged_events_total counter"
        );
        for (rule, n) in &l.flags {
            let _ = writeln!(out, "handover_flagged_events_total{{rule=\"{rule}\"}} {n}");
        }
        out
    }
}
