//! One consumer: its own channel (prefetch = the subscription's), its queue
//! declared and bound, deliveries checked, decoded and handed over, acks and
//! fails settled (`settle`). A delivery whose body is over `max_body_bytes`,
//! or that does not decode, is never handed over: it is rejected without
//! requeue, counted in the consumer's health and warned about (at a bounded
//! rate). When attaching fails (the broker refuses the queue's declaration,
//! say a queue of that name with other flags, 406 PRECONDITION_FAILED; or no
//! connection), the consumer keeps trying in the background with backoff
//! and its health says why; the app stays attached. A lost channel (broker
//! restart, queue deleted) is attached again the same way; its deliveries
//! are the broker's again, so their tags are forgotten and late settles for
//! them ignored. Dropping the `Consumer` (and every clone of its `settle`)
//! ends it: the acks and fails it was sent are put on the wire first, then
//! its channel closes, which hands its unacked deliveries back to the
//! broker; then it is `finished`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Acker, Channel};
use lymph_proto::backoff::Backoff;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::DropGuard;
use tracing::{debug, info, warn};

use super::envelope::{self, CONTENT_TYPE, Incoming};
use super::link::{BACKOFF_FIRST, BACKOFF_MAX, Link, Session};
use super::publish::Publisher;
use super::settle::{Held, fail};
use super::topology::{Topology, short};
use crate::events::{
    Consumer, ConsumerHealth, ConsumerState, Delivery, EventError, Finished, Refusal, Settle,
    Subscription,
};
use crate::warn_limit::WarnLimit;

/// Pauses while the broker refuses the queue: it will until an operator
/// changes something, so it is asked rarely (1 s doubling to 30 s). While
/// the broker is unreachable the link's own backoff applies (`BACKOFF_*`).
const REFUSED_FIRST: Duration = Duration::from_secs(1);
const REFUSED_MAX: Duration = Duration::from_secs(30);
/// How long `start` waits for a reconnecting broker before it leaves the
/// consumer to its background retries (the app's `Ready` waits that long).
const START_WAIT: Duration = Duration::from_secs(2);
/// An envelope adds the type, headers and source to its body: a delivery this
/// much over the body limit is refused without being decoded.
const ENVELOPE_ALLOWANCE: usize = 64 * 1024;
/// A channel lost after living this long starts its retries afresh; one lost
/// sooner keeps the pause growing, so a broker that closes it at once each
/// time is not asked ever faster.
const STABLE: Duration = REFUSED_MAX;
/// The pauses after lost channels: from the link's first to the refused maximum.
const LOST_BACKOFF: Backoff = Backoff::new(BACKOFF_FIRST, REFUSED_MAX);
/// The pauses between attempts the broker refused.
const REFUSED_BACKOFF: Backoff = Backoff::new(REFUSED_FIRST, REFUSED_MAX);
/// The pauses between attempts while the broker is unreachable (the link's).
const UNREACHABLE_BACKOFF: Backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_MAX);
/// Closing a lost channel: its connection may be gone too.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// One line per interval for refused deliveries, whatever the queue: a flood
/// of them costs a few lines (with the count left out), the health counts all.
static TOO_LARGE: WarnLimit = WarnLimit::new(Duration::from_secs(5));
static MALFORMED: WarnLimit = WarnLimit::new(Duration::from_secs(5));

#[derive(Clone)]
pub(crate) struct Consuming {
    pub link: Link,
    pub topology: Arc<Topology>,
    pub publisher: Publisher,
    pub timeout: Duration,
    pub max_body_bytes: usize,
}

/// Why attaching failed.
enum AttachError {
    /// The broker answered and refused (a channel error); it will again
    /// until someone changes the broker's state.
    Refused(String),
    /// No live connection, or it died during the attempt.
    Unavailable(String),
}

/// Why a delivery is not handed over.
enum Unfit {
    TooLarge { bytes: usize },
    Malformed(String),
}

struct Task {
    ctx: Consuming,
    sub: Subscription,
    queue: String,
    deliveries: mpsc::Sender<Delivery>,
    held: HashMap<u64, Held>,
    next_tag: u64,
    /// Acks and fails on their way to the broker (see `settle`).
    settling: tokio::task::JoinSet<()>,
    health: Arc<ConsumerHealth>,
    /// Attach attempts failed in a row.
    failures: u32,
    /// The pause before the next attempt.
    pause: Duration,
    /// The pauses after failed attempts, by why they failed; afresh once attached.
    refused: Backoff,
    unreachable: Backoff,
    /// The pauses after lost channels: doubling while each is lost soon
    /// after attaching, afresh after a stable one (see `STABLE`).
    lost: Backoff,
    /// Dropped when the task ends: the consumer is `finished`.
    _finished: DropGuard,
}

impl Consuming {
    /// Declares and binds the queue and starts consuming before returning, so
    /// an emit made after `consume` returns reaches it; when that fails the
    /// consumer is returned anyway and keeps trying (see the module's doc).
    pub(crate) async fn start(&self, sub: Subscription) -> Result<Consumer, EventError> {
        if sub.event_type.is_empty() || sub.service.is_empty() {
            return Err(EventError::Invalid(
                "a subscription needs a service and an event type".to_owned(),
            ));
        }
        let queue = short("the queue name", sub.queue_name())?.to_string();
        short("the event type", sub.event_type.clone())?;
        // Capacity = prefetch: the broker never lets more than that be
        // unacked, so the task's `send` only waits after a reconnect, when
        // stale deliveries still sit in the channel.
        let (tx, deliveries) = mpsc::channel(sub.prefetch.max(1) as usize);
        // Unbounded is safe: a consumer settles only what it holds (≤ prefetch).
        let (settle, settle_rx) = mpsc::unbounded_channel();
        let health = Arc::new(ConsumerHealth::default());
        let (finished, guard) = Finished::new();
        let mut task = Task {
            ctx: self.clone(),
            sub,
            queue,
            deliveries: tx,
            held: HashMap::new(),
            next_tag: 0,
            settling: tokio::task::JoinSet::new(),
            health: health.clone(),
            failures: 0,
            pause: BACKOFF_FIRST,
            refused: REFUSED_BACKOFF,
            unreachable: UNREACHABLE_BACKOFF,
            lost: LOST_BACKOFF,
            _finished: guard,
        };
        let wait = Instant::now() + START_WAIT.min(self.timeout);
        let attached = match self.link.session(0, wait).await {
            Ok(session) => attach(&session, &self.topology, &task.sub).await,
            Err(e) => Err(AttachError::Unavailable(e.to_string())),
        };
        let attached = attached.map_err(|e| task.failed(e)).ok();
        tokio::spawn(task.run(attached, settle_rx));
        Ok(Consumer {
            deliveries,
            settle,
            health,
            finished,
        })
    }
}

async fn attach(
    session: &Session,
    topology: &Topology,
    sub: &Subscription,
) -> Result<(Channel, lapin::Consumer), AttachError> {
    let classify = |e: lapin::Error| {
        // A channel error leaves the connection up: the broker refused.
        if session.connection.status().connected() {
            AttachError::Refused(e.to_string())
        } else {
            AttachError::Unavailable(e.to_string())
        }
    };
    let channel = session
        .connection
        .create_channel()
        .await
        .map_err(classify)?;
    let attached = async {
        let prefetch = u16::try_from(sub.prefetch.max(1)).unwrap_or(u16::MAX);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        topology.declare_consumer_queue(&channel, sub).await?;
        channel
            .basic_consume(
                sub.queue_name().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
    }
    .await;
    match attached {
        Ok(stream) => Ok((channel, stream)),
        Err(e) => {
            let _ =
                tokio::time::timeout(CLOSE_WAIT, channel.close(200, "attach failed".into())).await;
            Err(classify(e))
        }
    }
}

impl Task {
    async fn run(
        mut self,
        mut attached: Option<(Channel, lapin::Consumer)>,
        mut settle_rx: mpsc::UnboundedReceiver<Settle>,
    ) {
        loop {
            let (channel, mut stream) = match attached.take() {
                Some(attached) => attached,
                None => match self.reattach(&mut settle_rx).await {
                    Some(attached) => attached,
                    None => return,
                },
            };
            self.health.set(ConsumerState::Consuming);
            let since = Instant::now();
            let Some(why) = self.consume(&mut stream, &mut settle_rx).await else {
                // The app is gone: its acks and fails go out first, then
                // closing the channel requeues its unacked deliveries.
                debug!(queue = %self.queue, unacked = self.held.len(), "event consumer closed");
                while self.settling.join_next().await.is_some() {}
                let _ =
                    tokio::time::timeout(CLOSE_WAIT, channel.close(200, "consumer gone".into()))
                        .await;
                return;
            };
            // The broker takes back what the lost channel held.
            self.held.clear();
            let _ = tokio::time::timeout(CLOSE_WAIT, channel.close(200, "lost".into())).await;
            if since.elapsed() >= STABLE {
                self.lost.reset();
            }
            let pause = self.lost.next_delay();
            self.pause = pause;
            warn!(queue = %self.queue, %why, retry_in = ?pause, "event consumer lost its channel; attaching again");
            self.health.set(ConsumerState::Retrying {
                error: why,
                attempts: self.failures,
                next_attempt: std::time::Instant::now() + pause,
            });
        }
    }

    /// Hands deliveries over and settles them until the channel is lost
    /// (`Some(why)`) or the app is gone (`None`).
    async fn consume(
        &mut self,
        stream: &mut lapin::Consumer,
        settle_rx: &mut mpsc::UnboundedReceiver<Settle>,
    ) -> Option<String> {
        loop {
            tokio::select! {
                settle = settle_rx.recv() => match settle {
                    Some(settle) => self.settle(settle).await,
                    None => return None,
                },
                delivery = stream.next() => match delivery {
                    Some(Ok(delivery)) => {
                        if !self.deliver(delivery).await {
                            // The app is gone; what it settled still counts
                            // (the channel ends once the last settle is in).
                            while let Some(settle) = settle_rx.recv().await {
                                self.settle(settle).await;
                            }
                            return None;
                        }
                    }
                    Some(Err(e)) => return Some(e.to_string()),
                    None => return Some("the broker ended the consumer".to_owned()),
                },
            }
        }
    }

    /// Records a failed attempt: the next pause, a warning when the broker
    /// refused (the link already warns about a lost connection), the health.
    fn failed(&mut self, error: AttachError) {
        self.failures += 1;
        let (pause, refused, error) = match error {
            AttachError::Refused(e) => (self.refused.next_delay(), true, e),
            AttachError::Unavailable(e) => (self.unreachable.next_delay(), false, e),
        };
        self.pause = pause;
        let attempt = self.failures;
        if refused {
            warn!(queue = %self.queue, event_type = %self.sub.event_type, attempt, %error,
                  retry_in = ?pause, "the broker refused the subscription's queue; retrying");
        } else {
            debug!(queue = %self.queue, attempt, %error, retry_in = ?pause, "event consumer cannot attach yet");
        }
        self.health.set(ConsumerState::Retrying {
            error,
            attempts: attempt,
            next_attempt: std::time::Instant::now() + pause,
        });
    }

    /// Attaches after the pause, again and again; `None` when the app
    /// dropped the consumer meanwhile.
    async fn reattach(
        &mut self,
        settle_rx: &mut mpsc::UnboundedReceiver<Settle>,
    ) -> Option<(Channel, lapin::Consumer)> {
        loop {
            let pause = self.pause;
            let result = {
                let (link, topology, sub) = (&self.ctx.link, &self.ctx.topology, &self.sub);
                let attempt = async move {
                    tokio::time::sleep(pause).await;
                    match link.session(0, Instant::now() + BACKOFF_MAX).await {
                        Ok(session) => attach(&session, topology, sub).await,
                        Err(e) => Err(AttachError::Unavailable(e.to_string())),
                    }
                };
                tokio::pin!(attempt);
                loop {
                    tokio::select! {
                        result = &mut attempt => break result,
                        settle = settle_rx.recv() => match settle {
                            // Settles for deliveries of the lost channel: ignored.
                            Some(_) => {}
                            None => return None,
                        },
                    }
                }
            };
            match result {
                Ok(attached) => {
                    info!(queue = %self.queue, failed_attempts = self.failures, "event consumer attached");
                    self.failures = 0;
                    self.refused.reset();
                    self.unreachable.reset();
                    return Some(attached);
                }
                Err(error) => self.failed(error),
            }
        }
    }

    /// Hands one delivery to the app (or refuses it); false when the app is gone.
    async fn deliver(&mut self, delivery: lapin::message::Delivery) -> bool {
        let incoming = match self.check(&delivery) {
            Ok(incoming) => incoming,
            Err(unfit) => {
                self.refuse(delivery.acker, unfit).await;
                return true;
            }
        };
        // 1 on the first delivery; a retried copy says how many tries are left.
        let attempt = incoming.retry_count.map_or(1, |left| {
            (i64::from(self.sub.retry) - left + 1).clamp(1, i64::from(u32::MAX)) as u32
        });
        self.next_tag += 1;
        let tag = self.next_tag;
        let event = incoming.event.clone();
        self.held.insert(
            tag,
            Held {
                acker: delivery.acker,
                incoming,
            },
        );
        self.deliveries
            .send(Delivery {
                tag,
                event,
                attempt,
            })
            .await
            .is_ok()
    }

    /// The event in a delivery, or why it must not reach the app.
    fn check(&self, delivery: &lapin::message::Delivery) -> Result<Incoming, Unfit> {
        let limit = self.ctx.max_body_bytes;
        let size = delivery.data.len();
        if size > limit.saturating_add(ENVELOPE_ALLOWANCE) {
            return Err(Unfit::TooLarge { bytes: size });
        }
        let content_type = delivery.properties.content_type().as_ref();
        if content_type.map(|t| t.as_str()) != Some(CONTENT_TYPE) {
            let shown = content_type.map(|t| t.as_str().to_owned());
            return Err(Unfit::Malformed(format!(
                "unsupported content type {shown:?}"
            )));
        }
        let incoming =
            envelope::decode(&delivery.data).map_err(|e| Unfit::Malformed(e.to_string()))?;
        let bytes = incoming.event.body.len();
        if bytes > limit {
            return Err(Unfit::TooLarge { bytes });
        }
        Ok(incoming)
    }

    /// Rejects a delivery without requeue: the broker drops it (or
    /// dead-letters it where a policy says so) instead of delivering it
    /// again, to this consumer or another.
    async fn refuse(&self, acker: Acker, unfit: Unfit) {
        match unfit {
            Unfit::TooLarge { bytes } => {
                self.health.refused(Refusal::TooLarge);
                crate::warn_limited!(TOO_LARGE, queue = %self.queue, bytes,
                    limit = self.ctx.max_body_bytes,
                    "event larger than rpc.max_body_bytes; rejected without requeue, not handed to the app");
            }
            Unfit::Malformed(error) => {
                self.health.refused(Refusal::Malformed);
                crate::warn_limited!(MALFORMED, queue = %self.queue, %error,
                    "cannot decode an event; rejected without requeue");
            }
        }
        let _ = acker.reject(BasicRejectOptions { requeue: false }).await;
    }

    async fn settle(&mut self, settle: Settle) {
        let tag = match &settle {
            Settle::Ack(tag) | Settle::Fail { tag, .. } => *tag,
        };
        let Some(held) = self.held.remove(&tag) else {
            debug!(queue = %self.queue, tag, "settle for an unknown or stale delivery; ignored");
            return;
        };
        match settle {
            Settle::Ack(_) => {
                // Not awaited here: the ack's round trip through lapin's IO
                // thread (a context switch each way) would hold up this
                // consumer's next deliveries and settles. Acks carry their
                // delivery tag, so their order does not matter; a lost
                // channel loses them either way (the broker redelivers).
                // Finished ones are reaped here; the rest are awaited before
                // the channel closes, so no ack is lost to our own close.
                while self.settling.try_join_next().is_some() {}
                let acker = held.acker;
                self.settling.spawn(async move {
                    let _ = acker.ack(BasicAckOptions::default()).await;
                });
            }
            Settle::Fail { reason, .. } => {
                // The confirmed re-publish takes a round trip: in its own
                // task, so this consumer's other acks and deliveries go on;
                // awaited like acks before the channel closes.
                let ctx = self.ctx.clone();
                let queue = self.queue.clone();
                let retry = self.sub.retry;
                while self.settling.try_join_next().is_some() {}
                self.settling
                    .spawn(async move { fail(ctx, queue, retry, held, reason).await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_lost_in_a_row_back_off_from_200_ms_to_30_s() {
        let mut lost = LOST_BACKOFF;
        let ms: Vec<u128> = (0..10).map(|_| lost.next_delay().as_millis()).collect();
        assert_eq!(
            ms,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        lost.reset();
        assert_eq!(lost.next_delay(), BACKOFF_FIRST);
    }

    #[test]
    fn refused_attempts_are_asked_rarely_unreachable_ones_as_the_link() {
        let mut refused = REFUSED_BACKOFF;
        let s: Vec<u64> = (0..7).map(|_| refused.next_delay().as_secs()).collect();
        assert_eq!(s, [1, 2, 4, 8, 16, 30, 30]);
        let mut unreachable = UNREACHABLE_BACKOFF;
        let ms: Vec<u128> = (0..7)
            .map(|_| unreachable.next_delay().as_millis())
            .collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
