//! The broker objects (`docs/wire.md` §4.2, §4.3, §4.7): exchanges, consumer queues and
//! their bindings, wait queues for delayed events, with the flags of each
//! mode. Redeclaring with other flags makes RabbitMQ close the channel (406),
//! so callers declare on a channel they can afford to lose.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use super::config::{AmqpConfig, AmqpMode};
use crate::events::{EventError, Subscription};

#[derive(Debug, Clone)]
pub(crate) struct Topology {
    pub exchange: String,
    pub waiting: String,
    pub retry: String,
    mode: AmqpMode,
    max_queue_length: Option<usize>,
    broadcast_expiry: Duration,
}

impl Topology {
    pub(crate) fn new(config: &AmqpConfig) -> Topology {
        Topology {
            exchange: config.exchange.clone(),
            waiting: format!("{}_waiting", config.exchange),
            retry: format!("{}_retry", config.exchange),
            mode: config.mode,
            max_queue_length: config.max_queue_length,
            broadcast_expiry: config.broadcast_expiry,
        }
    }

    /// The per-queue bound, when the broker enforces one.
    pub(crate) fn queue_limit(&self) -> Option<usize> {
        match self.mode {
            AmqpMode::Durable => self.max_queue_length,
            AmqpMode::Lymph => None,
        }
    }

    /// All three exchanges, durable, as every lymph container declares them.
    pub(crate) async fn declare_exchanges(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let exchanges = [
            (&self.exchange, ExchangeKind::Topic),
            (&self.waiting, ExchangeKind::Direct),
            (&self.retry, ExchangeKind::Direct),
        ];
        for (name, kind) in exchanges {
            let name = ShortString::from(name.as_str());
            channel
                .exchange_declare(name, kind, durable, FieldTable::default())
                .await?;
        }
        Ok(())
    }

    /// A subscription's queue, bound to the topic exchange by its event type
    /// (several subscriptions sharing the queue each add their type) and to
    /// the retry exchange by its own name.
    pub(crate) async fn declare_consumer_queue(
        &self,
        channel: &Channel,
        sub: &Subscription,
    ) -> Result<(), lapin::Error> {
        let name = ShortString::from(sub.queue_name());
        let mut args = FieldTable::default();
        let options = match self.mode {
            // Exactly lymph's flags: Python instances declare the same queue.
            AmqpMode::Lymph => {
                args.insert("x-ha-policy".into(), long_string("all"));
                QueueDeclareOptions {
                    auto_delete: sub.broadcast,
                    ..QueueDeclareOptions::default()
                }
            }
            // Durable, broadcast ones too (auto-delete with their consumer, so
            // they survive a broker restart while their daemon lives, and
            // expire if it died meanwhile).
            AmqpMode::Durable => {
                if let Some(limit) = self.max_queue_length {
                    args.insert("x-max-length".into(), int(limit));
                    args.insert("x-overflow".into(), long_string("reject-publish"));
                }
                if sub.broadcast {
                    let expiry = self.broadcast_expiry.as_millis();
                    args.insert(
                        "x-expires".into(),
                        int(expiry.try_into().unwrap_or(usize::MAX)),
                    );
                }
                QueueDeclareOptions {
                    durable: true,
                    auto_delete: sub.broadcast,
                    ..QueueDeclareOptions::default()
                }
            }
        };
        channel.queue_declare(name.clone(), options, args).await?;
        let bind = |exchange: &str, key: ShortString| {
            channel.queue_bind(
                name.clone(),
                exchange.into(),
                key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
        };
        bind(&self.exchange, sub.event_type.as_str().into()).await?;
        bind(&self.retry, name.clone()).await?;
        Ok(())
    }

    /// The wait queue of one event type and delay, `<type>-wait_<ms>`, bound
    /// to the waiting exchange by its own name (lymph binds by `<type>`, so
    /// every delay of a type gets every delayed emit; we do not copy that).
    /// When the TTL expires RabbitMQ dead-letters the event into the topic
    /// exchange under its type.
    pub(crate) async fn declare_wait_queue(
        &self,
        channel: &Channel,
        event_type: &str,
        millis: u32,
    ) -> Result<(), lapin::Error> {
        let name = ShortString::from(wait_queue_name(event_type, millis));
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), long_string(&self.exchange));
        args.insert("x-dead-letter-routing-key".into(), long_string(event_type));
        // py-amqp sends small ints as signed 32-bit ('I'); same type, same args.
        args.insert("x-message-ttl".into(), AMQPValue::LongInt(millis as i32));
        let durable = self.mode == AmqpMode::Durable;
        if !durable {
            args.insert("x-ha-policy".into(), long_string("all"));
        }
        let options = QueueDeclareOptions {
            durable,
            ..QueueDeclareOptions::default()
        };
        channel.queue_declare(name.clone(), options, args).await?;
        channel
            .queue_bind(
                name.clone(),
                self.waiting.as_str().into(),
                name,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    }
}

pub(crate) fn wait_queue_name(event_type: &str, millis: u32) -> String {
    format!("{event_type}-wait_{millis}")
}

/// Queue names and routing keys are AMQP short strings (≤ 255 bytes).
pub(crate) fn short(what: &str, s: String) -> Result<ShortString, EventError> {
    if s.len() > 255 {
        let start: String = s.chars().take(40).collect();
        return Err(EventError::Invalid(format!(
            "{what} is longer than 255 bytes: {start}…"
        )));
    }
    Ok(ShortString::from(s))
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

fn int(n: usize) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX))
}
