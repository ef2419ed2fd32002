//! The one recording seam for metrics: every hop reports here (RPC calls
//! this daemon routes and requests it serves for other hosts, HTTP requests,
//! events emitted, delivered and settled), and `lymph.get_metrics`, `Status`
//! and the Prometheus exporter (`prom`) read from here. Recording is
//! lock-free after the first report of a series; series are bounded in number.

pub mod endpoint;
mod http;
pub mod process;
pub mod prom;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use http::HttpStats;
pub use stats::{Snapshot, SubjectStats, Timing};

use crate::error::ErrorKind;

/// Series one family keeps at most; later names count under `OTHER`, so a
/// client inventing names cannot grow the daemon's memory.
const MAX_SERIES: usize = 1024;

/// The series that takes what is past `MAX_SERIES`.
pub const OTHER: &str = "_other";

/// Which end of an RPC this daemon was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// A call this daemon routed for one of its apps or tools.
    Client,
    /// A request from another host, served by one of this daemon's apps or itself.
    Server,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// What happened to an event at this daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStep {
    /// Published (the bus took it).
    Emitted,
    /// Handed to an app's handler.
    Delivered,
    Acked,
    /// Failed by its handler, with tries left: the bus retries it.
    Failed,
    /// Failed by its handler past its retry count: the bus drops it.
    Dropped,
    /// Held by an app that went away unanswered: back to the bus.
    Returned,
}

impl EventStep {
    const ALL: [EventStep; 6] = [
        EventStep::Emitted,
        EventStep::Delivered,
        EventStep::Acked,
        EventStep::Failed,
        EventStep::Dropped,
        EventStep::Returned,
    ];

    fn name(self) -> &'static str {
        match self {
            EventStep::Emitted => "events.emitted",
            EventStep::Delivered => "events.delivered",
            EventStep::Acked => "events.acked",
            EventStep::Failed => "events.failed",
            EventStep::Dropped => "events.dropped",
            EventStep::Returned => "events.returned",
        }
    }
}

/// Counts per event type, one per `EventStep`, and how long its handlers
/// held its deliveries (to their ack or fail; labelled histograms only).
#[derive(Default)]
pub struct EventCounts {
    steps: [AtomicU64; 6],
    pub processed: Timing,
}

impl EventCounts {
    pub fn count(&self, step: EventStep) -> u64 {
        self.steps[step as usize].load(Ordering::Relaxed)
    }
}

/// A family of series by name, bounded to `MAX_SERIES`.
struct Family<K, V> {
    series: RwLock<HashMap<K, Arc<V>, foldhash::fast::RandomState>>,
}

impl<K, V> Default for Family<K, V> {
    fn default() -> Self {
        Family {
            series: RwLock::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone + Ord, V: Default> Family<K, V> {
    /// The series `key`, made on first use (or the overflow series `other`).
    /// Looked up by a borrowed key: nothing is allocated once it exists.
    fn get<Q>(&self, key: &Q, other: impl FnOnce() -> K) -> Arc<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let read = self.series.read().unwrap_or_else(|p| p.into_inner());
        if let Some(series) = read.get(key) {
            return series.clone();
        }
        drop(read);
        let mut write = self.series.write().unwrap_or_else(|p| p.into_inner());
        let key = if write.len() >= MAX_SERIES && !write.contains_key(key) {
            other()
        } else {
            key.to_owned()
        };
        write.entry(key).or_default().clone()
    }

    /// Every series, sorted by key.
    pub fn sorted(&self) -> Vec<(K, Arc<V>)> {
        let read = self.series.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(K, Arc<V>)> = read.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

pub struct Metrics {
    /// Whether outcomes are kept apart by their labels (error kind, HTTP
    /// status) and event handling is timed: what only the Prometheus
    /// exporter shows (`metrics.listen`). The counts behind
    /// `lymph.get_metrics` and `Status` are kept either way.
    labelled: bool,
    /// RPCs by subject, one family per `Side` (client, then server).
    rpc: [Family<String, SubjectStats>; 2],
    /// HTTP requests by (method, route pattern); errors are 5xx answers.
    http: Family<(String, String), HttpStats>,
    events: Family<String, EventCounts>,
    calls_total: AtomicU64,
    calls_failed: AtomicU64,
    in_flight: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(true)
    }
}

/// One metric: lymph's `[name, value, tags]` triple.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub value: f64,
    pub tags: Vec<(&'static str, String)>,
}

/// Kinds of failure that never reached an instance: they get no series of
/// their own (a caller inventing names must not grow the daemon's memory).
fn unreached(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::UnknownService | ErrorKind::UnknownMethod | ErrorKind::Invalid
    )
}

impl Metrics {
    /// `labelled`: keep the series only the Prometheus exporter shows.
    pub fn new(labelled: bool) -> Metrics {
        Metrics {
            labelled,
            rpc: Default::default(),
            http: Family::default(),
            events: Family::default(),
            calls_total: AtomicU64::new(0),
            calls_failed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        }
    }

    /// An RPC is on its way (this daemon's `rpc.in_flight`).
    pub fn rpc_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// An RPC started with `rpc_started` ended: `rpc_done` follows.
    pub fn rpc_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The outcome of an RPC on `subject` (`Interface.method`). Failures that
    /// reached no instance are not recorded.
    pub fn rpc_done(
        &self,
        side: Side,
        subject: &str,
        elapsed: Duration,
        outcome: Result<(), ErrorKind>,
    ) {
        if outcome.is_err_and(unreached) {
            return;
        }
        let failed = outcome.is_err();
        self.calls_total.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.calls_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.rpc[side as usize]
            .get(subject, || OTHER.to_owned())
            .record(elapsed, outcome, self.labelled);
    }

    /// An HTTP request answered with `status`; `route` is the matched
    /// route's pattern (`OTHER` when none matched).
    pub fn http_done(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = (method.to_owned(), route.to_owned());
        self.http
            .get(&key, || (OTHER.to_owned(), OTHER.to_owned()))
            .record(status, elapsed, self.labelled);
    }

    /// One event of `event_type` reached `step`.
    pub fn event(&self, step: EventStep, event_type: &str) {
        let counts = self.events.get(event_type, || OTHER.to_owned());
        counts.steps[step as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A handler answered a delivery of `event_type` (`step`: acked, failed
    /// or dropped) after holding it `held`.
    pub fn event_settled(&self, step: EventStep, event_type: &str, held: Duration) {
        let counts = self.events.get(event_type, || OTHER.to_owned());
        counts.steps[step as usize].fetch_add(1, Ordering::Relaxed);
        if self.labelled {
            counts.processed.record(held);
        }
    }

    /// The RPC series of one side, sorted by subject.
    pub fn rpc_series(&self, side: Side) -> Vec<(String, Arc<SubjectStats>)> {
        self.rpc[side as usize].sorted()
    }

    /// The HTTP series, sorted by (method, route).
    pub fn http_series(&self) -> Vec<((String, String), Arc<HttpStats>)> {
        self.http.sorted()
    }

    /// The event series, sorted by type.
    pub fn event_series(&self) -> Vec<(String, Arc<EventCounts>)> {
        self.events.sorted()
    }

    /// RPCs recorded, failed among them, and in flight now.
    pub fn rpc_totals(&self) -> (u64, u64, u64) {
        (
            self.calls_total.load(Ordering::Relaxed),
            self.calls_failed.load(Ordering::Relaxed),
            self.in_flight.load(Ordering::Relaxed),
        )
    }

    /// Every series, as `lymph.get_metrics` serves them.
    pub fn samples(&self) -> Vec<Sample> {
        let (total, failed, in_flight) = self.rpc_totals();
        let mut out = vec![
            Sample::plain("rpc.calls_total", total as f64),
            Sample::plain("rpc.calls_failed", failed as f64),
            Sample::plain("rpc.in_flight", in_flight as f64),
        ];
        for side in [Side::Client, Side::Server] {
            for (subject, s) in self.rpc[side as usize].sorted() {
                let tags = vec![("subject", subject), ("side", side.name().to_owned())];
                let counts = [&s.calls, &s.errors].map(|c| c.load(Ordering::Relaxed));
                timed(&mut out, RPC_NAMES, counts, &s.all(), &tags);
            }
        }
        for ((method, route), s) in self.http.sorted() {
            let tags = vec![("method", method), ("route", route)];
            let counts = [&s.calls, &s.errors].map(|c| c.load(Ordering::Relaxed));
            timed(&mut out, HTTP_NAMES, counts, &s.all.snapshot(), &tags);
        }
        for (event_type, counts) in self.events.sorted() {
            for step in EventStep::ALL {
                let value = counts.count(step);
                if value > 0 {
                    out.push(Sample {
                        name: step.name(),
                        value: value as f64,
                        tags: vec![("event_type", event_type.clone())],
                    });
                }
            }
        }
        out
    }
}

impl Sample {
    fn plain(name: &'static str, value: f64) -> Sample {
        Sample {
            name,
            value,
            tags: Vec::new(),
        }
    }
}

/// The names of a timed family's samples: count, errors, mean, p50, p99.
const RPC_NAMES: [&str; 5] = [
    "rpc",
    "rpc.errors",
    "rpc.latency_mean_ms",
    "rpc.latency_p50_ms",
    "rpc.latency_p99_ms",
];
const HTTP_NAMES: [&str; 5] = [
    "http",
    "http.errors",
    "http.latency_mean_ms",
    "http.latency_p50_ms",
    "http.latency_p99_ms",
];

/// The samples of one timed series (its calls and errors, and the
/// durations of all its outcomes), named by `names`.
fn timed(
    out: &mut Vec<Sample>,
    names: [&'static str; 5],
    [calls, errors]: [u64; 2],
    s: &Snapshot,
    tags: &[(&'static str, String)],
) {
    let values = [
        calls as f64,
        errors as f64,
        s.mean_us() as f64 / 1000.0,
        s.quantile_us(0.5) as f64 / 1000.0,
        s.quantile_us(0.99) as f64 / 1000.0,
    ];
    for (name, value) in names.into_iter().zip(values) {
        out.push(Sample {
            name,
            value,
            tags: tags.to_vec(),
        });
    }
}
