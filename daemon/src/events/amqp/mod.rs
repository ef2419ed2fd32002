//! `AmqpBus`: the `EventBus` on RabbitMQ, in lymph's topology and envelope
//! (`docs/wire.md` §4), so Python lymph services and lymphd-hosted ones notify
//! each other. Parts: `config`, `link` (the connection owner and its
//! reconnects), `topology` (what is declared, per mode), `publish` (confirms
//! window, delays, retries), `consume` (attaching, deliveries and what is
//! refused), `settle` (acks, fails and lymph's retries), `envelope`
//! (the pure codec). Knows nothing of apps or the API.

mod config;
mod consume;
pub(crate) mod envelope;
#[cfg(test)]
mod envelope_props;
mod link;
mod publish;
mod settle;
mod topology;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{info, warn};

pub use config::{AmqpConfig, AmqpMode};

use super::{Consumer, Event, EventBus, EventError, Subscription};
use consume::Consuming;
use link::{BACKOFF, Link};
use publish::{Publisher, Target};
use topology::{Topology, short};

/// A cheap-to-clone handle; the connection lives while any handle or
/// consumer does.
#[derive(Clone)]
pub struct AmqpBus {
    publisher: Publisher,
    consuming: Consuming,
    config: Arc<AmqpConfig>,
}

impl AmqpBus {
    /// One connection attempt (bounded by `connect_timeout`); later losses
    /// are repaired in the background.
    pub async fn connect(config: AmqpConfig) -> Result<AmqpBus, EventError> {
        config.validate()?;
        if config.mode == AmqpMode::Lymph && config.max_queue_length.is_some() {
            warn!(url = %config.redacted_url(),
                  "max_queue_length is ignored in lymph mode: queue arguments must match lymph's");
        }
        let config = Arc::new(config);
        let topology = Arc::new(Topology::new(&config));
        let link = Link::connect(config.clone(), topology.clone()).await?;
        info!(url = %config.redacted_url(), mode = ?config.mode, exchange = %config.exchange,
              "connected to rabbitmq");
        let publisher = Publisher::new(
            link.clone(),
            topology.clone(),
            config.confirm_window,
            config.emit_timeout,
        );
        let consuming = Consuming {
            link,
            topology,
            publisher: publisher.clone(),
            timeout: config.emit_timeout,
            max_body_bytes: config.max_body_bytes,
        };
        Ok(AmqpBus {
            publisher,
            consuming,
            config,
        })
    }

    /// `connect`, again and again with backoff (200 ms doubling to 5 s) while
    /// the broker is unreachable; fails at once only on a bad config.
    pub async fn connect_with_retry(config: AmqpConfig) -> Result<AmqpBus, EventError> {
        config.validate()?;
        let mut backoff = BACKOFF;
        let mut attempt = 1u32;
        loop {
            match AmqpBus::connect(config.clone()).await {
                Ok(bus) => return Ok(bus),
                Err(error @ EventError::Invalid(_)) => return Err(error),
                Err(error) => {
                    let delay = backoff.next_delay();
                    warn!(attempt, %error, retry_in = ?delay, "rabbitmq not reachable yet");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    #[cfg(feature = "conformance")]
    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }
}

#[async_trait]
impl EventBus for AmqpBus {
    async fn emit(&self, event: Event, delay: Duration) -> Result<(), EventError> {
        if event.event_type.is_empty() {
            return Err(EventError::Invalid("the event type is empty".to_owned()));
        }
        short("the event type", event.event_type.clone())?;
        if !envelope::is_one_value(&event.body) {
            return Err(EventError::Invalid(
                "the event body is not one msgpack value".to_owned(),
            ));
        }
        let payload = envelope::encode(&event, &self.config.identity, None, &[]);
        let target = if delay.is_zero() {
            Target::Now {
                event_type: &event.event_type,
            }
        } else {
            // x-message-ttl is a signed 32-bit number of milliseconds (MAX_DELAY).
            crate::events::check_delay(delay)?;
            let millis = u32::try_from(delay.as_millis().max(1))
                .map_err(|_| EventError::Invalid(format!("the delay {delay:?} is too long")))?;
            Target::Later {
                event_type: &event.event_type,
                millis,
            }
        };
        self.publisher.publish(target, &payload, &event.id).await
    }

    async fn consume(&self, subscription: Subscription) -> Result<Consumer, EventError> {
        self.consuming.start(subscription).await
    }

    fn connected(&self) -> bool {
        self.consuming.link.is_up()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_fail_at_once_and_name_the_url_without_the_password() {
        let mut config = AmqpConfig::new("amqp://me:s3cret@127.0.0.1:1/vh");
        config.connect_timeout = Duration::from_secs(2);
        let Err(error) = AmqpBus::connect(config).await else {
            panic!("nothing listens on port 1");
        };
        let text = error.to_string();
        assert!(text.contains("amqp://me@127.0.0.1:1/vh"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        let invalid = AmqpConfig::new("::not a url");
        assert!(AmqpBus::connect_with_retry(invalid).await.is_err());
    }
}
