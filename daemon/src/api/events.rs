//! Tools' subscriptions (`Subscribe`): every event of the named types as it
//! arrives, through private queues on the bus.

use std::sync::Arc;

use futures::StreamExt;
use lymph_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;

use super::BoxStream;
use crate::events::{EventBus, Settle, Subscription};
use crate::trace;

/// Events a `Subscribe` stream buffers for a slow tool before the bus holds back.
const SUBSCRIBE_PREFETCH: u32 = 64;

/// Event types one `Subscribe` may name: each is a queue and a consumer.
const MAX_SUBSCRIBE_TYPES: usize = 64;

/// A tool's subscription: every event of the given types, as it arrives,
/// through private queues that vanish when the tool disconnects.
pub async fn subscribe(
    bus: &Arc<dyn EventBus>,
    draining: &CancellationToken,
    tasks: &TaskTracker,
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
        let mut consumer = bus
            .consume(subscription)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let tx = tx.clone();
        let draining = draining.clone();
        tasks.spawn(async move {
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
    let stream = ReceiverStream::new(rx).take_until(draining.clone().cancelled_owned());
    Ok(Box::pin(stream))
}
