//! `AmqpBus` against the real RabbitMQ (started by `scripts/services`): the
//! whole `EventBus` conformance suite in both modes, each test on a fresh
//! virtual host; a broker restart under a stream of durable emits; a
//! Python-style (bin-keyed) envelope published raw; what we publish, raw.

mod restart;
mod wire;

use std::process::Command;
use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};
use lymphd::events::{AmqpBus, AmqpConfig, AmqpMode, conformance};

use crate::harness::{run_bounded, text};
use crate::lymph_peer::{RABBITMQ, require_rabbitmq_answers};

/// Generous: one conformance test against the broker takes a few seconds.
const TEST_DEADLINE: Duration = Duration::from_secs(120);
/// The per-queue bound of durable mode's `full_queue_refuses_emit`.
const BOUND: usize = 5;

/// A RabbitMQ virtual host of one test's own (guest may use it), deleted on
/// drop. The abuse suite's broker tests use it too.
pub(crate) struct Vhost {
    pub(crate) name: String,
}

impl Vhost {
    // The broker-restart test runs on a private broker node, so tests on the
    // shared broker never see it go away.
    pub(crate) async fn new() -> Vhost {
        require_rabbitmq_answers();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "lymphd-amqp-it-{:x}{:x}",
            std::process::id(),
            nanos & 0xffff_ffff_ffff
        );
        ctl(&["add_vhost", &name]);
        let vhost = Vhost { name };
        ctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ]);
        vhost
    }

    /// No credentials in the URL: they go in the config.
    fn url(&self) -> String {
        format!("amqp://{RABBITMQ}/{}", self.name)
    }

    fn config(&self, mode: AmqpMode) -> AmqpConfig {
        let mut config = AmqpConfig::new(self.url());
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
        let url = format!("amqp://guest:guest@{RABBITMQ}/{}", self.name);
        tokio::time::timeout(
            Duration::from_secs(15),
            Connection::connect(&url, ConnectionProperties::default()),
        )
        .await
        .expect("raw connect in time")
        .expect("raw connect")
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        // Never panics (it may run while a test panics): bounded, result ignored.
        let Ok(mut child) = Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `rabbitmqctl`, panicking with the fix when it fails.
fn ctl(args: &[&str]) {
    let mut cmd = Command::new("rabbitmqctl");
    cmd.arg("-q").args(args);
    let out = run_bounded(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "`rabbitmqctl {}` failed ({}): {}{} — is RabbitMQ running? run scripts/services",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
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
