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
        }
    }

    /// Checks and publishes one event; returns its id once the bus took it.
    pub async fn emit(
        &self,
        event_type: String,
        body: Bytes,
        trace_id: String,
        delay_ms: u64,
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
        let event = Event {
            id: id.clone(),
            event_type,
            body,
            trace_id,
        };
        let event_type = event.event_type.clone();
        self.bus
            .emit(event, Duration::from_millis(delay_ms))
            .await
            .map_err(event_error)?;
        self.metrics.event(EventStep::Emitted, &event_type);
        Ok(id)
    }
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
