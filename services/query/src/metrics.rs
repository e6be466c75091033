//! The read side's metrics, in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the query latency histogram's buckets.
const BUCKETS: [f64; 10] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    entries_applied: AtomicU64,
    batches: AtomicU64,
    backfilled: AtomicU64,
    broken: AtomicU64,
    next_seq: AtomicU64,
    ledger_next: AtomicU64,
    query_buckets: [AtomicU64; BUCKETS.len()],
    query_micros_sum: AtomicU64,
    queries: Mutex<BTreeMap<&'static str, u64>>,
    /// Anomalies raised since start, by (rule, severity).
    anomalies: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    pub fn applied(&self, n: u64) {
        if n > 0 {
            self.entries_applied.fetch_add(n, Relaxed);
            self.batches.fetch_add(1, Relaxed);
        }
    }

    /// An anomaly raised as its event was applied.
    pub fn anomaly(&self, rule: &'static str, severity: &'static str) {
        *self
            .anomalies
            .lock()
            .expect("metrics lock")
            .entry((rule, severity))
            .or_default() += 1;
    }

    pub fn backfilled(&self, n: u64) {
        self.backfilled.fetch_add(n, Relaxed);
    }

    pub fn backfilled_total(&self) -> u64 {
        self.backfilled.load(Relaxed)
    }

    pub fn set_broken(&self, broken: bool) {
        self.broken.store(u64::from(broken), Relaxed);
    }

    pub fn set_position(&self, next_seq: u64, ledger_next: u64) {
        self.next_seq.store(next_seq, Relaxed);
        self.ledger_next.store(ledger_next, Relaxed);
    }

    /// One forensic query answered, by endpoint.
    pub fn query(&self, endpoint: &'static str, took: Duration) {
        *self
            .queries
            .lock()
            .expect("metrics lock")
            .entry(endpoint)
            .or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.query_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.query_micros_sum
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let next = self.next_seq.load(Relaxed);
        let ledger = self.ledger_next.load(Relaxed);
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let gauge = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        counter(
            &mut s,
            "handover_query_entries_applied_total",
            "Entries verified and applied by the query service.",
            self.entries_applied.load(Relaxed),
        );
        counter(
            &mut s,
            "handover_query_batches_total",
            "Transactions that applied entries.",
            self.batches.load(Relaxed),
        );
        counter(
            &mut s,
            "handover_query_backfilled_entries_total",
            "Entries fetched from the ledger because the stream lacked them.",
            self.backfilled.load(Relaxed),
        );
        gauge(
            &mut s,
            "handover_query_applied_seq_next",
            "The seq of the next entry to apply.",
            next,
        );
        gauge(
            &mut s,
            "handover_query_ledger_seq_next",
            "The ledger's next seq, as far as the query service has seen.",
            ledger,
        );
        gauge(
            &mut s,
            "handover_query_lag_entries",
            "Entries committed by the ledger and not yet applied here.",
            ledger.saturating_sub(next),
        );
        gauge(
            &mut s,
            "handover_query_integrity_broken",
            "1 once an entry failed verification (see GET /v1/integrity).",
            self.broken.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP handover_anomalies_total Anomalies raised since start, by rule and severity.\n# TYPE handover_anomalies_total counter"
        );
        for ((rule, severity), n) in self.anomalies.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                s,
                "handover_anomalies_total{{rule=\"{rule}\",severity=\"{severity}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP handover_query_requests_total Forensic queries answered, by endpoint.\n# TYPE handover_query_requests_total counter"
        );
        for (endpoint, n) in self.queries.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                s,
                "handover_query_requests_total{{endpoint=\"{endpoint}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP handover_query_seconds Forensic query latency.\n# TYPE handover_query_seconds histogram"
        );
        let mut total = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            total = self.query_buckets[i].load(Relaxed);
            let _ = writeln!(s, "handover_query_seconds_bucket{{le=\"{le}\"}} {total}");
        }
        let count: u64 = self.queries.lock().expect("metrics lock").values().sum();
        let _ = total;
        let _ = writeln!(s, "handover_query_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "handover_query_seconds_sum {}",
            self.query_micros_sum.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "handover_query_seconds_count {count}");
        s
    }
}
