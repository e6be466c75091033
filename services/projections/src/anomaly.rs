//! Anomaly rules: a pure fold over the log that raises each anomaly the moment the event that
//! shows it is folded in, with a severity, a plain-language explanation and its evidence (the
//! entries that triggered it). Thresholds come from the configuration; the same events and the
//! same thresholds always give the same anomalies.
//!
//! | rule | severity | raised when |
//! |---|---|---|
//! | `activity_after_disable` | critical | an action by an account that was disabled, deleted, or whose holder departed |
//! | `export_in_notice_period` | high | an export (customers or a report) between resignation and departure |
//! | `volume_spike` | medium | customer views and exports in a day above `spike_factor` × the employee's own trailing median |
//! | `off_hours` | medium | an action in hours the employee's own history (at least `off_hours_min_events` actions) never uses |
//! | `foreign_customers` | high | `foreign_min_customers` distinct customers the employee does not own, read in one day, and above `spike_factor` × their own trailing median |
//! | `self_transfer` | high | customers moved to the employee by the employee, within `self_transfer_days` before they resign or leave (or during the notice period) |
//! | `late_revocation` | high | the account disabled more than `late_revocation_minutes` after the departure took effect |

use std::collections::{BTreeMap, HashMap, HashSet};

use proto_types::event::{EventKind, Resource};
use proto_types::ids::{CustomerId, EmployeeId};
use proto_types::{Actor, Date, Event, Timestamp};

use crate::State;
use crate::flags::{self, Flag};

/// Where each rule draws the line (`[anomalies]` in the configuration, which may leave any out).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// A day's views and exports above this many times the employee's trailing median…
    pub spike_factor: f64,
    /// …over the last this many active days…
    pub spike_window_days: u32,
    /// …once at least this many active days make a baseline…
    pub spike_min_days: u32,
    /// …and at least this many in the day.
    pub spike_min_count: u64,
    /// Off-hours is judged only against a history of at least this many actions.
    pub off_hours_min_events: u64,
    /// An hour is usual if it, or an hour this close to it, holds at least 1% of the history.
    pub off_hours_margin_hours: u32,
    /// Distinct customers of others read in one day that make bulk access.
    pub foreign_min_customers: u64,
    /// Self-transfers this many days before a resignation or departure are flagged.
    pub self_transfer_days: u32,
    /// Longest acceptable time from departure to account disable.
    pub late_revocation_minutes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            spike_factor: 3.0,
            spike_window_days: 14,
            spike_min_days: 5,
            spike_min_count: 40,
            off_hours_min_events: 100,
            off_hours_margin_hours: 1,
            foreign_min_customers: 25,
            self_transfer_days: 30,
            late_revocation_minutes: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Every rule's name.
pub const RULES: [&str; 7] = [
    "activity_after_disable",
    "export_in_notice_period",
    "volume_spike",
    "off_hours",
    "foreign_customers",
    "self_transfer",
    "late_revocation",
];

/// An entry that shows an anomaly: its seq and hash.
pub type Evidence = (u64, [u8; 32]);

#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub rule: &'static str,
    pub severity: Severity,
    pub employee: EmployeeId,
    /// When the triggering action happened.
    pub at: Timestamp,
    pub explanation: String,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    /// Views and exports per active day (the last `spike_window_days + 1` days kept).
    days: BTreeMap<i32, u64>,
    today_evidence: Vec<Evidence>,
    spike_flagged: Option<i32>,
    hours: [u64; 24],
    total: u64,
    off_hours_flagged: Option<i32>,
    foreign_day: Option<i32>,
    foreign_seen: HashSet<CustomerId>,
    foreign_evidence: Vec<Evidence>,
    foreign_flagged: Option<i32>,
    /// Distinct foreign customers read per active day (the trailing window).
    foreign_days: BTreeMap<i32, u64>,
    self_transfers: Vec<(Timestamp, Evidence, CustomerId)>,
    resigned: Option<Evidence>,
    disabled: Option<Evidence>,
    departed: Option<(Timestamp, Evidence)>,
}

/// The anomaly rules' state: per employee, what the rules need to remember.
#[derive(Debug, Default, Clone)]
pub struct Detector {
    thresholds: Thresholds,
    stats: HashMap<EmployeeId, Stats>,
}

fn fmt_gap(micros: i64) -> String {
    let m = micros.unsigned_abs() / 60_000_000;
    let (d, h, m) = (m / 1440, (m / 60) % 24, m % 60);
    let sign = if micros < 0 { "-" } else { "" };
    match (d, h) {
        (0, 0) => format!("{sign}{m} min"),
        (0, _) => format!("{sign}{h} h {m} min"),
        _ => format!("{sign}{d} d {h} h"),
    }
}

fn is_access(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::CustomerViewed { .. } | EventKind::CustomersExported { .. }
    )
}

impl Detector {
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            stats: HashMap::new(),
        }
    }

    /// Folds one event in, judged against `before` (the projections just before it), and returns
    /// the anomalies it shows.
    pub fn observe(
        &mut self,
        before: &State,
        seq: u64,
        hash: [u8; 32],
        event: &Event,
    ) -> Vec<Anomaly> {
        let Detector {
            thresholds: t,
            stats,
        } = self;
        let t = &*t;
        let me: Evidence = (seq, hash);
        let mut out = Vec::new();
        let at = event.occurred_at;
        let day = Date::of(at).0;
        // HR's view of an employee: resignation, departure, disable.
        match &event.kind {
            EventKind::ResignationSubmitted { employee, .. } => {
                let s = stats_of(stats, employee);
                s.resigned = Some(me);
                out.extend(self_transfers_before(employee, s, at, me, t, "resigned"));
            }
            EventKind::EmployeeDeparted {
                employee,
                effective_at,
                ..
            } => {
                let s = stats_of(stats, employee);
                s.departed = Some((*effective_at, me));
                if s.resigned.is_none() {
                    out.extend(self_transfers_before(employee, s, at, me, t, "left"));
                }
                s.self_transfers.clear();
            }
            EventKind::AccountDisabled { employee, .. } => {
                let s = stats_of(stats, employee);
                s.disabled = Some(me);
                if let Some((effective, departed)) = s.departed {
                    let gap = at.0 - effective.0;
                    if gap > t.late_revocation_minutes as i64 * 60_000_000 {
                        out.push(Anomaly {
                            rule: "late_revocation",
                            severity: Severity::High,
                            employee: employee.clone(),
                            at,
                            explanation: format!(
                                "{employee}'s account was disabled {} after the departure took effect (limit {} min)",
                                fmt_gap(gap),
                                t.late_revocation_minutes
                            ),
                            evidence: vec![departed, me],
                        });
                    }
                }
            }
            EventKind::AccountReenabled { employee, .. } => {
                let s = stats_of(stats, employee);
                s.disabled = None;
                s.departed = None;
                s.resigned = None;
            }
            _ => {}
        }
        let Actor::Employee(id) = &event.actor else {
            return out;
        };
        // An account that should not act at all.
        if let Some(Flag::ActivityAfterDisable { gap_micros, .. }) =
            flags::immediate(&before.directory, event)
        {
            let s = stats_of(stats, id);
            let mut evidence: Vec<Evidence> =
                s.disabled.or(s.departed.map(|d| d.1)).into_iter().collect();
            evidence.push(me);
            out.push(Anomaly {
                rule: "activity_after_disable",
                severity: Severity::Critical,
                employee: id.clone(),
                at,
                explanation: format!(
                    "{id} acted ({}) {} after the account was disabled or its holder left",
                    event.kind.name(),
                    fmt_gap(gap_micros)
                ),
                evidence,
            });
        }
        let employee = before.directory.get(id);
        let s = stats_of(stats, id);
        // Exports in the notice period.
        if matches!(
            event.kind,
            EventKind::CustomersExported { .. } | EventKind::ReportExported { .. }
        ) && employee
            .is_some_and(|e| matches!(e.employment, crate::directory::Employment::Resigned { .. }))
        {
            let what = match &event.kind {
                EventKind::CustomersExported { count, .. } => format!("{count} customer records"),
                EventKind::ReportExported { rows, .. } => format!("a report of {rows} rows"),
                _ => String::new(),
            };
            out.push(Anomaly {
                rule: "export_in_notice_period",
                severity: Severity::High,
                employee: id.clone(),
                at,
                explanation: format!("{id} exported {what} after resigning, before leaving"),
                evidence: s.resigned.into_iter().chain([me]).collect(),
            });
        }
        // Off hours, against the employee's own history.
        let hour = ((at.0.rem_euclid(Timestamp::MICROS_PER_DAY)) / 3_600_000_000) as usize;
        if s.total >= t.off_hours_min_events && s.off_hours_flagged != Some(day) {
            let m = t.off_hours_margin_hours as i64;
            let usual = (-m..=m).any(|d| {
                let h = (hour as i64 + d).rem_euclid(24) as usize;
                s.hours[h] * 100 >= s.total
            });
            if !usual {
                s.off_hours_flagged = Some(day);
                out.push(Anomaly {
                    rule: "off_hours",
                    severity: Severity::Medium,
                    employee: id.clone(),
                    at,
                    explanation: format!(
                        "{id} acted ({}) at {hour:02}:00–{:02}:00 UTC, hours their {} earlier actions never use",
                        event.kind.name(),
                        (hour + 1) % 24,
                        s.total
                    ),
                    evidence: vec![me],
                });
            }
        }
        s.hours[hour] += 1;
        s.total += 1;
        // Volume: views and exports per day against the trailing median.
        if is_access(&event.kind) {
            if !s.days.contains_key(&day) {
                s.today_evidence.clear();
            }
            let count = {
                let c = s.days.entry(day).or_default();
                *c += 1;
                *c
            };
            if s.today_evidence.len() < 20 {
                s.today_evidence.push(me);
            }
            let window: Vec<u64> = s
                .days
                .range(..day)
                .rev()
                .take(t.spike_window_days as usize)
                .map(|(_, c)| *c)
                .collect();
            if window.len() >= t.spike_min_days as usize
                && s.spike_flagged != Some(day)
                && count >= t.spike_min_count
            {
                let mut sorted = window.clone();
                sorted.sort_unstable();
                let median = sorted[sorted.len() / 2] as f64;
                if count as f64 > t.spike_factor * median {
                    s.spike_flagged = Some(day);
                    let mut evidence = s.today_evidence.clone();
                    if evidence.last() != Some(&me) {
                        evidence.push(me);
                    }
                    out.push(Anomaly {
                        rule: "volume_spike",
                        severity: Severity::Medium,
                        employee: id.clone(),
                        at,
                        explanation: format!(
                            "{id} read or exported customers {count} times today, over {} × their median of {median} a day over the last {} active days",
                            t.spike_factor,
                            window.len()
                        ),
                        evidence,
                    });
                }
            }
            while s.days.len() > t.spike_window_days as usize + 1 {
                let first = *s.days.keys().next().expect("non-empty");
                s.days.remove(&first);
            }
        }
        // Bulk reads of other people's customers.
        if let EventKind::CustomerViewed { customer } | EventKind::CustomerUpdated { customer, .. } =
            &event.kind
            && before
                .ownership
                .customer(customer)
                .is_some_and(|c| c.owner != *id)
        {
            if s.foreign_day != Some(day) {
                s.foreign_day = Some(day);
                s.foreign_seen.clear();
                s.foreign_evidence.clear();
            }
            if s.foreign_seen.insert(customer.clone()) && s.foreign_evidence.len() < 20 {
                s.foreign_evidence.push(me);
            }
            let today = s.foreign_seen.len() as u64;
            s.foreign_days.insert(day, today);
            while s.foreign_days.len() > t.spike_window_days as usize + 1 {
                let first = *s.foreign_days.keys().next().expect("non-empty");
                s.foreign_days.remove(&first);
            }
            // Against the employee's own habit (so, like volume, not before there is one):
            // reading others' customers every day may be their job.
            let mut usual: Vec<u64> = s.foreign_days.range(..day).map(|(_, c)| *c).collect();
            let above_habit = usual.len() >= t.spike_min_days as usize && {
                usual.sort_unstable();
                today as f64 > t.spike_factor * usual[usual.len() / 2] as f64
            };
            if today >= t.foreign_min_customers && above_habit && s.foreign_flagged != Some(day) {
                s.foreign_flagged = Some(day);
                out.push(Anomaly {
                    rule: "foreign_customers",
                    severity: Severity::High,
                    employee: id.clone(),
                    at,
                    explanation: format!(
                        "{id} read {} customers of other owners in one day",
                        s.foreign_seen.len()
                    ),
                    evidence: s.foreign_evidence.clone(),
                });
            }
        }
        // Customers moved to themselves.
        if let EventKind::OwnershipTransferred {
            resource: Resource::Customer(customer),
            to,
            ..
        } = &event.kind
            && to == id
        {
            s.self_transfers.push((at, me, customer.clone()));
            if let Some(resigned) = s.resigned
                && employee.is_some_and(|e| {
                    matches!(e.employment, crate::directory::Employment::Resigned { .. })
                })
            {
                out.push(Anomaly {
                    rule: "self_transfer",
                    severity: Severity::High,
                    employee: id.clone(),
                    at,
                    explanation: format!(
                        "{id} moved customer {customer} to themselves during their notice period"
                    ),
                    evidence: vec![resigned, me],
                });
            }
        }
        out
    }
}

/// The employee's memory, made on first sight (without cloning the id on every event).
fn stats_of<'s>(stats: &'s mut HashMap<EmployeeId, Stats>, id: &EmployeeId) -> &'s mut Stats {
    if !stats.contains_key(id) {
        stats.insert(id.clone(), Stats::default());
    }
    stats.get_mut(id).expect("just made")
}

/// The self-transfer anomaly, if `employee` moved customers to themselves shortly before `at`.
fn self_transfers_before(
    employee: &EmployeeId,
    s: &Stats,
    at: Timestamp,
    me: Evidence,
    t: &Thresholds,
    what: &str,
) -> Option<Anomaly> {
    let since = at.0 - i64::from(t.self_transfer_days) * Timestamp::MICROS_PER_DAY;
    let recent: Vec<&(Timestamp, Evidence, CustomerId)> = s
        .self_transfers
        .iter()
        .filter(|(t, _, _)| t.0 >= since)
        .collect();
    if recent.is_empty() {
        return None;
    }
    let mut evidence: Vec<Evidence> = recent.iter().map(|(_, e, _)| *e).collect();
    evidence.push(me);
    Some(Anomaly {
        rule: "self_transfer",
        severity: Severity::High,
        employee: employee.clone(),
        at,
        explanation: format!(
            "{employee} moved {} customer(s) to themselves in the {} days before they {what}: {}",
            recent.len(),
            t.self_transfer_days,
            recent
                .iter()
                .map(|(_, _, c)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        evidence,
    })
}
