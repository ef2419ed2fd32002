//! Emits (unary and on the stream) and tool subscriptions, on top of the event bus.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use lymph_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::BoxStream;
use crate::daemon::State;
use crate::error::{CallError, ErrorKind};
use crate::events::{Event, EventError, Settle, Subscription};
use crate::metrics::EventStep;
use crate::trace;

/// Events a `Subscribe` stream buffers for a slow tool before the bus holds back.
const SUBSCRIBE_PREFETCH: u32 = 64;

/// Event types one `Subscribe` may name: each is a queue and a consumer.
const MAX_SUBSCRIBE_TYPES: usize = 64;

/// Validates and publishes one event; returns its id.
pub async fn emit(
    state: &State,
    event_type: String,
    body: Bytes,
    trace_id: String,
    delay_ms: u64,
) -> Result<String, CallError> {
    if state.draining.is_cancelled() {
        return Err(CallError::shutting_down());
    }
    crate::names::check_word("event type", &event_type)?;
    crate::names::check_trace_id(&trace_id)?;
    if body.len() > state.config.rpc.max_body_bytes {
        return Err(CallError::new(
            ErrorKind::TooLarge,
            format!(
                "event body is {} bytes, the limit is {} (rpc.max_body_bytes)",
                body.len(),
                state.config.rpc.max_body_bytes
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
    state
        .bus
        .emit(event, Duration::from_millis(delay_ms))
        .await
        .map_err(event_error)?;
    state.metrics.event(EventStep::Emitted, &event_type);
    Ok(id)
}

pub fn event_error(e: EventError) -> CallError {
    let kind = match e {
        EventError::QueueFull { .. } | EventError::TooManyDelayed(_) => ErrorKind::Overloaded,
        EventError::Invalid(_) => ErrorKind::Invalid,
        EventError::Closed => ErrorKind::ShuttingDown,
        EventError::Backend(_) => ErrorKind::Unavailable,
    };
    CallError::new(kind, e.to_string())
}

/// A tool's subscription: every event of the given types, as it arrives,
/// through private queues that vanish when the tool disconnects.
pub async fn subscribe(
    state: Arc<State>,
    event_types: Vec<String>,
) -> Result<BoxStream<pb::Event>, Status> {
    if event_types.is_empty() {
        return Err(Status::invalid_argument("name at least one event type"));
    }
    if event_types.len() > MAX_SUBSCRIBE_TYPES {
        return Err(Status::invalid_argument(format!(
            "{} event types in one subscription; the limit is {MAX_SUBSCRIBE_TYPES}",
            event_types.len()
        )));
    }
    for event_type in &event_types {
        crate::names::check_pattern("event type", event_type)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
    }
    let (tx, rx) = mpsc::channel(SUBSCRIBE_PREFETCH as usize);
    let instance = trace::new_id();
    for event_type in event_types {
        let subscription = Subscription {
            service: "_subscribe".to_owned(),
            instance: instance.clone(),
            handler: "on_event".to_owned(),
            event_type,
            broadcast: true,
            retry: 0,
            prefetch: SUBSCRIBE_PREFETCH,
        };
        let mut consumer = state
            .bus
            .consume(subscription)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let tx = tx.clone();
        let draining = state.draining.clone();
        state.tasks.spawn(async move {
            loop {
                let delivery = tokio::select! {
                    d = consumer.deliveries.recv() => d,
                    () = draining.cancelled() => None,
                };
                let Some(d) = delivery else {
                    break;
                };
                let event = pb::Event {
                    event_type: d.event.event_type,
                    body: d.event.body,
                    trace_id: d.event.trace_id,
                    event_id: d.event.id,
                };
                // Waits while the tool is slow (bounded by the channel); ends
                // when it disconnects, which drops the consumer and its queue.
                if tx.send(Ok(event)).await.is_err() {
                    break;
                }
                let _ = consumer.settle.send(Settle::Ack(d.tag));
            }
        });
    }
    // The stream ends cleanly when the daemon drains, instead of being cut.
    let stream = ReceiverStream::new(rx).take_until(state.draining.clone().cancelled_owned());
    Ok(Box::pin(stream))
}
