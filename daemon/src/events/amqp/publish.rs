//! Publishing with publisher confirms through a bounded window: at most
//! `confirm_window` publishes await the broker's confirm at once, the rest
//! wait for a slot (a slow broker pushes back on emitters). A publish lost
//! with its connection is sent again on the next one until the caller's
//! deadline: at least once, never silently dropped.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Confirmation};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::debug;

use super::envelope::{CONTENT_ENCODING, CONTENT_TYPE};
use super::link::{Link, Session, unavailable};
use super::topology::{Topology, short, wait_queue_name};
use crate::events::EventError;

/// Where a message goes.
pub(crate) enum Target<'a> {
    /// The topic exchange, under the event type.
    Now { event_type: &'a str },
    /// The event type's wait queue for this delay.
    Later { event_type: &'a str, millis: u32 },
    /// The retry exchange, under one consumer queue's name.
    Retry { queue: &'a str },
}

#[derive(Clone)]
pub(crate) struct Publisher {
    link: Link,
    topology: Arc<Topology>,
    /// Slots for unconfirmed publishes; `acquire` waits (bounded by the
    /// deadline) when the broker lags, which is the backpressure.
    window: Arc<Semaphore>,
    /// The window's size (`events.confirm_window`).
    window_size: usize,
    timeout: Duration,
}

enum Failure {
    /// The connection or channel went away: try again on the next session.
    Lost(String),
    Fatal(EventError),
}

impl Publisher {
    pub(crate) fn new(
        link: Link,
        topology: Arc<Topology>,
        window: usize,
        timeout: Duration,
    ) -> Publisher {
        Publisher {
            link,
            topology,
            window: Arc::new(Semaphore::new(window)),
            window_size: window,
            timeout,
        }
    }

    /// Returns once the broker confirmed the message (or the deadline passed).
    pub(crate) async fn publish(
        &self,
        target: Target<'_>,
        payload: &[u8],
        message_id: &str,
    ) -> Result<(), EventError> {
        let deadline = Instant::now() + self.timeout;
        let Ok(Ok(_slot)) = tokio::time::timeout_at(deadline, self.window.acquire()).await else {
            let waiting = self
                .window_size
                .saturating_sub(self.window.available_permits());
            return Err(unavailable(&format!(
                "no publish confirmed within {} ({} the broker's confirm, events.confirm_window)",
                humantime::format_duration(self.timeout),
                crate::plural::count(waiting as u64, "publish awaits", "publishes await")
            )));
        };
        let (exchange, routing_key) = self.route(&target)?;
        let mut after = 0;
        loop {
            let session = self.link.session(after, deadline).await?;
            match self
                .once(
                    &session,
                    &target,
                    &exchange,
                    &routing_key,
                    payload,
                    message_id,
                    deadline,
                )
                .await
            {
                Ok(()) => return Ok(()),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Lost(why)) => {
                    debug!(%routing_key, generation = session.generation, %why, "publish lost; sending again after reconnect");
                    after = session.generation;
                }
            }
        }
    }

    fn route(&self, target: &Target<'_>) -> Result<(ShortString, ShortString), EventError> {
        let (exchange, key) = match target {
            Target::Now { event_type } => (&self.topology.exchange, (*event_type).to_owned()),
            Target::Later { event_type, millis } => {
                (&self.topology.waiting, wait_queue_name(event_type, *millis))
            }
            Target::Retry { queue } => (&self.topology.retry, (*queue).to_owned()),
        };
        Ok((
            ShortString::from(exchange.as_str()),
            short("the routing key", key)?,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn once(
        &self,
        session: &Session,
        target: &Target<'_>,
        exchange: &ShortString,
        routing_key: &ShortString,
        payload: &[u8],
        message_id: &str,
        deadline: Instant,
    ) -> Result<(), Failure> {
        if let Target::Later { event_type, millis } = target {
            self.ensure_wait_queue(session, event_type, *millis).await?;
        }
        let properties = BasicProperties::default()
            .with_content_type(CONTENT_TYPE.into())
            .with_content_encoding(CONTENT_ENCODING.into())
            .with_delivery_mode(2)
            .with_priority(0)
            .with_message_id(ShortString::try_new(message_id.to_owned()).unwrap_or_default());
        // mandatory = false: with no queue bound the event is dropped, as a
        // topic exchange does for lymph.
        let confirm = session
            .publish
            .basic_publish(
                exchange.clone(),
                routing_key.clone(),
                BasicPublishOptions::default(),
                payload,
                properties,
            )
            .await
            .map_err(|e| Failure::Lost(e.to_string()))?;
        match tokio::time::timeout_at(deadline, confirm).await {
            Err(_) => Err(Failure::Fatal(unavailable(
                "the broker did not confirm in time",
            ))),
            Ok(Err(e)) => Err(Failure::Lost(e.to_string())),
            Ok(Ok(Confirmation::Nack(_))) => {
                Err(Failure::Fatal(match self.topology.queue_limit() {
                    Some(limit) => EventError::QueueFull {
                        queue: format!("bound to {routing_key}"),
                        limit,
                    },
                    None => {
                        EventError::Backend(format!("rabbitmq refused the event ({routing_key})"))
                    }
                }))
            }
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Declares the wait queue once per connection, on its own channel (a
    /// 406 there must not take the shared publish channel down).
    async fn ensure_wait_queue(
        &self,
        session: &Session,
        event_type: &str,
        millis: u32,
    ) -> Result<(), Failure> {
        let name = wait_queue_name(event_type, millis);
        if session
            .wait_queues
            .lock()
            .is_ok_and(|known| known.contains(&name))
        {
            return Ok(());
        }
        let declared = async {
            let channel = session.connection.create_channel().await?;
            self.topology
                .declare_wait_queue(&channel, event_type, millis)
                .await?;
            let _ = channel.close(200, "declared".into()).await;
            Ok::<(), lapin::Error>(())
        }
        .await;
        match declared {
            Ok(()) => {
                if let Ok(mut known) = session.wait_queues.lock() {
                    known.insert(name);
                }
                Ok(())
            }
            Err(e) if session.connection.status().connected() => Err(Failure::Fatal(
                EventError::Backend(format!("cannot declare wait queue {name}: {e}")),
            )),
            Err(e) => Err(Failure::Lost(e.to_string())),
        }
    }
}
