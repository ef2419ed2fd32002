//! The embedded event bus: one actor task owns every queue, binding and
//! consumer (no locks); handles talk to it over a bounded command channel.
//! Queues are bounded and in memory: a daemon restart loses them.
//!
//! Queue names follow lymph (`Subscription::queue_name`): `<service>-<handler>`
//! is shared by every instance of a service (each event to one of them); a
//! broadcast subscription gets `<service>-<handler>-<instance>`, deleted with
//! its consumer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::{Consumer, Delivery, Event, EventBus, EventError, Finished, Settle, Subscription};

/// Commands waiting for the actor. Emits wait (`send().await`) when it is
/// full, which pushes back on emitters instead of growing memory.
const COMMAND_QUEUE: usize = 4096;

#[derive(Clone)]
pub struct EmbeddedBus {
    tx: mpsc::Sender<Command>,
    delayed: Arc<AtomicUsize>,
    delayed_limit: usize,
}

enum Command {
    Emit(Event, oneshot::Sender<Result<(), EventError>>),
    /// A delayed event whose time has come; nobody waits for the result.
    Due(Event),
    Consume(Subscription, oneshot::Sender<Result<Consumer, EventError>>),
    Settle(u64, Settle),
    Gone(u64),
    /// How many events wait in the queues (a scrape asks).
    Depth(oneshot::Sender<u64>),
}

struct Message {
    event: Event,
    attempt: u32,
}

struct Queue {
    /// Deleted with its last consumer (broadcast queues).
    auto_delete: bool,
    retry: u32,
    ready: VecDeque<Message>,
    consumers: Vec<u64>,
    next: usize,
}

struct ConsumerState {
    queue: String,
    tx: mpsc::Sender<Delivery>,
    prefetch: usize,
    held: HashMap<u64, Message>,
    next_tag: u64,
}

struct Actor {
    limit: usize,
    queues: HashMap<String, Queue>,
    bindings: HashMap<String, HashSet<String>>,
    consumers: HashMap<u64, ConsumerState>,
    next_consumer: u64,
    commands: mpsc::Sender<Command>,
}

impl EmbeddedBus {
    /// Starts the actor. `queue_limit` bounds each queue and the number of
    /// delayed events waiting.
    pub fn spawn(queue_limit: usize) -> EmbeddedBus {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let actor = Actor {
            limit: queue_limit,
            queues: HashMap::new(),
            bindings: HashMap::new(),
            consumers: HashMap::new(),
            next_consumer: 1,
            commands: tx.clone(),
        };
        tokio::spawn(actor.run(rx));
        EmbeddedBus {
            tx,
            delayed: Arc::new(AtomicUsize::new(0)),
            delayed_limit: queue_limit,
        }
    }

    async fn send(&self, command: Command) -> Result<(), EventError> {
        self.tx.send(command).await.map_err(|_| EventError::Closed)
    }
}

#[async_trait]
impl EventBus for EmbeddedBus {
    async fn emit(&self, event: Event, delay: Duration) -> Result<(), EventError> {
        if event.event_type.is_empty() {
            return Err(EventError::Invalid("the event type is empty".to_owned()));
        }
        super::check_delay(delay)?;
        if delay.is_zero() {
            let (tx, rx) = oneshot::channel();
            self.send(Command::Emit(event, tx)).await?;
            return rx.await.map_err(|_| EventError::Closed)?;
        }
        if self.delayed.fetch_add(1, Ordering::AcqRel) >= self.delayed_limit {
            self.delayed.fetch_sub(1, Ordering::AcqRel);
            return Err(EventError::TooManyDelayed(self.delayed_limit));
        }
        let bus = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            bus.delayed.fetch_sub(1, Ordering::AcqRel);
            let _ = bus.tx.send(Command::Due(event)).await;
        });
        Ok(())
    }

    async fn consume(&self, subscription: Subscription) -> Result<Consumer, EventError> {
        if subscription.event_type.is_empty() || subscription.service.is_empty() {
            return Err(EventError::Invalid(
                "a subscription needs a service and an event type".to_owned(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        self.send(Command::Consume(subscription, tx)).await?;
        rx.await.map_err(|_| EventError::Closed)?
    }

    async fn queued(&self) -> Option<u64> {
        let (reply, depth) = oneshot::channel();
        self.send(Command::Depth(reply)).await.ok()?;
        depth.await.ok()
    }
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(command) = rx.recv().await {
            match command {
                Command::Emit(event, reply) => {
                    let _ = reply.send(self.route(event));
                }
                Command::Due(event) => {
                    let (event_type, trace_id) = (event.event_type.clone(), event.trace_id.clone());
                    if let Err(e) = self.route(event) {
                        warn!(%event_type, %trace_id, error = %e, "dropped a delayed event");
                    }
                }
                Command::Consume(sub, reply) => {
                    let _ = reply.send(Ok(self.add_consumer(sub)));
                }
                Command::Settle(consumer, settle) => self.settle(consumer, settle),
                Command::Gone(consumer) => self.remove_consumer(consumer),
                Command::Depth(reply) => {
                    let depth = self.queues.values().map(|q| q.ready.len() as u64).sum();
                    let _ = reply.send(depth);
                }
            }
        }
    }

    /// Puts the event in every bound queue, or in none when one is full.
    fn route(&mut self, event: Event) -> Result<(), EventError> {
        let Some(names) = self.bindings.get(&event.event_type) else {
            debug!(event_type = %event.event_type, "no subscriber; event dropped");
            return Ok(());
        };
        let names: Vec<String> = names.iter().cloned().collect();
        for name in &names {
            if self
                .queues
                .get(name)
                .is_some_and(|q| q.ready.len() >= self.limit)
            {
                return Err(EventError::QueueFull {
                    queue: name.clone(),
                    limit: self.limit,
                });
            }
        }
        for name in &names {
            if let Some(queue) = self.queues.get_mut(name) {
                queue.ready.push_back(Message {
                    event: event.clone(),
                    attempt: 1,
                });
            }
            self.pump(name);
        }
        Ok(())
    }

    fn add_consumer(&mut self, sub: Subscription) -> Consumer {
        let name = sub.queue_name();
        let id = self.next_consumer;
        self.next_consumer += 1;
        let prefetch = sub.prefetch.max(1) as usize;
        let (tx, deliveries) = mpsc::channel(prefetch);
        let queue = self.queues.entry(name.clone()).or_insert_with(|| Queue {
            auto_delete: sub.broadcast,
            retry: sub.retry,
            ready: VecDeque::new(),
            consumers: Vec::new(),
            next: 0,
        });
        queue.retry = sub.retry;
        queue.consumers.push(id);
        self.bindings
            .entry(sub.event_type.clone())
            .or_default()
            .insert(name.clone());
        self.consumers.insert(
            id,
            ConsumerState {
                queue: name.clone(),
                tx,
                prefetch,
                held: HashMap::new(),
                next_tag: 1,
            },
        );
        // Acks go through a per-consumer forwarder so that a consumer dropping
        // its sender is noticed as "gone". Unbounded is safe: a consumer can
        // only settle what it holds, at most `prefetch` at a time. Its settles
        // are in the actor's queue before `Gone`; then it is finished.
        let (settle, mut settle_rx) = mpsc::unbounded_channel::<Settle>();
        let commands = self.commands.clone();
        let (finished, done) = Finished::new();
        tokio::spawn(async move {
            let _done = done;
            while let Some(s) = settle_rx.recv().await {
                if commands.send(Command::Settle(id, s)).await.is_err() {
                    return;
                }
            }
            let _ = commands.send(Command::Gone(id)).await;
        });
        self.pump(&name);
        // Every event here passed emit's checks and its queue always
        // exists: an embedded consumer is consuming from the start.
        Consumer {
            deliveries,
            settle,
            health: Arc::default(),
            finished,
        }
    }

    fn settle(&mut self, consumer: u64, settle: Settle) {
        let Some(state) = self.consumers.get_mut(&consumer) else {
            return;
        };
        let queue_name = state.queue.clone();
        match settle {
            Settle::Ack(tag) => {
                state.held.remove(&tag);
            }
            Settle::Fail { tag, reason } => {
                let Some(mut message) = state.held.remove(&tag) else {
                    return;
                };
                let Some(queue) = self.queues.get_mut(&queue_name) else {
                    return;
                };
                if message.attempt > queue.retry {
                    warn!(queue = %queue_name, event_id = %message.event.id, trace_id = %message.event.trace_id,
                          attempts = message.attempt, %reason,
                          "event failed past its retry count; dropped");
                } else {
                    message.attempt += 1;
                    queue.ready.push_back(message);
                }
            }
        }
        self.pump(&queue_name);
    }

    fn remove_consumer(&mut self, consumer: u64) {
        let Some(state) = self.consumers.remove(&consumer) else {
            return;
        };
        let name = state.queue;
        let Some(queue) = self.queues.get_mut(&name) else {
            return;
        };
        queue.consumers.retain(|c| *c != consumer);
        // Unacked deliveries go back to the front, oldest first, for another instance.
        let mut held: Vec<(u64, Message)> = state.held.into_iter().collect();
        held.sort_by_key(|(tag, _)| std::cmp::Reverse(*tag));
        for (_, message) in held {
            queue.ready.push_front(message);
        }
        if queue.auto_delete && queue.consumers.is_empty() {
            self.queues.remove(&name);
            // A queue may be bound to several event types (one handler, many types).
            self.bindings.retain(|_, names| {
                names.remove(&name);
                !names.is_empty()
            });
            return;
        }
        self.pump(&name);
    }

    /// Hands ready messages to consumers with room, round-robin.
    fn pump(&mut self, name: &str) {
        let Some(queue) = self.queues.get_mut(name) else {
            return;
        };
        let mut gone = Vec::new();
        while !queue.ready.is_empty() && !queue.consumers.is_empty() {
            let n = queue.consumers.len();
            let pick = (0..n).map(|k| (queue.next + k) % n).find(|&i| {
                self.consumers.get(&queue.consumers[i]).is_some_and(|c| {
                    c.held.len() < c.prefetch && !gone.contains(&queue.consumers[i])
                })
            });
            let Some(index) = pick else {
                break;
            };
            queue.next = (index + 1) % n;
            let consumer_id = queue.consumers[index];
            let Some(consumer) = self.consumers.get_mut(&consumer_id) else {
                break;
            };
            let Some(message) = queue.ready.pop_front() else {
                break;
            };
            let tag = consumer.next_tag;
            let delivery = Delivery {
                tag,
                event: message.event.clone(),
                attempt: message.attempt,
            };
            // Capacity equals prefetch and held < prefetch, so this only fails
            // when the consumer is gone.
            match consumer.tx.try_send(delivery) {
                Ok(()) => {
                    consumer.next_tag += 1;
                    consumer.held.insert(tag, message);
                }
                Err(_) => {
                    queue.ready.push_front(message);
                    gone.push(consumer_id);
                }
            }
        }
        for consumer in gone {
            let _ = self.commands.try_send(Command::Gone(consumer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::conformance;

    #[tokio::test]
    async fn conformance_once_per_service() {
        conformance::once_per_service(&EmbeddedBus::spawn(10_000)).await;
    }

    #[tokio::test]
    async fn conformance_broadcast() {
        conformance::broadcast_reaches_every_instance(&EmbeddedBus::spawn(10_000)).await;
    }

    #[tokio::test]
    async fn conformance_delay() {
        conformance::delay_is_respected(&EmbeddedBus::spawn(10_000)).await;
    }

    #[tokio::test]
    async fn conformance_overlong_delay() {
        conformance::overlong_delay_is_refused(&EmbeddedBus::spawn(10_000)).await;
    }

    #[tokio::test]
    async fn conformance_retry_then_drop() {
        conformance::fail_retries_then_drops(&EmbeddedBus::spawn(10_000)).await;
    }

    #[tokio::test]
    async fn conformance_redelivery() {
        conformance::unacked_go_to_another_consumer(&EmbeddedBus::spawn(10_000)).await;
    }

    #[tokio::test]
    async fn conformance_no_subscriber() {
        conformance::no_subscriber_drops(&EmbeddedBus::spawn(10_000)).await;
    }

    #[tokio::test]
    async fn conformance_prefetch() {
        conformance::prefetch_bounds_unsettled(&EmbeddedBus::spawn(10_000)).await;
    }

    #[tokio::test]
    async fn conformance_bound() {
        conformance::full_queue_refuses_emit(&EmbeddedBus::spawn(5), 5).await;
    }
}
