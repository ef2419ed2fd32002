//! Log records from `tracing`: a layer that turns each event into a
//! `LogRecord` (level, logger, message with its fields, trace id, time) and
//! hands it to a sink. The trace id is the event's own `trace_id` field, else
//! the nearest enclosing span's. Shared by lymphd (its own records, for
//! `lymphctl tail`) and the Rust SDK (records sent to the daemon).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::v1::{LogLevel, LogRecord};

/// The field that carries a trace id, on spans and events.
pub const TRACE_ID_FIELD: &str = "trace_id";

/// Crates whose records are never forwarded: sending a record goes through
/// them, so forwarding their own records could feed itself.
const QUIET_TARGETS: &[&str] = &["h2", "hyper", "tonic", "tower", "tokio", "mio", "zeromq"];

/// A `tracing` layer handing every event it sees to `sink` as a `LogRecord`.
pub struct RecordLayer<F> {
    sink: F,
}

impl<F> RecordLayer<F>
where
    F: Fn(LogRecord) + Send + Sync + 'static,
{
    pub fn new(sink: F) -> RecordLayer<F> {
        RecordLayer { sink }
    }
}

impl<F> std::fmt::Debug for RecordLayer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordLayer")
    }
}

/// The trace id a span carries, kept in its extensions.
struct SpanTraceId(String);

impl<S, F> Layer<S> for RecordLayer<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    F: Fn(LogRecord) + Send + Sync + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().fields().field(TRACE_ID_FIELD).is_none() {
            return;
        }
        let mut found = TraceIdOnly(None);
        attrs.record(&mut found);
        if let (Some(trace_id), Some(span)) = (found.0, ctx.span(id)) {
            span.extensions_mut().insert(SpanTraceId(trace_id));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut found = TraceIdOnly(None);
        values.record(&mut found);
        if let (Some(trace_id), Some(span)) = (found.0, ctx.span(id)) {
            span.extensions_mut().replace(SpanTraceId(trace_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let target = metadata.target();
        let quiet = |crate_name: &str| {
            target
                .strip_prefix(crate_name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        };
        if QUIET_TARGETS.iter().any(|name| quiet(name)) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let trace_id = fields.trace_id.take().or_else(|| {
            ctx.event_scope(event)?.find_map(|span| {
                span.extensions()
                    .get::<SpanTraceId>()
                    .map(|found| found.0.clone())
            })
        });
        (self.sink)(LogRecord {
            level: level_of(metadata.level()) as i32,
            logger: target.to_owned(),
            message: fields.text(),
            trace_id: trace_id.unwrap_or_default(),
            time: now(),
        });
    }
}

/// The proto level of a `tracing` level.
pub fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::TRACE => LogLevel::Trace,
        Level::DEBUG => LogLevel::Debug,
        Level::INFO => LogLevel::Info,
        Level::WARN => LogLevel::Warn,
        _ => LogLevel::Error,
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

struct TraceIdOnly(Option<String>);

impl Visit for TraceIdOnly {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == TRACE_ID_FIELD {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == TRACE_ID_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The message, the other fields as `key=value`, and a `trace_id` field.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    trace_id: Option<String>,
}

impl Fields {
    fn text(self) -> String {
        if self.rest.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.rest
        } else {
            format!("{} {}", self.message, self.rest)
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            TRACE_ID_FIELD => self.trace_id = Some(value.to_owned()),
            name => {
                if !self.rest.is_empty() {
                    self.rest.push(' ');
                }
                let _ = write!(self.rest, "{name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            TRACE_ID_FIELD => self.trace_id = Some(format!("{value:?}")),
            name => {
                if !self.rest.is_empty() {
                    self.rest.push(' ');
                }
                let _ = write!(self.rest, "{name}={value:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn captured(run: impl FnOnce()) -> Vec<LogRecord> {
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let subscriber = tracing_subscriber::registry().with(RecordLayer::new(move |r| {
            sink.lock().expect("lock").push(r);
        }));
        tracing::subscriber::with_default(subscriber, run);
        records.lock().expect("lock").clone()
    }

    #[test]
    fn records_carry_level_logger_fields_and_the_spans_trace_id() {
        let records = captured(|| {
            tracing::info!(target: "greeting", "no trace");
            let span = tracing::info_span!("rpc", trace_id = %"abc123");
            let _entered = span.enter();
            let inner = tracing::info_span!("inner", other = 1);
            let _inner = inner.enter();
            tracing::warn!(target: "greeting", name = "Joe", "Saying hi");
        });
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].trace_id, "");
        assert_eq!(records[0].level, LogLevel::Info as i32);
        assert_eq!(records[1].logger, "greeting");
        assert_eq!(records[1].message, "Saying hi name=Joe");
        assert_eq!(records[1].trace_id, "abc123");
        assert_eq!(records[1].level, LogLevel::Warn as i32);
        assert!(records[1].time > 1.6e9);
    }

    #[test]
    fn an_events_own_trace_id_wins_and_is_not_repeated_in_the_text() {
        let records = captured(|| {
            let span = tracing::info_span!("rpc", trace_id = "outer");
            let _entered = span.enter();
            tracing::error!(trace_id = %"own", "failed");
        });
        assert_eq!(records[0].trace_id, "own");
        assert_eq!(records[0].message, "failed");
    }

    #[test]
    fn transport_crates_are_not_forwarded() {
        let records = captured(|| {
            tracing::info!(target: "h2::codec", "frame");
            tracing::info!(target: "h2x", "kept");
        });
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].logger, "h2x");
    }
}
