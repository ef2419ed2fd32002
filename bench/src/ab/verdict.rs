//! The A/B verdict: whether side B costs anything against side A, judged on
//! the medians of two-daemon RPC at 1 and 64 in flight. B "costs nothing"
//! when, at both depths, its rate is at least 95% of A's and its p50 at most
//! 105% of A's. Pure: figures in, words out.

use serde::Serialize;

use super::summary::{AbRow, SideFigures};
use crate::table::rate;

/// The row the verdict is judged on, and its depths.
pub const VERDICT_KEY: &str = "rpc.fleet";
pub const VERDICT_DEPTHS: [usize; 2] = [1, 64];
/// Within this fraction of A a difference is noise, not a cost.
pub const TOLERANCE: f64 = 0.05;
/// Fewer rounds than this and the verdict is only indicative.
pub const MIN_ROUNDS: usize = 3;

/// What B costs at one depth, from its rate and p50 against A's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "cost", content = "percent", rename_all = "snake_case")]
pub enum Cost {
    /// Both within the tolerance.
    Within,
    /// Both better by more than the tolerance; by at least this many percent.
    Faster(f64),
    /// Either worse by more than the tolerance; by this many percent (the worse).
    Slower(f64),
}

impl Cost {
    /// B/A ratios of rate (higher is better) and p50 (lower is better).
    pub fn of(rate_ratio: f64, p50_ratio: f64) -> Cost {
        // Positive: B slower. Rate lost as a fraction of A's; p50 gained.
        let rate_loss = 1.0 - rate_ratio;
        let p50_gain = p50_ratio - 1.0;
        let worst = rate_loss.max(p50_gain);
        if worst > TOLERANCE {
            Cost::Slower(worst * 100.0)
        } else if worst < -TOLERANCE {
            Cost::Faster(-worst * 100.0)
        } else {
            Cost::Within
        }
    }

    pub fn is_free(self) -> bool {
        !matches!(self, Cost::Slower(_))
    }

    fn words(self) -> String {
        match self {
            Cost::Within => "within 5% (costs nothing)".to_owned(),
            Cost::Faster(pct) => format!("faster by {pct:.0}% (costs nothing)"),
            Cost::Slower(pct) => format!("slower by {pct:.0}%"),
        }
    }
}

/// The verdict at one depth: a line of text and, when both sides measured
/// it, the ratios and cost it says.
#[derive(Debug, Clone, Serialize)]
pub struct DepthVerdict {
    pub inflight: usize,
    pub rate_ratio: Option<f64>,
    pub p50_ratio: Option<f64>,
    pub cost: Option<Cost>,
    pub line: String,
}

/// Every depth's verdict, then the overall line.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub depths: Vec<DepthVerdict>,
    /// True when B costs nothing at every depth and enough rounds ran.
    pub costs_nothing: Option<bool>,
    pub overall: String,
}

pub fn judge(rows: &[AbRow], rounds: usize) -> Verdict {
    let depths: Vec<DepthVerdict> = VERDICT_DEPTHS
        .iter()
        .map(|&inflight| at_depth(rows, inflight))
        .collect();
    let costs: Option<Vec<Cost>> = depths.iter().map(|d| d.cost).collect();
    let (costs_nothing, mut overall) = match costs {
        None => (
            None,
            "no verdict: a side did not measure two-daemon RPC at every depth".to_owned(),
        ),
        Some(costs) if costs.iter().all(|c| c.is_free()) => (
            Some(true),
            "B costs nothing: two-daemon RPC at 1 and 64 in flight within 5% of A or faster"
                .to_owned(),
        ),
        Some(costs) => {
            let worst = costs
                .iter()
                .filter_map(|c| match c {
                    Cost::Slower(pct) => Some(*pct),
                    _ => None,
                })
                .fold(0.0, f64::max);
            (
                Some(false),
                format!("B costs up to {worst:.0}%: slower than A beyond 5%"),
            )
        }
    };
    if rounds < MIN_ROUNDS {
        overall.push_str(&format!(
            " (only {rounds} round(s) per side: indicative, a verdict needs {MIN_ROUNDS} or more)"
        ));
    }
    Verdict {
        costs_nothing: costs_nothing.filter(|_| rounds >= MIN_ROUNDS),
        depths,
        overall,
    }
}

fn at_depth(rows: &[AbRow], inflight: usize) -> DepthVerdict {
    let what = format!("two-daemon RPC at {inflight} in flight");
    let Some(row) = rows
        .iter()
        .find(|r| r.key == VERDICT_KEY && r.inflight == inflight)
    else {
        return unjudged(
            inflight,
            format!("{what}: not run (add {inflight} to --inflight)"),
        );
    };
    let (a, b) = match (&row.a, &row.b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(why), _) => return unjudged(inflight, format!("{what}: side A {why}")),
        (_, Err(why)) => return unjudged(inflight, format!("{what}: side B {why}")),
    };
    let (rate_ratio, p50_ratio) = (b.rate / a.rate, b.p50_us / a.p50_us);
    let cost = Cost::of(rate_ratio, p50_ratio);
    DepthVerdict {
        inflight,
        rate_ratio: Some(rate_ratio),
        p50_ratio: Some(p50_ratio),
        cost: Some(cost),
        line: format!(
            "{what}: B/A rate {rate_ratio:.2}, p50 {p50_ratio:.2} -> {}; rounds' rates A {}, B {}",
            cost.words(),
            spread(a),
            spread(b)
        ),
    }
}

fn unjudged(inflight: usize, line: String) -> DepthVerdict {
    DepthVerdict {
        inflight,
        rate_ratio: None,
        p50_ratio: None,
        cost: None,
        line,
    }
}

/// `61.2k–64.0k/s`: the lowest and highest round, to see the noise.
fn spread(side: &SideFigures) -> String {
    let lo = side.rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = side.rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{}–{}/s", rate(lo), rate(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_within_five_percent_are_noise() {
        assert_eq!(Cost::of(1.0, 1.0), Cost::Within);
        assert_eq!(Cost::of(0.96, 1.04), Cost::Within);
        assert_eq!(Cost::of(1.04, 0.96), Cost::Within);
    }

    #[test]
    fn the_worse_of_rate_and_p50_decides_a_slowdown() {
        let Cost::Slower(pct) = Cost::of(0.90, 1.02) else {
            panic!("10% less throughput is a cost");
        };
        assert!((pct - 10.0).abs() < 1e-9);
        let Cost::Slower(pct) = Cost::of(1.10, 1.07) else {
            panic!("a 7% higher p50 is a cost even with more throughput");
        };
        assert!((pct - 7.0).abs() < 1e-9);
    }

    #[test]
    fn faster_only_when_both_improve_beyond_the_tolerance() {
        let Cost::Faster(pct) = Cost::of(1.20, 0.90) else {
            panic!("both better by more than 5%");
        };
        assert!((pct - 10.0).abs() < 1e-9);
        assert_eq!(Cost::of(1.20, 0.99), Cost::Within);
        assert!(Cost::of(1.20, 0.90).is_free());
        assert!(!Cost::of(0.5, 1.0).is_free());
    }

    fn side(rate: f64, p50_us: f64) -> Result<SideFigures, String> {
        Ok(SideFigures {
            rate,
            p50_us,
            p99_us: p50_us * 2.0,
            daemon_cpu_ms_per_1k: None,
            rates: vec![rate * 0.99, rate, rate * 1.01],
            errors: 0,
        })
    }

    fn row(
        inflight: usize,
        a: Result<SideFigures, String>,
        b: Result<SideFigures, String>,
    ) -> AbRow {
        AbRow {
            key: VERDICT_KEY.to_owned(),
            label: "RPC, two daemons".to_owned(),
            inflight,
            a,
            b,
        }
    }

    #[test]
    fn both_depths_within_tolerance_cost_nothing() {
        let rows = [
            row(1, side(7000.0, 130.0), side(6860.0, 132.6)),
            row(64, side(100_000.0, 450.0), side(103_000.0, 440.0)),
        ];
        let verdict = judge(&rows, 3);
        assert_eq!(verdict.costs_nothing, Some(true));
        assert!(
            verdict.depths[0].line.starts_with(
                "two-daemon RPC at 1 in flight: B/A rate 0.98, p50 1.02 -> within 5% (costs nothing)"
            ),
            "{}",
            verdict.depths[0].line
        );
        assert!(
            verdict.overall.starts_with("B costs nothing"),
            "{}",
            verdict.overall
        );
    }

    #[test]
    fn one_slow_depth_is_a_cost() {
        let rows = [
            row(1, side(7000.0, 130.0), side(7000.0, 130.0)),
            row(64, side(100_000.0, 450.0), side(88_000.0, 500.0)),
        ];
        let verdict = judge(&rows, 3);
        assert_eq!(verdict.costs_nothing, Some(false));
        assert!(
            verdict.depths[1].line.contains("-> slower by 12%"),
            "{}",
            verdict.depths[1].line
        );
        assert_eq!(
            verdict.overall,
            "B costs up to 12%: slower than A beyond 5%"
        );
    }

    #[test]
    fn too_few_rounds_or_a_missing_side_give_no_verdict() {
        let rows = [
            row(1, side(7000.0, 130.0), side(7000.0, 130.0)),
            row(64, side(100_000.0, 450.0), side(100_000.0, 450.0)),
        ];
        let verdict = judge(&rows, 1);
        assert_eq!(verdict.costs_nothing, None);
        assert!(
            verdict.overall.contains("only 1 round(s)"),
            "{}",
            verdict.overall
        );

        let rows = [
            row(
                1,
                side(7000.0, 130.0),
                Err("not measured: lymphd exited".to_owned()),
            ),
            row(64, side(100_000.0, 450.0), side(100_000.0, 450.0)),
        ];
        let verdict = judge(&rows, 3);
        assert_eq!(verdict.costs_nothing, None);
        assert_eq!(
            verdict.depths[0].line,
            "two-daemon RPC at 1 in flight: side B not measured: lymphd exited"
        );
        let verdict = judge(&rows[1..], 3);
        assert!(
            verdict.depths[0].line.contains("not run"),
            "{}",
            verdict.depths[0].line
        );
    }
}
