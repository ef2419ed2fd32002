//! A/B mode: is side B (other binaries, or the same binaries with extra
//! daemon environment) any slower than side A? Both sides run the same
//! scenarios, on the same placement, alternated A, B, A, B, ... in one
//! sitting; each side's figures are the medians of its rounds, and the
//! verdict is judged on two-daemon RPC at 1 and 64 in flight.

pub mod render;
pub mod summary;
pub mod verdict;

use std::path::PathBuf;

use serde::Serialize;

use crate::report::{Fact, Report, Row};
use crate::scenario::{self, Env};
use crate::stats::median;
use summary::{AbRow, Side, schedule};
use verdict::Verdict;

/// One side as the run sees it: what it is called and what it runs.
pub struct SideSpec {
    pub label: String,
    pub env: Env,
}

/// A side as the report names it.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    pub side: Side,
    pub label: String,
    pub bin_dir: PathBuf,
    /// `VAR=VALUE` given to this side's daemons.
    pub daemon_env: Vec<String>,
}

/// One side's run of the scenarios in one round, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub round: usize,
    pub side: Side,
    pub rows: Vec<Row>,
    pub facts: Vec<Fact>,
}

/// A memory fact, each side's median across its rounds.
#[derive(Debug, Clone, Serialize)]
pub struct AbFact {
    pub key: String,
    pub label: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AbReport {
    pub placement: String,
    pub cpus_online: usize,
    pub secs_per_figure: f64,
    pub repeats: usize,
    pub body_bytes: usize,
    pub rounds: usize,
    /// The order the sides ran in: `A1`, `B1`, `A2`, ...
    pub order: Vec<String>,
    pub sides: Vec<SideInfo>,
    pub rows: Vec<AbRow>,
    pub facts: Vec<AbFact>,
    pub verdict: Verdict,
    /// Every round of every side, in the order they ran.
    pub runs: Vec<Run>,
}

/// Runs `only` for A then B, `rounds` times; `blank` is the report header
/// each run starts from.
pub async fn run(
    (a, b): (&SideSpec, &SideSpec),
    rounds: usize,
    only: &[String],
    blank: &Report,
) -> AbReport {
    let mut reports: Vec<(usize, Side, Report)> = Vec::new();
    for (round, side) in schedule(rounds) {
        let spec = match side {
            Side::A => a,
            Side::B => b,
        };
        eprintln!(
            "bench: round {round}/{rounds}, side {side:?}: {}",
            spec.label
        );
        let mut report = blank.clone();
        scenario::run_all(&spec.env, &mut report, only).await;
        reports.push((round, side, report));
    }
    let of = |wanted: Side| -> Vec<Report> {
        reports
            .iter()
            .filter(|(_, side, _)| *side == wanted)
            .map(|(_, _, r)| r.clone())
            .collect()
    };
    let (in_a, in_b) = (of(Side::A), of(Side::B));
    let rows = summary::rows(&in_a, &in_b);
    AbReport {
        placement: blank.placement.clone(),
        cpus_online: blank.cpus_online,
        secs_per_figure: blank.secs_per_figure,
        repeats: blank.repeats,
        body_bytes: blank.body_bytes,
        rounds,
        order: reports
            .iter()
            .map(|(round, side, _)| format!("{side:?}{round}"))
            .collect(),
        sides: vec![info(Side::A, a), info(Side::B, b)],
        verdict: verdict::judge(&rows, rounds),
        rows,
        facts: facts(&in_a, &in_b),
        runs: reports
            .into_iter()
            .map(|(round, side, r)| Run {
                round,
                side,
                rows: r.rows,
                facts: r.facts,
            })
            .collect(),
    }
}

fn info(side: Side, spec: &SideSpec) -> SideInfo {
    SideInfo {
        side,
        label: spec.label.clone(),
        bin_dir: spec.env.bins.dir.clone(),
        daemon_env: spec
            .env
            .bins
            .daemon_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
    }
}

/// Each memory fact either side measured, with each side's median.
fn facts(a: &[Report], b: &[Report]) -> Vec<AbFact> {
    let mut out: Vec<AbFact> = Vec::new();
    for fact in a.iter().chain(b).flat_map(|r| &r.facts) {
        if out.iter().any(|f| f.key == fact.key) {
            continue;
        }
        let of = |reports: &[Report]| {
            median(
                &reports
                    .iter()
                    .filter_map(|r| r.fact_mb(&fact.key))
                    .collect::<Vec<_>>(),
            )
        };
        out.push(AbFact {
            key: fact.key.clone(),
            label: fact.label.clone(),
            a: of(a),
            b: of(b),
        });
    }
    out
}
