//! Feeds an app's event subscriptions: one bus consumer per subscription,
//! its deliveries pushed to the app on its stream, each with its permits of
//! the app's budget (`budget`: the delivery share, the handler's limit;
//! waited for, so what is over a limit stays with the bus), until the app
//! says Goodbye or leaves. Held deliveries go back to the bus when the
//! session closes.
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
use super::budget::Gate;
use crate::events::{
    ConsumerHealth, ConsumerState, EventBus, EventError, Finished, Refusal, Subscription,
};
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
    /// Its handler's permits and its count of deliveries held.
    pub(crate) gate: Gate,
    /// Done once its consumer ended and the bus has every settle.
    pub finished: Finished,
}

/// Starts a consumer per subscription of a ready app. Fails only for a
/// subscription the bus refuses outright (or a closed bus).
pub async fn start(
    bus: &Arc<dyn EventBus>,
    session: &Arc<AppSession>,
    tasks: &TaskTracker,
    metrics: &Arc<Metrics>,
    spans: &crate::spans::Spans,
) -> Result<(), EventError> {
    for iface in &session.spec.interfaces {
        for sub in &iface.subscriptions {
            let (gate, prefetch) = session.budget.gate(&iface.name, &sub.handler);
            let subscription = Subscription {
                service: iface.name.clone(),
                instance: session.identity.clone(),
                handler: sub.handler.clone(),
                event_type: sub.event_type.clone(),
                broadcast: sub.broadcast,
                retry: sub.retry,
                // The handler's limit, within the app's delivery share.
                prefetch,
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
                    gate: gate.clone(),
                    finished: consumer.finished.clone(),
                });
            let feed = Feed {
                session: session.clone(),
                interface: iface.name.clone(),
                handler: sub.handler.clone(),
                retry: sub.retry,
                gate,
            };
            tasks.spawn(feed.pump(consumer, metrics.clone(), spans.clone()));
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
                in_flight: s.gate.held(),
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

/// What one subscription's pump needs besides its consumer.
struct Feed {
    session: Arc<AppSession>,
    interface: String,
    handler: String,
    retry: u32,
    gate: Gate,
}

impl Feed {
    /// Hands the consumer's deliveries to the app, each once its permits
    /// are free. A delivery is taken off the consumer before its permits are
    /// waited for: waiting first would hold permits (of the share, of the
    /// budget calls use too) while the subscription is idle. The bus counts
    /// it either way: its consumer holds no more than its prefetch.
    async fn pump(
        self,
        mut consumer: crate::events::Consumer,
        metrics: Arc<Metrics>,
        spans: crate::spans::Spans,
    ) {
        let session = &self.session;
        loop {
            let delivery = tokio::select! {
                d = consumer.deliveries.recv() => d,
                () = session.stop_consuming.cancelled() => break,
            };
            let Some(d) = delivery else {
                warn!(app = %session.spec.app_name, interface = %self.interface, "event consumer ended");
                break;
            };
            let permits = tokio::select! {
                p = session.budget.delivery(&self.gate) => p,
                () = session.stop_consuming.cancelled() => break,
            };
            let Some(permits) = permits else {
                break;
            };
            // lymph's count: the first delivery is attempt 1, then `retry` more.
            let last_try = d.attempt > self.retry;
            let settle = &consumer.settle;
            let span = spans.open(&d.event.trace_id, d.event.traceparent);
            let traceparent = crate::spans::passed_on(span.as_ref(), d.event.traceparent)
                .map(crate::spans::traceparent::format)
                .unwrap_or_default();
            let held = super::session::Handed {
                tag: d.tag,
                event_type: &d.event.event_type,
                last_try,
                span,
            };
            let tracked = session.track_delivery(settle, held, permits);
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
                interface: self.interface.clone(),
                event_id: d.event.id,
                handler: self.handler.clone(),
                traceparent,
            });
            if !session.send(message).await {
                break;
            }
        }
        // Keep the consumer (and its settle channel) until the session closes,
        // so acks of deliveries the app still holds count; dropping it then
        // hands every unacked delivery back to the bus, once the settles
        // before reached it (`Finished`, which a drain waits for).
        session.closed.cancelled().await;
        drop(consumer);
    }
}
