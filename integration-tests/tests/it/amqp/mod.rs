//! `AmqpBus` against the real RabbitMQ (started by `scripts/services`): the
//! whole `EventBus` conformance suite in both modes, each test on a fresh
//! virtual host; a broker restart under a stream of durable emits; a
//! Python-style (bin-keyed) envelope published raw; what we publish, raw.

mod restart;
mod wire;

use std::ops::Deref;
use std::time::Duration;

use integration_tests::names::unique;
use integration_tests::rabbitmq;
use integration_tests::services::RABBITMQ;
use lapin::{Connection, ConnectionProperties};
use lymphd::conformance::events::{AmqpBus, AmqpConfig, AmqpMode, conformance};

use crate::lymph_peer::require_rabbitmq_answers;

/// Generous: one conformance test against the broker takes a few seconds.
const TEST_DEADLINE: Duration = Duration::from_secs(120);
/// The per-queue bound of durable mode's `full_queue_refuses_emit`.
const BOUND: usize = 5;

/// A RabbitMQ virtual host of one test's own (the shared harness's, guest
/// may use it), deleted on drop, with the buses and raw connections the
/// tests make on it. The abuse suite's broker tests use it too.
pub(crate) struct Vhost(rabbitmq::Vhost);

impl Deref for Vhost {
    type Target = rabbitmq::Vhost;

    fn deref(&self) -> &rabbitmq::Vhost {
        &self.0
    }
}

impl Vhost {
    // The broker-restart test runs on a private broker node, so tests on the
    // shared broker never see it go away.
    pub(crate) async fn new() -> Vhost {
        require_rabbitmq_answers();
        let vhost = rabbitmq::Vhost::create(unique("lymphd-amqp-it-"))
            .unwrap_or_else(|e| panic!("{e} — is RabbitMQ running? run scripts/services"));
        Vhost(vhost)
    }

    /// No credentials in the URL: they go in the config.
    fn bare_url(&self) -> String {
        format!("amqp://{RABBITMQ}/{}", self.name)
    }

    fn config(&self, mode: AmqpMode) -> AmqpConfig {
        let mut config = AmqpConfig::new(self.bare_url());
        config.username = Some("guest".to_owned());
        config.password = Some("guest".to_owned());
        config.mode = mode;
        config
    }

    async fn bus(&self, mode: AmqpMode) -> AmqpBus {
        self.bus_with(self.config(mode)).await
    }

    async fn bus_with(&self, config: AmqpConfig) -> AmqpBus {
        tokio::time::timeout(Duration::from_secs(15), AmqpBus::connect(config))
            .await
            .expect("connect in time")
            .expect("connect to rabbitmq (run scripts/services)")
    }

    pub(crate) async fn raw(&self) -> Connection {
        tokio::time::timeout(
            Duration::from_secs(15),
            Connection::connect(&self.url(), ConnectionProperties::default()),
        )
        .await
        .expect("raw connect in time")
        .expect("raw connect")
    }
}

macro_rules! conformance_tests {
    ($($name:ident: $mode:expr, $suite:path;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let vhost = Vhost::new().await;
            let bus = vhost.bus($mode).await;
            tokio::time::timeout(TEST_DEADLINE, $suite(&bus)).await.expect("suite test in time");
        }
    )*};
}

conformance_tests! {
    lymph_once_per_service: AmqpMode::Lymph, conformance::once_per_service;
    lymph_broadcast: AmqpMode::Lymph, conformance::broadcast_reaches_every_instance;
    lymph_delay: AmqpMode::Lymph, conformance::delay_is_respected;
    lymph_overlong_delay: AmqpMode::Lymph, conformance::overlong_delay_is_refused;
    lymph_retry_then_drop: AmqpMode::Lymph, conformance::fail_retries_then_drops;
    lymph_redelivery: AmqpMode::Lymph, conformance::unacked_go_to_another_consumer;
    lymph_no_subscriber: AmqpMode::Lymph, conformance::no_subscriber_drops;
    lymph_prefetch: AmqpMode::Lymph, conformance::prefetch_bounds_unsettled;
    durable_once_per_service: AmqpMode::Durable, conformance::once_per_service;
    durable_broadcast: AmqpMode::Durable, conformance::broadcast_reaches_every_instance;
    durable_delay: AmqpMode::Durable, conformance::delay_is_respected;
    durable_retry_then_drop: AmqpMode::Durable, conformance::fail_retries_then_drops;
    durable_redelivery: AmqpMode::Durable, conformance::unacked_go_to_another_consumer;
    durable_no_subscriber: AmqpMode::Durable, conformance::no_subscriber_drops;
}

/// The bound runs in durable mode only: it is `x-max-length` with
/// `x-overflow: reject-publish` (the confirm's NACK becomes `QueueFull`), and
/// lymph mode must declare exactly lymph's queue arguments, which have no
/// bound (lymph's queues are unbounded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_bound() {
    let vhost = Vhost::new().await;
    let mut config = vhost.config(AmqpMode::Durable);
    config.max_queue_length = Some(BOUND);
    let bus = vhost.bus_with(config).await;
    tokio::time::timeout(
        TEST_DEADLINE,
        conformance::full_queue_refuses_emit(&bus, BOUND),
    )
    .await
    .expect("suite test in time");
}
