//! One figure of the table: a warm-up, then `repeats` measurements of the
//! closed loop at one depth, reduced to medians, with the daemons' CPU time
//! per 1,000 operations and their peak resident memory.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::load::{OpResult, Sample, closed_loop};
use crate::procs::{cpu_secs_of, status_mb};
use crate::stats::median;

/// How long and how often each figure is measured.
#[derive(Debug, Clone)]
pub struct Plan {
    pub levels: Vec<usize>,
    pub secs: Duration,
    pub warmup: Duration,
    pub repeats: usize,
}

/// Medians over the repeats of one path at one depth.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Operations that failed, over every repeat.
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU time (user + system) of the daemons on the path per 1,000 operations, ms.
    pub daemon_cpu_ms_per_1k: Option<f64>,
    /// Largest peak resident memory among the daemons on the path, MB.
    pub daemon_peak_rss_mb: Option<f64>,
    pub repeats: usize,
}

impl Figures {
    /// From samples measured elsewhere (the floor, lymph): medians only.
    pub fn from_triples(triples: &[(f64, f64, f64)]) -> Option<Figures> {
        let column =
            |f: fn(&(f64, f64, f64)) -> f64| median(&triples.iter().map(f).collect::<Vec<_>>());
        Some(Figures {
            rate: column(|t| t.0)?,
            p50_us: column(|t| t.1)?,
            p99_us: column(|t| t.2)?,
            errors: 0,
            first_error: None,
            daemon_cpu_ms_per_1k: None,
            daemon_peak_rss_mb: None,
            repeats: triples.len(),
        })
    }
}

/// Measures `op` at `inflight`, metering the daemons `pids`.
pub async fn measure<F, Fut>(plan: &Plan, inflight: usize, pids: &[u32], op: F) -> Figures
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = OpResult>,
{
    let _warm = closed_loop(inflight, plan.warmup, &op).await;
    let mut samples: Vec<Sample> = Vec::with_capacity(plan.repeats);
    let mut cpu_per_1k = Vec::with_capacity(plan.repeats);
    for _ in 0..plan.repeats.max(1) {
        let cpu_before = cpu_secs_of(pids);
        let sample = closed_loop(inflight, plan.secs, &op).await;
        let cpu = cpu_secs_of(pids) - cpu_before;
        if sample.ok > 0 && !pids.is_empty() {
            cpu_per_1k.push(cpu * 1e3 / sample.ok as f64 * 1e3);
        }
        samples.push(sample);
    }
    let of = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    Figures {
        rate: of(Sample::rate).unwrap_or(f64::NAN),
        p50_us: of(Sample::p50_us).unwrap_or(f64::NAN),
        p99_us: of(Sample::p99_us).unwrap_or(f64::NAN),
        errors: samples.iter().map(|s| s.errors).sum(),
        first_error: samples.iter().find_map(|s| s.first_error.clone()),
        daemon_cpu_ms_per_1k: median(&cpu_per_1k),
        daemon_peak_rss_mb: pids
            .iter()
            .filter_map(|p| status_mb(*p, "VmHWM:"))
            .reduce(f64::max),
        repeats: samples.len(),
    }
}
