//! `trait EventBus`: events emitted by anyone reach one instance of each
//! subscribed service (or every instance, for broadcast subscriptions),
//! possibly after a delay. A delivery is the subscriber's until it acks; a
//! failed one is retried up to the subscription's retry count, then dropped;
//! a consumer that goes away hands its unacked deliveries back, after the
//! acks and fails it was given reach the bus (`Consumer::finished`). A consumer
//! that cannot attach (its queue refused by the broker) retries in the
//! background and says why in its `health`. Backends:
//! `embedded` (in memory, this daemon) and, in fleet mode, RabbitMQ. Knows
//! nothing of apps or the API.

#[cfg(feature = "amqp")]
pub(crate) mod amqp;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod embedded;
mod health;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

#[cfg(feature = "amqp")]
pub use amqp::{AmqpBus, AmqpConfig, AmqpMode};
pub use embedded::EmbeddedBus;
pub use health::{ConsumerHealth, ConsumerState, Refusal};

/// One emitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique per emit (32 hex).
    pub id: String,
    pub event_type: String,
    /// MessagePack, passed through untouched.
    pub body: Bytes,
    pub trace_id: String,
    /// The span that emitted it (its deliveries' spans are its children);
    /// over RabbitMQ, the envelope's `traceparent` header.
    pub traceparent: Option<crate::spans::TraceParent>,
}

/// What a consumer subscribes to. Consumers of one `service` and `handler`
/// share a queue, `<service>-<handler>` as lymph names it (each event goes to
/// one of them), unless `broadcast`, where each consumer (each `instance`) has
/// its own, `<service>-<handler>-<instance>`. One handler may subscribe to
/// several event types: its queue is bound to each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub service: String,
    pub instance: String,
    /// lymph's handler function name (`on_greeted`).
    pub handler: String,
    pub event_type: String,
    pub broadcast: bool,
    /// Times a failed delivery is retried before it is dropped.
    pub retry: u32,
    /// Deliveries a consumer holds unacked at once (at least 1).
    pub prefetch: u32,
}

impl Subscription {
    /// The queue's name, as lymph names it.
    pub fn queue_name(&self) -> String {
        if self.broadcast {
            format!("{}-{}-{}", self.service, self.handler, self.instance)
        } else {
            format!("{}-{}", self.service, self.handler)
        }
    }
}

/// One event handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Unique within the consumer; acked or failed by it.
    pub tag: u64,
    pub event: Event,
    /// 1 on the first delivery, 2 on the first retry, ...
    pub attempt: u32,
}

/// The longest delay of an emit, on every bus: RabbitMQ's per-queue message
/// TTL, which carries lymph's delayed events, is a signed 32-bit number of
/// milliseconds (about 24.8 days); the embedded bus keeps the same bound.
pub const MAX_DELAY: Duration = Duration::from_millis(i32::MAX as u64);

/// Refuses a delay past [`MAX_DELAY`] with the reason.
pub fn check_delay(delay: Duration) -> Result<(), EventError> {
    if delay > MAX_DELAY {
        return Err(EventError::Invalid(format!(
            "the delay {} ms is longer than the longest, {} ms (about 24.8 days)",
            delay.as_millis(),
            MAX_DELAY.as_millis()
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("queue {queue} is full ({}); the subscriber is not keeping up", crate::plural::count(*.limit as u64, "event", "events"))]
    QueueFull { queue: String, limit: usize },
    #[error("too many delayed events waiting ({0}); try again later")]
    TooManyDelayed(usize),
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("event bus is closed")]
    Closed,
    #[error("event bus failed: {0}")]
    Backend(String),
}

/// What a consumer tells the bus about a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Ack(u64),
    Fail { tag: u64, reason: String },
}

/// A consumer's two halves: deliveries in, acks and fails out. Dropping
/// `settle` (every clone of it) and the consumer ends it: the settles sent
/// before reach the bus, then unacked deliveries go back.
pub struct Consumer {
    pub deliveries: mpsc::Receiver<Delivery>,
    pub settle: mpsc::UnboundedSender<Settle>,
    /// Whether deliveries flow, and what was refused; for status.
    pub health: Arc<ConsumerHealth>,
    /// Done once the consumer ended and its backend let go of it.
    pub finished: Finished,
}

/// Done once a consumer's backend is through with it: every settle it was
/// sent has reached the bus (on RabbitMQ: the acks are on the wire and its
/// channel closed), its unacked deliveries are the bus's again. A shutdown
/// waits for it so that acks are not lost to the process exiting.
#[derive(Clone)]
pub struct Finished(CancellationToken);

impl Finished {
    /// The signal and the guard the backend's consumer task keeps: it is
    /// done when the guard is dropped, however the task ends.
    pub(crate) fn new() -> (Finished, DropGuard) {
        let token = CancellationToken::new();
        (Finished(token.clone()), token.drop_guard())
    }

    pub async fn wait(&self) {
        self.0.cancelled().await;
    }

    pub fn is_done(&self) -> bool {
        self.0.is_cancelled()
    }
}

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event to every queue bound to its type, now or after
    /// `delay`. Fails (and publishes nothing) when a queue is full.
    async fn emit(&self, event: Event, delay: Duration) -> Result<(), EventError>;

    /// Starts a consumer. Fails only when the subscription itself is wrong
    /// (or the bus closed); a backend that cannot attach now (a broker
    /// refusing the queue's declaration) returns the consumer anyway, retries
    /// with backoff and reports it in `Consumer::health`.
    async fn consume(&self, subscription: Subscription) -> Result<Consumer, EventError>;

    /// Whether the backend's connection is up now (the embedded bus's always
    /// is): the `lymphd_broker_connected` gauge.
    fn connected(&self) -> bool {
        true
    }

    /// Events waiting in the bus's queues, when the bus keeps them itself
    /// (the embedded one; RabbitMQ's queues are the broker's to report).
    async fn queued(&self) -> Option<u64> {
        None
    }
}
