//! Counters and latency per RPC subject, served by `lymph.get_metrics` and
//! `Status`. Recording is lock-free after the first call of a subject.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
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
    fn record(&self, elapsed: Duration, failed: bool) {
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

#[derive(Default)]
pub struct Metrics {
    /// Looked up per call: foldhash (seeded per table) rather than SipHash.
    subjects: RwLock<HashMap<String, Arc<SubjectStats>, foldhash::fast::RandomState>>,
    pub calls_total: AtomicU64,
    pub calls_failed: AtomicU64,
    pub in_flight: AtomicU64,
}

/// One metric: lymph's `[name, value, tags]` triple.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub value: f64,
    pub subject: Option<String>,
}

impl Metrics {
    pub fn record(&self, subject: &str, elapsed: Duration, failed: bool) {
        self.calls_total.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.calls_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.stats(subject).record(elapsed, failed);
    }

    fn stats(&self, subject: &str) -> Arc<SubjectStats> {
        let read = self.subjects.read().unwrap_or_else(|p| p.into_inner());
        if let Some(stats) = read.get(subject) {
            return stats.clone();
        }
        drop(read);
        let mut write = self.subjects.write().unwrap_or_else(|p| p.into_inner());
        write.entry(subject.to_owned()).or_default().clone()
    }

    /// Every series, subjects sorted by name.
    pub fn samples(&self) -> Vec<Sample> {
        let mut out = vec![
            Sample {
                name: "rpc.calls_total",
                value: self.calls_total.load(Ordering::Relaxed) as f64,
                subject: None,
            },
            Sample {
                name: "rpc.calls_failed",
                value: self.calls_failed.load(Ordering::Relaxed) as f64,
                subject: None,
            },
            Sample {
                name: "rpc.in_flight",
                value: self.in_flight.load(Ordering::Relaxed) as f64,
                subject: None,
            },
        ];
        let subjects = self.subjects.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<&String> = subjects.keys().collect();
        names.sort();
        for name in names {
            let s = &subjects[name];
            let subject = Some(name.clone());
            let mut push = |metric: &'static str, value: f64| {
                out.push(Sample {
                    name: metric,
                    value,
                    subject: subject.clone(),
                })
            };
            push("rpc", s.calls.load(Ordering::Relaxed) as f64);
            push("rpc.errors", s.errors.load(Ordering::Relaxed) as f64);
            push("rpc.latency_mean_ms", s.mean_us() as f64 / 1000.0);
            push("rpc.latency_p50_ms", s.quantile_us(0.5) as f64 / 1000.0);
            push("rpc.latency_p99_ms", s.quantile_us(0.99) as f64 / 1000.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_quantiles_per_subject() {
        let m = Metrics::default();
        for _ in 0..98 {
            m.record("Greeting.greet", Duration::from_micros(80), false);
        }
        m.record("Greeting.greet", Duration::from_millis(40), true);
        m.record("Greeting.greet", Duration::from_millis(40), true);
        m.record("lymph.ping", Duration::from_micros(10), false);
        let samples = m.samples();
        let get = |name: &str, subject: &str| {
            samples
                .iter()
                .find(|s| s.name == name && s.subject.as_deref() == Some(subject))
                .map(|s| s.value)
        };
        assert_eq!(get("rpc", "Greeting.greet"), Some(100.0));
        assert_eq!(get("rpc.errors", "Greeting.greet"), Some(2.0));
        assert_eq!(get("rpc.latency_p50_ms", "Greeting.greet"), Some(0.1));
        assert_eq!(get("rpc.latency_p99_ms", "Greeting.greet"), Some(50.0));
        assert_eq!(get("rpc", "lymph.ping"), Some(1.0));
        assert_eq!(m.calls_total.load(Ordering::Relaxed), 101);
        assert_eq!(m.calls_failed.load(Ordering::Relaxed), 2);
    }
}
