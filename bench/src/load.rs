//! The closed-loop load driver: `inflight` workers, each starting its next
//! operation as soon as the last one finished, until a deadline or a count
//! cap; it records each operation's latency. Knows nothing of what an
//! operation is.

use std::future::Future;
use std::time::{Duration, Instant};

use lymphd::stats::percentile;

use crate::stats::micros;

/// Operations one measurement may run at most, whatever its duration: a
/// bound on memory (one latency each) should the path be unexpectedly fast.
const MAX_OPS: u64 = 5_000_000;

/// One measurement: how many operations finished, in how long, how fast each.
#[derive(Debug, Clone)]
pub struct Sample {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Sorted latencies of the successful operations.
    pub latencies: Vec<Duration>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub fn p50_us(&self) -> f64 {
        percentile(&self.latencies, 50.0).map_or(f64::NAN, micros)
    }

    pub fn p99_us(&self) -> f64 {
        percentile(&self.latencies, 99.0).map_or(f64::NAN, micros)
    }
}

/// What an operation reports: its own latency when it measures one itself
/// (an event timed at its handler), else `None` and the driver times it.
pub type OpResult = Result<Option<Duration>, String>;

/// Runs `op(worker)` in a closed loop on `inflight` workers for `duration`.
/// Workers are polled together in this task (no spawn), so an operation need
/// not be `Send` and the driver adds no cross-task wake-up of its own.
pub async fn closed_loop<F, Fut>(inflight: usize, duration: Duration, op: F) -> Sample
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = OpResult>,
{
    let started = Instant::now();
    let deadline = started + duration;
    let per_worker_cap = MAX_OPS / inflight.max(1) as u64;
    let op = &op;
    let workers = (0..inflight.max(1)).map(|worker| async move {
        let mut latencies = Vec::new();
        let mut errors = 0u64;
        let mut first_error = None;
        let mut done = 0u64;
        while Instant::now() < deadline && done < per_worker_cap {
            let t0 = Instant::now();
            match op(worker).await {
                Ok(measured) => latencies.push(measured.unwrap_or_else(|| t0.elapsed())),
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
            done += 1;
        }
        (latencies, errors, first_error)
    });
    let results = futures::future::join_all(workers).await;
    let elapsed = started.elapsed();
    let mut sample = Sample {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed,
        latencies: Vec::new(),
    };
    for (latencies, errors, first_error) in results {
        sample.latencies.extend(latencies);
        sample.errors += errors;
        if sample.first_error.is_none() {
            sample.first_error = first_error;
        }
    }
    sample.ok = sample.latencies.len() as u64;
    sample.latencies.sort_unstable();
    sample
}
