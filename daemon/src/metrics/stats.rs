//! Timed series: counts, and durations in fixed buckets from 25 µs to 10 s.
//! lymph's mean and quantiles and the Prometheus histograms read the same
//! buckets. Recording is a few relaxed atomic adds; a failure kind's timing
//! is made on its first failure.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ErrorKind;

/// Bucket upper bounds in microseconds (the last bucket is open): 25 µs to
/// 10 s, 1-2.5-5 steps (the range the issue of the exporters asks for).
pub const BUCKETS_US: [u64; 18] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Buckets, the open one included.
const SLOTS: usize = BUCKETS_US.len() + 1;

/// Error kinds by their proto number (0, `Unspecified`, holds the failures
/// recorded without their kind: the labelled histograms are off).
const KIND_SLOTS: usize = 14;

/// Durations of one kind of outcome.
#[derive(Default)]
pub struct Timing {
    count: AtomicU64,
    sum_us: AtomicU64,
    buckets: [AtomicU64; SLOTS],
}

impl Timing {
    pub fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        let bucket = BUCKETS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            count: self.count.load(Ordering::Relaxed),
            sum_us: self.sum_us.load(Ordering::Relaxed),
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }
}

/// A timing read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub count: u64,
    pub sum_us: u64,
    /// Per bucket, not cumulative; the last is the open one.
    pub buckets: [u64; SLOTS],
}

impl Snapshot {
    fn add(&mut self, other: &Snapshot) {
        self.count += other.count;
        self.sum_us += other.sum_us;
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
    }

    /// The upper bound (µs) of the bucket holding the given quantile.
    pub fn quantile_us(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return BUCKETS_US.get(i).copied().unwrap_or(u64::MAX);
            }
        }
        u64::MAX
    }

    pub fn mean_us(&self) -> u64 {
        self.sum_us.checked_div(self.count).unwrap_or(0)
    }

    /// The buckets as Prometheus reads them: (upper bound in seconds, count
    /// in that bucket), the open one at `f64::MAX` (`+Inf`).
    pub fn seconds_buckets(&self) -> [(f64, u64); SLOTS] {
        std::array::from_fn(|i| {
            let bound = BUCKETS_US
                .get(i)
                .map_or(f64::MAX, |us| *us as f64 / 1_000_000.0);
            (bound, self.buckets[i])
        })
    }

    /// The sum of durations in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_us as f64 / 1_000_000.0
    }
}

/// One series of timed work (an RPC subject on one side): every outcome
/// counted, durations of successes, and of failures by error kind.
#[derive(Default)]
pub struct SubjectStats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    ok: Timing,
    failed: [OnceLock<Box<Timing>>; KIND_SLOTS],
}

impl SubjectStats {
    /// Records one outcome; `by_kind` keeps failures apart by their kind
    /// (the labelled histograms), else they share one timing.
    pub fn record(&self, elapsed: Duration, outcome: Result<(), ErrorKind>, by_kind: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => self.ok.record(elapsed),
            Err(kind) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let slot = if by_kind { kind as usize } else { 0 };
                if let Some(timing) = self.failed.get(slot) {
                    timing.get_or_init(Box::default).record(elapsed);
                }
            }
        }
    }

    /// Successes (`None`), then the failures of each kind seen. Failures
    /// recorded without their kind are left out: they exist only while the
    /// labelled histograms are off, when nothing exports them.
    pub fn outcomes(&self) -> Vec<(Option<ErrorKind>, Snapshot)> {
        let mut out = vec![(None, self.ok.snapshot())];
        for (slot, timing) in self.failed.iter().enumerate().skip(1) {
            let Some(timing) = timing.get() else {
                continue;
            };
            let kind = i32::try_from(slot)
                .ok()
                .and_then(|n| ErrorKind::try_from(n).ok());
            if let Some(kind) = kind {
                out.push((Some(kind), timing.snapshot()));
            }
        }
        out
    }

    /// Every outcome's durations together (lymph's mean and quantiles).
    pub fn all(&self) -> Snapshot {
        let mut all = self.ok.snapshot();
        for timing in self.failed.iter().filter_map(OnceLock::get) {
            all.add(&timing.snapshot());
        }
        all
    }
}
