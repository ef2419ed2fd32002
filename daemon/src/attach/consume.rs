//! Feeds an app's event subscriptions: one bus consumer per subscription,
//! its deliveries pushed to the app on its stream, until the app says Goodbye
//! or leaves. Held deliveries go back to the bus when the session closes.
//! Each consumer's health stays on the session, for `Status`: a subscription
//! the bus cannot attach yet is retried by the bus, never by making the app
//! attach again.

use std::sync::Arc;
use std::time::Instant;

use lymph_proto::v1 as pb;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio_util::task::TaskTracker;
use tracing::warn;

use super::AppSession;
use crate::events::{ConsumerHealth, ConsumerState, EventBus, EventError, Refusal, Subscription};
use crate::metrics::{EventStep, Metrics};

/// One subscription of an app and its consumer's health.
pub struct Subscribed {
    pub interface: String,
    pub handler: String,
    pub event_type: String,
    pub queue: String,
    /// The handler's own limit of deliveries held at once; 0: none.
    pub concurrency: u32,
    pub health: Arc<ConsumerHealth>,
}

/// Starts a consumer per subscription of a ready app. Fails only for a
/// subscription the bus refuses outright (or a closed bus).
pub async fn start(
    bus: &Arc<dyn EventBus>,
    session: &Arc<AppSession>,
    tasks: &TaskTracker,
    metrics: &Arc<Metrics>,
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
            let queue = subscription.queue_name();
            let consumer = bus.consume(subscription).await?;
            session
                .subscriptions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Subscribed {
                    interface: iface.name.clone(),
                    handler: sub.handler.clone(),
                    event_type: sub.event_type.clone(),
                    queue,
                    concurrency: sub.concurrency,
                    health: consumer.health.clone(),
                });
            tasks.spawn(pump(
                session.clone(),
                iface.name.clone(),
                sub.handler.clone(),
                sub.retry,
                consumer,
                metrics.clone(),
            ));
        }
    }
    Ok(())
}

/// The app's subscriptions as `Status` shows them.
pub fn status(session: &AppSession) -> Vec<pb::SubscriptionStatus> {
    let now = Instant::now();
    let subscribed = session
        .subscriptions
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    subscribed
        .iter()
        .map(|s| {
            let mut status = pb::SubscriptionStatus {
                interface: s.interface.clone(),
                handler: s.handler.clone(),
                event_type: s.event_type.clone(),
                queue: s.queue.clone(),
                consuming: true,
                concurrency: s.concurrency,
                refused_too_large: s.health.refused_count(Refusal::TooLarge),
                refused_malformed: s.health.refused_count(Refusal::Malformed),
                ..Default::default()
            };
            if let ConsumerState::Retrying {
                error,
                attempts,
                next_attempt,
            } = s.health.state()
            {
                status.consuming = false;
                status.error = error;
                status.failed_attempts = attempts;
                let wait = next_attempt.saturating_duration_since(now);
                status.next_attempt_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            }
            status
        })
        .collect()
}

async fn pump(
    session: Arc<AppSession>,
    interface: String,
    handler: String,
    retry: u32,
    mut consumer: crate::events::Consumer,
    metrics: Arc<Metrics>,
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
        // lymph's count: the first delivery is attempt 1, then `retry` more.
        let last_try = d.attempt > retry;
        let tracked =
            session.track_delivery(&consumer.settle, d.tag, &d.event.event_type, last_try);
        let Some(delivery_id) = tracked else {
            break;
        };
        metrics.event(EventStep::Delivered, &d.event.event_type);
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
