//! One series of timed work: a count, errors, and latency in fixed buckets
//! (quantiles read from the buckets).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency bucket upper bounds in microseconds (the last bucket is open).
const BUCKETS_US: [u64; 16] = [
    50, 100, 200, 350, 500, 750, 1_000, 2_000, 3_500, 5_000, 10_000, 25_000, 50_000, 100_000,
    500_000, 1_000_000,
];

#[derive(Default)]
pub struct SubjectStats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    total_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
}

impl SubjectStats {
    pub fn record(&self, elapsed: Duration, failed: bool) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.total_us.fetch_add(us, Ordering::Relaxed);
        let bucket = BUCKETS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The upper bound (µs) of the bucket holding the given quantile.
    pub fn quantile_us(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return BUCKETS_US.get(i).copied().unwrap_or(u64::MAX);
            }
        }
        u64::MAX
    }

    pub fn mean_us(&self) -> u64 {
        let calls = self.calls.load(Ordering::Relaxed);
        self.total_us
            .load(Ordering::Relaxed)
            .checked_div(calls)
            .unwrap_or(0)
    }
}
