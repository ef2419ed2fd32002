//! One consumer: its own channel (prefetch = the subscription's), its queue
//! declared and bound, deliveries decoded and handed over, acks and fails
//! settled the lymph way (a failed event is re-published to the retry
//! exchange with `retry_count` one lower, or dropped past it). After a
//! broker restart it attaches again to the same queue; deliveries from the
//! lost channel are the broker's again, so their tags are forgotten and late
//! settles for them ignored. Dropping the `Consumer` closes its channel,
//! which hands its unacked deliveries back to the broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Acker, Channel};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::envelope::{self, CONTENT_TYPE, Incoming};
use super::link::{BACKOFF_FIRST, BACKOFF_MAX, Link, Session};
use super::publish::{Publisher, Target};
use super::topology::{Topology, short};
use crate::events::{Consumer, Delivery, EventError, Settle, Subscription};

#[derive(Clone)]
pub(crate) struct Consuming {
    pub link: Link,
    pub topology: Arc<Topology>,
    pub publisher: Publisher,
    pub timeout: Duration,
}

struct Held {
    acker: Acker,
    incoming: Incoming,
}

struct Task {
    ctx: Consuming,
    sub: Subscription,
    queue: String,
    deliveries: mpsc::Sender<Delivery>,
    held: HashMap<u64, Held>,
    next_tag: u64,
    /// Acks on their way to the broker (see `settle`).
    acks: tokio::task::JoinSet<()>,
}

impl Consuming {
    /// Declares and binds the queue and starts consuming before returning, so
    /// an emit made after `consume` returns reaches it.
    pub(crate) async fn start(&self, sub: Subscription) -> Result<Consumer, EventError> {
        if sub.event_type.is_empty() || sub.service.is_empty() {
            return Err(EventError::Invalid(
                "a subscription needs a service and an event type".to_owned(),
            ));
        }
        let queue = short("the queue name", sub.queue_name())?.to_string();
        short("the event type", sub.event_type.clone())?;
        let session = self.link.session(0, Instant::now() + self.timeout).await?;
        let (channel, stream) = attach(&session, &self.topology, &sub)
            .await
            .map_err(|e| EventError::Backend(format!("cannot consume from queue {queue}: {e}")))?;
        // Capacity = prefetch: the broker never lets more than that be
        // unacked, so the task's `send` only waits after a reconnect, when
        // stale deliveries still sit in the channel.
        let (tx, deliveries) = mpsc::channel(sub.prefetch.max(1) as usize);
        // Unbounded is safe: a consumer settles only what it holds (≤ prefetch).
        let (settle, settle_rx) = mpsc::unbounded_channel();
        let task = Task {
            ctx: self.clone(),
            sub,
            queue,
            deliveries: tx,
            held: HashMap::new(),
            next_tag: 0,
            acks: tokio::task::JoinSet::new(),
        };
        tokio::spawn(task.run(channel, stream, settle_rx));
        Ok(Consumer { deliveries, settle })
    }
}

async fn attach(
    session: &Session,
    topology: &Topology,
    sub: &Subscription,
) -> Result<(Channel, lapin::Consumer), lapin::Error> {
    let channel = session.connection.create_channel().await?;
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
            let _ = channel.close(200, "attach failed".into()).await;
            Err(e)
        }
    }
}

impl Task {
    async fn run(
        mut self,
        mut channel: Channel,
        mut stream: lapin::Consumer,
        mut settle_rx: mpsc::UnboundedReceiver<Settle>,
    ) {
        loop {
            tokio::select! {
                settle = settle_rx.recv() => match settle {
                    Some(settle) => self.settle(settle).await,
                    None => break,
                },
                delivery = stream.next() => match delivery {
                    Some(Ok(delivery)) => {
                        if !self.deliver(delivery).await {
                            break;
                        }
                    }
                    end => {
                        let why = end.map_or("the consumer ended".to_owned(), |e| e.err().map(|e| e.to_string()).unwrap_or_default());
                        warn!(queue = %self.queue, %why, "event consumer lost its channel; attaching again");
                        // The broker takes back what the lost channel held.
                        self.held.clear();
                        let Some((c, s)) = self.reattach(&mut settle_rx).await else {
                            return;
                        };
                        (channel, stream) = (c, s);
                    }
                },
            }
        }
        // The app is gone: closing the channel requeues its unacked deliveries.
        debug!(queue = %self.queue, unacked = self.held.len(), "event consumer closed");
        while self.acks.join_next().await.is_some() {}
        let _ = channel.close(200, "consumer gone".into()).await;
    }

    /// Attaches on the current (or next) connection with backoff; `None`
    /// when the app dropped the consumer meanwhile.
    async fn reattach(
        &self,
        settle_rx: &mut mpsc::UnboundedReceiver<Settle>,
    ) -> Option<(Channel, lapin::Consumer)> {
        let mut backoff = BACKOFF_FIRST;
        loop {
            let pause = backoff;
            let attempt = async move {
                tokio::time::sleep(pause).await;
                let session = self
                    .ctx
                    .link
                    .session(0, Instant::now() + BACKOFF_MAX)
                    .await?;
                attach(&session, &self.ctx.topology, &self.sub)
                    .await
                    .map_err(|e| EventError::Backend(e.to_string()))
            };
            tokio::pin!(attempt);
            let result = loop {
                tokio::select! {
                    result = &mut attempt => break result,
                    settle = settle_rx.recv() => match settle {
                        // Settles for deliveries of the lost channel: ignored.
                        Some(_) => {}
                        None => return None,
                    },
                }
            };
            match result {
                Ok(attached) => {
                    info!(queue = %self.queue, "event consumer attached again");
                    return Some(attached);
                }
                Err(error) => {
                    debug!(queue = %self.queue, %error, "event consumer cannot attach yet");
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Hands one delivery to the app; false when the app is gone.
    async fn deliver(&mut self, delivery: lapin::message::Delivery) -> bool {
        let content_type = delivery
            .properties
            .content_type()
            .as_ref()
            .map(|t| t.as_str().to_owned());
        let decoded = match content_type.as_deref() {
            Some(CONTENT_TYPE) => envelope::decode(&delivery.data).map_err(|e| e.to_string()),
            other => Err(format!("unsupported content type {other:?}")),
        };
        let incoming = match decoded {
            Ok(incoming) => incoming,
            Err(error) => {
                // As lymph: log, ack, drop; never redeliver forever.
                warn!(queue = %self.queue, %error, "cannot decode an event; dropped");
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
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
                while self.acks.try_join_next().is_some() {}
                let acker = held.acker;
                self.acks.spawn(async move {
                    let _ = acker.ack(BasicAckOptions::default()).await;
                });
            }
            Settle::Fail { reason, .. } => {
                // The confirmed re-publish takes a round trip: in its own
                // task, so this consumer's other acks and deliveries go on.
                let ctx = self.ctx.clone();
                let queue = self.queue.clone();
                let retry = self.sub.retry;
                tokio::spawn(async move { fail(ctx, queue, retry, held, reason).await });
            }
        }
    }
}

/// lymph's failure path: tries left = `retry_count` (else the handler's
/// `retry`) - 1; if ≥ 0 a copy carrying it goes to the retry exchange under
/// this queue's name, and the original is acked; else the event is dropped.
async fn fail(ctx: Consuming, queue: String, retry: u32, held: Held, reason: String) {
    let Held { acker, incoming } = held;
    let event_id = incoming.event.id.clone();
    let left = incoming.retry_count.unwrap_or(i64::from(retry)) - 1;
    let drop_it = BasicRejectOptions { requeue: false };
    if left < 0 {
        warn!(%queue, %event_id, trace_id = %incoming.event.trace_id, %reason, "event failed past its retry count; dropped");
        let _ = acker.reject(drop_it).await;
        return;
    }
    let copy = envelope::encode(
        &incoming.event,
        &incoming.source,
        Some(left),
        &incoming.other_headers,
    );
    match ctx
        .publisher
        .publish(Target::Retry { queue: &queue }, &copy, &event_id)
        .await
    {
        Ok(()) => {
            debug!(%queue, %event_id, tries_left = left, %reason, "event failed; retry queued");
            let _ = acker.ack(BasicAckOptions::default()).await;
        }
        Err(error) => {
            // Rejected without requeue: a dead-letter policy, if set, keeps it.
            warn!(%queue, %event_id, trace_id = %incoming.event.trace_id, %error, %reason, "event failed and its retry could not be queued; dropped");
            let _ = acker.reject(drop_it).await;
        }
    }
}
