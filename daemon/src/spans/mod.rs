//! OpenTelemetry spans of the hops this daemon carries, exported over
//! OTLP/gRPC (`tracing.otlp_endpoint`, off by default). A span is recorded
//! when its hop ends, if its trace is sampled, into a bounded queue that the
//! exporter (`export`) drains in batches; a full queue drops the span and
//! counts it, never slowing the hop. Off, the hops pay one branch.
//!
//! Trace ids: lymph's trace id when it is 32 hex digits (lymphd makes them
//! so), else one derived from it (the same on every daemon), with lymph's
//! kept as the `lymph.trace_id` attribute. A hop that came with a parent
//! (a W3C `traceparent` from an HTTP caller, an app or a peer) is a child of
//! it and follows its sampled flag; a root is sampled by trace id (a
//! trace-id ratio rule over its last 7 bytes), so every hop of one trace, on
//! every daemon, decides alike. Each hop passes its own span on as the
//! parent of the next (`passed_on`).

mod export;
pub mod traceparent;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

pub use export::Exporter;
pub use traceparent::TraceParent;

use crate::config::TracingConfig;
use crate::hex;

/// What a span stands for (OpenTelemetry's span kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request that arrived (a call from another host, an HTTP request).
    Server,
    /// A call this daemon routed.
    Client,
    /// An event emitted.
    Producer,
    /// An event delivered to a handler.
    Consumer,
}

/// A span attribute: its key and value (a constant, or text of the hop).
pub type Attribute = (&'static str, Cow<'static, str>);

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: Kind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<Attribute>,
    /// The error kind, when the hop failed (status ERROR).
    pub error: Option<&'static str>,
}

/// A hop's span while it runs: its ids and start.
#[derive(Debug, Clone)]
pub struct Open {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub start: SystemTime,
    /// lymph's trace id, when it is not itself the span's trace id.
    lymph_trace_id: Option<String>,
}

impl Open {
    /// This span as the parent of the next hop's.
    pub fn context(&self) -> TraceParent {
        TraceParent {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: true,
        }
    }

    /// Ends the span now.
    pub fn end(
        self,
        name: String,
        kind: Kind,
        mut attributes: Vec<Attribute>,
        error: Option<&'static str>,
    ) -> Record {
        if let Some(id) = self.lymph_trace_id {
            attributes.push(("lymph.trace_id", Cow::Owned(id)));
        }
        Record {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent: self.parent,
            name,
            kind,
            start: self.start,
            end: SystemTime::now(),
            attributes,
            error,
        }
    }
}

/// The daemon's span recorder: off, or sampling into an exporter.
#[derive(Clone, Default)]
pub struct Spans(Option<Arc<Recorder>>);

struct Recorder {
    /// Traces whose id's last 7 bytes fall under this are sampled.
    threshold: u64,
    exporter: Exporter,
    dropped: AtomicU64,
}

impl Spans {
    /// Off: nothing is recorded.
    pub fn off() -> Spans {
        Spans(None)
    }

    /// From the config: off without an endpoint; else the exporter's
    /// thread is started (it connects lazily, and retries per batch).
    pub fn start(config: &TracingConfig, service_name: &str) -> Spans {
        let Some(endpoint) = &config.otlp_endpoint else {
            return Spans::off();
        };
        let exporter = Exporter::spawn(endpoint, config.queue, service_name);
        Spans(Some(Arc::new(Recorder {
            threshold: threshold(config.sample_ratio),
            exporter,
            dropped: AtomicU64::new(0),
        })))
    }

    /// Opens a hop's span, if spans are on and its trace is sampled: a
    /// child of `parent` (the context the hop came with) when there is one,
    /// whose sampled flag decides; else a root of the trace lymph calls
    /// `trace_id`, sampled by ratio.
    pub fn open(&self, trace_id: &str, parent: Option<TraceParent>) -> Option<Open> {
        let recorder = self.0.as_ref()?;
        if parent.is_some_and(|p| !p.sampled) {
            return None;
        }
        // Most roots are not sampled at a low ratio: decided from the id's
        // last 14 digits before the whole id is read.
        if parent.is_none()
            && let Some(low) = sampled_digits(trace_id)
            && low >= recorder.threshold
        {
            return None;
        }
        let own = parse_trace_id(trace_id);
        let (id, parent_span) = match parent {
            Some(p) => (p.trace_id, Some(p.span_id)),
            None => {
                let id = own.unwrap_or_else(|| derived_trace_id(trace_id));
                if !sampled(&id, recorder.threshold) {
                    return None;
                }
                (id, None)
            }
        };
        let lymph_trace_id = (own != Some(id)).then(|| trace_id.to_owned());
        Some(Open {
            trace_id: id,
            span_id: random_span_id(),
            parent: parent_span,
            start: SystemTime::now(),
            lymph_trace_id,
        })
    }

    /// Hands a finished span to the exporter; dropped (and counted) when
    /// its queue is full.
    pub fn record(&self, record: Record) {
        if let Some(recorder) = &self.0
            && !recorder.exporter.offer(record)
        {
            recorder.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether spans are recorded at all.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Spans dropped so far (queue full, or the collector refused a batch).
    pub fn dropped(&self) -> u64 {
        self.0.as_ref().map_or(0, |r| {
            r.dropped.load(Ordering::Relaxed) + r.exporter.failed_spans()
        })
    }
}

/// What a hop passes on as the parent of the next: its own span, else the
/// context it came with (a hop not recorded keeps its caller's decision).
pub fn passed_on(open: Option<&Open>, parent: Option<TraceParent>) -> Option<TraceParent> {
    open.map(Open::context).or(parent)
}

/// The OpenTelemetry trace id of a lymph trace id that is not 32 hex
/// digits: a name-based UUID (v5) of it, so every daemon gives one lymph
/// trace one OpenTelemetry trace.
fn derived_trace_id(trace_id: &str) -> [u8; 16] {
    uuid::Uuid::new_v5(&LYMPH_TRACE_IDS, trace_id.as_bytes()).into_bytes()
}

/// The namespace of the UUIDs made from lymph trace ids: any fixed UUID, the
/// same in every lymphd, so that daemons agree.
const LYMPH_TRACE_IDS: uuid::Uuid =
    uuid::Uuid::from_u128(0x5c1f_7a07_45d6_5a6e_9a3b_0c7f_1d2e_4b11);

/// lymph's trace id as an OpenTelemetry one, when it is 32 hex digits (and
/// not all zeros, which OpenTelemetry reserves).
pub fn parse_trace_id(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let n = hex::value(text.as_bytes(), &hex::ANY)?;
    (n != 0).then(|| n.to_be_bytes())
}

/// A span id from a thread-local generator (seeded from the OS once per
/// thread; a span id needs to be unique, not secret): no system call per span.
fn random_span_id() -> [u8; 8] {
    // A span id of zeros is invalid.
    fastrand::u64(1..).to_be_bytes()
}

/// Random bits of a trace id the sampling reads: its last 7 bytes. lymph's
/// trace ids are UUIDv4s, whose byte 8 carries fixed variant bits (and byte
/// 6 the version), so OpenTelemetry's rule over the last 8 bytes would keep
/// nothing below a ratio of 0.5; the last 7 are random in both kinds of id.
const SAMPLED_BITS: u32 = 56;

/// The threshold for `ratio` (0 to 1) over `SAMPLED_BITS` random bits.
fn threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio <= 0.0 {
        0
    } else {
        (ratio * (1u64 << SAMPLED_BITS) as f64) as u64
    }
}

/// The value `sampled` compares of a 32-character trace id whose last 14
/// characters are hex digits: those digits (7 bytes), read without reading
/// the rest. For an id that is 32 hex digits it decides as `sampled` of the
/// whole id does; an id that is not must also pass `sampled` of the id
/// derived from it (`open`), alike on every daemon.
fn sampled_digits(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    u64::try_from(hex::value(&bytes[18..], &hex::ANY)?).ok()
}

/// Whether the trace `id` is sampled under `threshold` (a trace-id ratio
/// rule: every daemon decides alike for one trace).
fn sampled(id: &[u8; 16], threshold: u64) -> bool {
    if threshold == u64::MAX {
        return true;
    }
    let mut low = [0u8; 8];
    low[1..].copy_from_slice(&id[9..]);
    u64::from_be_bytes(low) < threshold
}

#[cfg(test)]
mod tests;
