//! Emits: checks an event (its type, trace id and body size), publishes it
//! on the bus and reports it to metrics. Apps' emits on their stream and
//! tools' unary `Emit` take this one path.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::error::{CallError, ErrorKind};
use crate::events::{Event, EventBus, EventError};
use crate::metrics::{EventStep, Metrics};
use crate::trace;

pub struct Emitter {
    bus: Arc<dyn EventBus>,
    max_body_bytes: usize,
    /// Cancelled when the daemon starts stopping: emits are refused.
    draining: CancellationToken,
    metrics: Arc<Metrics>,
    /// A PRODUCER span per emit (off by default).
    spans: crate::spans::Spans,
}

impl Emitter {
    pub fn new(
        bus: Arc<dyn EventBus>,
        max_body_bytes: usize,
        draining: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> Emitter {
        Emitter {
            bus,
            max_body_bytes,
            draining,
            metrics,
            spans: crate::spans::Spans::off(),
        }
    }

    /// Records a span of each emit with `spans`.
    pub fn with_spans(mut self, spans: crate::spans::Spans) -> Emitter {
        self.spans = spans;
        self
    }

    /// Checks and publishes one event, emitted under `parent` (the span of
    /// the handler that emits it); returns its id once the bus took it.
    pub async fn emit(
        &self,
        event_type: String,
        body: Bytes,
        trace_id: String,
        delay_ms: u64,
        parent: Option<crate::spans::TraceParent>,
    ) -> Result<String, CallError> {
        if self.draining.is_cancelled() {
            return Err(CallError::shutting_down());
        }
        crate::names::check_word("event type", &event_type)?;
        crate::names::check_trace_id(&trace_id)?;
        if body.len() > self.max_body_bytes {
            return Err(CallError::new(
                ErrorKind::TooLarge,
                format!(
                    "event body is {} bytes, the limit is {} (rpc.max_body_bytes)",
                    body.len(),
                    self.max_body_bytes
                ),
            ));
        }
        let id = trace::new_id();
        let span = self.spans.open(&trace_id, parent);
        let event = Event {
            id: id.clone(),
            event_type,
            body,
            trace_id,
            traceparent: crate::spans::passed_on(span.as_ref(), parent),
        };
        let event_type = event.event_type.clone();
        let emitted = self
            .bus
            .emit(event, Duration::from_millis(delay_ms))
            .await
            .map_err(event_error);
        if let Some(open) = span {
            let error = emitted
                .as_ref()
                .err()
                .map(|e| crate::error::kind_name(e.kind));
            let attributes = messaging_attributes(&event_type, "send");
            let name = format!("send {event_type}");
            let kind = crate::spans::Kind::Producer;
            self.spans.record(open.end(name, kind, attributes, error));
        }
        emitted?;
        self.metrics.event(EventStep::Emitted, &event_type);
        Ok(id)
    }
}

/// An event span's attributes (semantic conventions v1.40.0).
pub fn messaging_attributes(
    event_type: &str,
    operation: &'static str,
) -> Vec<crate::spans::Attribute> {
    vec![
        ("messaging.system", "lymph".into()),
        ("messaging.destination.name", event_type.to_owned().into()),
        ("messaging.operation.name", operation.into()),
    ]
}

/// A bus error as callers see it.
pub fn event_error(e: EventError) -> CallError {
    let kind = match e {
        EventError::QueueFull { .. } | EventError::TooManyDelayed(_) => ErrorKind::Overloaded,
        EventError::Invalid(_) => ErrorKind::Invalid,
        EventError::Closed => ErrorKind::ShuttingDown,
        EventError::Backend(_) => ErrorKind::Unavailable,
    };
    CallError::new(kind, e.to_string())
}
