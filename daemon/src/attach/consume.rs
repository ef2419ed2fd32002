//! Feeds an app's event subscriptions: one bus consumer per subscription,
//! its deliveries pushed to the app on its stream, until the app says Goodbye
//! or leaves. Held deliveries go back to the bus when the session closes.

use std::sync::Arc;

use lymph_proto::v1 as pb;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio_util::task::TaskTracker;
use tracing::warn;

use super::AppSession;
use crate::events::{EventBus, EventError, Subscription};

/// Starts a consumer per subscription of a ready app.
pub async fn start(
    bus: &Arc<dyn EventBus>,
    session: &Arc<AppSession>,
    tasks: &TaskTracker,
) -> Result<(), EventError> {
    for iface in &session.spec.interfaces {
        for sub in &iface.subscriptions {
            let subscription = Subscription {
                service: iface.name.clone(),
                instance: session.identity.clone(),
                handler: sub.handler.clone(),
                event_type: sub.event_type.clone(),
                broadcast: sub.broadcast,
                retry: sub.retry,
                // Deliveries held at once follow what the app can take.
                prefetch: session.limits.max_concurrency,
            };
            let consumer = bus.consume(subscription).await?;
            tasks.spawn(pump(
                session.clone(),
                iface.name.clone(),
                sub.handler.clone(),
                consumer,
            ));
        }
    }
    Ok(())
}

async fn pump(
    session: Arc<AppSession>,
    interface: String,
    handler: String,
    mut consumer: crate::events::Consumer,
) {
    loop {
        let delivery = tokio::select! {
            d = consumer.deliveries.recv() => d,
            () = session.stop_consuming.cancelled() => break,
        };
        let Some(d) = delivery else {
            warn!(app = %session.spec.app_name, %interface, "event consumer ended");
            break;
        };
        let delivery_id = session.track_delivery(&consumer.settle, d.tag);
        let message = Out::Delivery(pb::Delivery {
            delivery_id,
            event_type: d.event.event_type,
            body: d.event.body,
            trace_id: d.event.trace_id,
            attempt: d.attempt,
            interface: interface.clone(),
            event_id: d.event.id,
            handler: handler.clone(),
        });
        if !session.send(message).await {
            break;
        }
    }
    // Keep the consumer (and its settle channel) until the session closes,
    // so acks of deliveries the app still holds count; dropping it then hands
    // every unacked delivery back to the bus.
    session.closed.cancelled().await;
    drop(consumer);
}
