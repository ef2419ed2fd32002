//! The pure part of an A/B run: the order the sides run in, each side's
//! medians across its rounds, B/A ratios. No clocks, no IO, no processes.

use serde::{Serialize, Serializer};

use crate::measure::Figures;
use crate::report::{Outcome, Report};
use crate::stats::median;

/// One of the two sides compared: A the baseline, B the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Side {
    A,
    B,
}

/// Which side runs when: A, B, A, B, ... `rounds` each, as (round, side),
/// rounds counted from 1. Alternating spreads the machine's drift over both.
pub fn schedule(rounds: usize) -> Vec<(usize, Side)> {
    (1..=rounds)
        .flat_map(|round| [(round, Side::A), (round, Side::B)])
        .collect()
}

/// One side's figures for one row: medians across the rounds that measured
/// it, and each round's rate (to see the noise the medians hide).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideFigures {
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub daemon_cpu_ms_per_1k: Option<f64>,
    pub rates: Vec<f64>,
    /// Operations that failed, over every round.
    pub errors: u64,
}

impl SideFigures {
    /// Medians of the rounds' figures; `None` when no round measured the row.
    pub fn of(rounds: &[&Figures]) -> Option<SideFigures> {
        let column =
            |f: fn(&Figures) -> f64| median(&rounds.iter().map(|r| f(r)).collect::<Vec<_>>());
        let cpu: Vec<f64> = rounds
            .iter()
            .filter_map(|r| r.daemon_cpu_ms_per_1k)
            .collect();
        Some(SideFigures {
            rate: column(|f| f.rate)?,
            p50_us: column(|f| f.p50_us)?,
            p99_us: column(|f| f.p99_us)?,
            daemon_cpu_ms_per_1k: median(&cpu),
            rates: rounds.iter().map(|r| r.rate).collect(),
            errors: rounds.iter().map(|r| r.errors).sum(),
        })
    }
}

/// One path at one depth, both sides: medians, or why a side has none.
#[derive(Debug, Clone, Serialize)]
pub struct AbRow {
    pub key: String,
    pub label: String,
    pub inflight: usize,
    #[serde(serialize_with = "side_json")]
    pub a: Result<SideFigures, String>,
    #[serde(serialize_with = "side_json")]
    pub b: Result<SideFigures, String>,
}

/// A side in the JSON as a run's rows are: `"status": "measured"` with the
/// figures, or `"status": "not_measured"` with why.
fn side_json<S: Serializer>(side: &Result<SideFigures, String>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(tag = "status", rename_all = "snake_case")]
    enum Json<'a> {
        Measured(&'a SideFigures),
        NotMeasured { why: &'a str },
    }
    match side {
        Ok(figures) => Json::Measured(figures),
        Err(why) => Json::NotMeasured { why },
    }
    .serialize(s)
}

impl AbRow {
    /// B/A of a figure, when both sides have it.
    pub fn ratio(&self, f: fn(&SideFigures) -> Option<f64>) -> Option<f64> {
        match (&self.a, &self.b) {
            (Ok(a), Ok(b)) => Some(f(b)? / f(a)?),
            _ => None,
        }
    }
}

/// Every row either side measured, in the order the rounds ran them.
pub fn rows(a: &[Report], b: &[Report]) -> Vec<AbRow> {
    let mut order: Vec<(String, String, usize)> = Vec::new();
    for row in a.iter().chain(b).flat_map(|r| &r.rows) {
        if !order
            .iter()
            .any(|(k, _, i)| *k == row.key && *i == row.inflight)
        {
            order.push((row.key.clone(), row.label.clone(), row.inflight));
        }
    }
    order
        .into_iter()
        .map(|(key, label, inflight)| AbRow {
            a: side(a, &key, inflight),
            b: side(b, &key, inflight),
            key,
            label,
            inflight,
        })
        .collect()
}

/// One side's medians for `key` at `inflight`, or why no round measured it.
fn side(reports: &[Report], key: &str, inflight: usize) -> Result<SideFigures, String> {
    let measured: Vec<&Figures> = reports
        .iter()
        .filter_map(|r| r.figures(key, inflight))
        .collect();
    SideFigures::of(&measured).ok_or_else(|| {
        reports
            .iter()
            .flat_map(|r| &r.rows)
            .find_map(|r| match &r.outcome {
                Outcome::NotMeasured { why } if r.key == key && r.inflight == inflight => {
                    Some(why.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| "not measured: not run on this side".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Row;

    fn figures(rate: f64, p50_us: f64) -> Figures {
        Figures {
            rate,
            p50_us,
            p99_us: p50_us * 2.0,
            errors: 0,
            first_error: None,
            daemon_cpu_ms_per_1k: Some(1e6 / rate),
            daemon_peak_rss_mb: None,
            repeats: 1,
        }
    }

    fn report(rows: &[(&str, usize, Option<Figures>)]) -> Report {
        Report {
            placement: String::new(),
            cpus_online: 2,
            secs_per_figure: 1.0,
            repeats: 1,
            body_bytes: 100,
            rows: rows
                .iter()
                .map(|(key, inflight, f)| Row {
                    key: (*key).to_owned(),
                    label: format!("{key} label"),
                    inflight: *inflight,
                    floor: None,
                    lymph: None,
                    outcome: f.clone().map_or_else(
                        || Outcome::NotMeasured {
                            why: "not measured: no ZooKeeper".to_owned(),
                        },
                        Outcome::Measured,
                    ),
                })
                .collect(),
            facts: Vec::new(),
            checks: Vec::new(),
        }
    }

    #[test]
    fn sides_alternate_a_then_b_every_round() {
        use Side::{A, B};
        assert_eq!(
            schedule(3),
            [(1, A), (1, B), (2, A), (2, B), (3, A), (3, B)]
        );
        assert_eq!(schedule(1), [(1, A), (1, B)]);
        assert!(schedule(0).is_empty());
    }

    #[test]
    fn each_side_takes_the_median_of_its_rounds() {
        let a: Vec<Report> = [100.0, 300.0, 200.0]
            .iter()
            .map(|&r| report(&[("rpc.fleet", 1, Some(figures(r, 1e6 / r)))]))
            .collect();
        let b: Vec<Report> = [90.0, 110.0, 1000.0]
            .iter()
            .map(|&r| report(&[("rpc.fleet", 1, Some(figures(r, 1e6 / r)))]))
            .collect();
        let rows = rows(&a, &b);
        assert_eq!(rows.len(), 1);
        let (ra, rb) = (rows[0].a.clone(), rows[0].b.clone());
        let (ra, rb) = (ra.expect("A measured"), rb.expect("B measured"));
        assert_eq!((ra.rate, ra.p50_us), (200.0, 1e6 / 200.0));
        // An outlier round moves the median no further than the middle round.
        assert_eq!((rb.rate, rb.p50_us), (110.0, 1e6 / 110.0));
        assert_eq!(rb.rates, [90.0, 110.0, 1000.0]);
        assert_eq!(rows[0].ratio(|s| Some(s.rate)), Some(110.0 / 200.0));
    }

    #[test]
    fn a_side_without_figures_says_why() {
        let a = vec![report(&[("rpc.fleet", 1, Some(figures(100.0, 10.0)))])];
        let b = vec![report(&[("rpc.fleet", 1, None), ("rpc.fleet", 64, None)])];
        let rows = rows(&a, &b);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].b, Err("not measured: no ZooKeeper".to_owned()));
        assert_eq!(rows[0].ratio(|s| Some(s.rate)), None);
        // The JSON says so as a run's rows do.
        let json = serde_json::to_value(&rows[0]).expect("serializes");
        assert_eq!(json["a"]["status"], "measured");
        assert_eq!(json["a"]["rate"], 100.0);
        assert_eq!(json["b"]["status"], "not_measured");
        assert_eq!(json["b"]["why"], "not measured: no ZooKeeper");
        assert_eq!(
            rows[1].a,
            Err("not measured: not run on this side".to_owned())
        );
    }

    #[test]
    fn rounds_that_missed_a_row_do_not_count_for_it() {
        let a = vec![
            report(&[("rpc.fleet", 64, Some(figures(100.0, 10.0)))]),
            report(&[("rpc.fleet", 64, None)]),
            report(&[("rpc.fleet", 64, Some(figures(300.0, 30.0)))]),
        ];
        let rows = rows(&a, &a);
        let ra = rows[0].a.clone().expect("measured");
        assert_eq!(ra.rate, 200.0);
        assert_eq!(ra.rates.len(), 2);
    }
}
