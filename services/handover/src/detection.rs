//! How well the anomaly rules find what the demo plants: each seed's history is folded through
//! the projections and the rules; the planted cases (`DemoGenerator::planted`) are the labels.
//! Used by a test (every planted case found, at most 2% of normal employees flagged) and by
//! `handover bench` (precision and recall per rule).

use std::collections::{BTreeMap, BTreeSet};

use projections::State;
use projections::anomaly::{Detector, RULES, Thresholds};
use proto_types::ids::EmployeeId;

use crate::demo::{DemoConfig, DemoGenerator};

#[derive(Debug, Default, Clone, Copy)]
pub struct Score {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
}

impl Score {
    pub fn precision(&self) -> Option<f64> {
        let flagged = self.true_positives + self.false_positives;
        (flagged > 0).then(|| self.true_positives as f64 / flagged as f64)
    }
    pub fn recall(&self) -> Option<f64> {
        let planted = self.true_positives + self.false_negatives;
        (planted > 0).then(|| self.true_positives as f64 / planted as f64)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Quality {
    /// Per rule, counted per (seed, employee).
    pub rules: BTreeMap<&'static str, Score>,
    /// Employees neither planted nor the heavy control, over all seeds, and how many of them
    /// any rule flagged.
    pub normal: u64,
    pub normal_flagged: u64,
    /// The heavy-but-steady controls flagged by any rule.
    pub heavy_flagged: u64,
    /// (seed, employee, rule) of planted cases not found.
    pub missed: Vec<(u64, EmployeeId, &'static str)>,
    /// (seed, employee, rule) of normal employees flagged.
    pub false_alarms: Vec<(u64, EmployeeId, &'static str)>,
}

/// Runs the demo for each seed and scores the rules against its planted cases.
pub fn evaluate(seeds: &[u64], employees: u32, customers: u32, days: u32) -> Quality {
    let mut q = Quality::default();
    for r in RULES {
        q.rules.insert(r, Score::default());
    }
    for &seed in seeds {
        let g = DemoGenerator::new(DemoConfig {
            employees,
            customers,
            days,
            seed,
            id_prefix: None,
        });
        let planted: BTreeMap<EmployeeId, &[&str]> = g.planted().into_iter().collect();
        let heavy = g.steady_heavy().cloned();
        let all: Vec<EmployeeId> = g.employees().cloned().collect();
        let mut state = State::default();
        let mut detector = Detector::new(Thresholds::default());
        let mut flagged: BTreeSet<(EmployeeId, &'static str)> = BTreeSet::new();
        for (seq, event) in g.enumerate() {
            for a in detector.observe(&state, seq as u64, [0; 32], &event) {
                flagged.insert((a.employee, a.rule));
            }
            state.apply(&event);
        }
        for e in &all {
            let labels: &[&str] = planted.get(e).copied().unwrap_or(&[]);
            let mine: Vec<&'static str> = flagged
                .iter()
                .filter(|(f, _)| f == e)
                .map(|(_, r)| *r)
                .collect();
            for rule in RULES {
                let (is, was) = (labels.contains(&rule), mine.contains(&rule));
                let s = q.rules.get_mut(rule).expect("every rule");
                match (is, was) {
                    (true, true) => s.true_positives += 1,
                    (false, true) => s.false_positives += 1,
                    (true, false) => {
                        s.false_negatives += 1;
                        q.missed.push((seed, e.clone(), rule));
                    }
                    (false, false) => {}
                }
            }
            if planted.contains_key(e) {
                continue;
            }
            if heavy.as_ref() == Some(e) {
                q.heavy_flagged += u64::from(!mine.is_empty());
                for r in mine {
                    q.false_alarms.push((seed, e.clone(), r));
                }
                continue;
            }
            q.normal += 1;
            if !mine.is_empty() {
                q.normal_flagged += 1;
                for r in mine {
                    q.false_alarms.push((seed, e.clone(), r));
                }
            }
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planted_case_is_found_by_its_rule_and_few_normal_employees_are_flagged() {
        let q = evaluate(&[1, 2, 3, 4], 80, 400, 40);
        assert!(q.missed.is_empty(), "planted cases missed: {:?}", q.missed);
        let planted: u64 = q.rules.values().map(|s| s.true_positives).sum();
        assert_eq!(planted, 4 * 7, "every seed plants its cases, each found");
        assert!(
            q.normal_flagged * 50 <= q.normal,
            "{} of {} normal employees flagged: {:?}",
            q.normal_flagged,
            q.normal,
            q.false_alarms
        );
        assert_eq!(
            q.heavy_flagged, 0,
            "heavy but steady work is not an anomaly: {:?}",
            q.false_alarms
        );
    }
}
