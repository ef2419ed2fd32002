//! Fleet mode: with a ZooKeeper registry the daemon joins the fleet — its
//! registry session, its ZeroMQ endpoint, and the task that serves requests
//! arriving from other hosts. Embedded mode needs none of it.

use std::sync::Arc;

#[cfg(any(feature = "zookeeper", feature = "amqp"))]
use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, RegistryConfig};
use crate::dispatch::Dispatcher;
use crate::registry::Registry;
use crate::rpc::{IncomingRequest, Remote};

/// The parts of a daemon in a fleet.
pub struct Fleet {
    pub registry: Arc<dyn Registry>,
    pub remote: Arc<dyn Remote>,
    pub incoming: mpsc::Receiver<IncomingRequest>,
}

/// Joins the fleet the config names; `None` for the embedded registry.
pub async fn join(config: &Config) -> anyhow::Result<Option<Fleet>> {
    let RegistryConfig::Zookeeper(zk) = &config.registry else {
        return Ok(None);
    };
    let (remote, incoming) = start_transport(config).await?;
    let registry = connect_registry(zk).await?;
    Ok(Some(Fleet {
        registry,
        remote,
        incoming,
    }))
}

#[cfg(feature = "zeromq")]
async fn start_transport(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Remote>, mpsc::Receiver<IncomingRequest>)> {
    let rpc = &config.rpc;
    let transport = crate::rpc::TransportConfig {
        ip: rpc.ip.clone(),
        port: rpc.port,
        connect_timeout: rpc.connect_timeout,
        heartbeat_interval: rpc.heartbeat_interval,
        unresponsive_after: rpc.unresponsive_after,
        max_frame_bytes: rpc.max_frame_bytes,
        max_message_bytes: rpc.max_message_bytes,
        incoming_queue: rpc.incoming_queue,
        peer_queue_bytes: rpc.peer_queue_bytes,
        peer_write_timeout: rpc.peer_write_timeout,
        idle_timeout: rpc.idle_timeout,
        max_connections: rpc.max_connections,
        allowed_peers: rpc.allowed_peers.clone(),
    };
    crate::rpc::start(transport)
        .await
        .context("cannot start the ZeroMQ endpoint (rpc.ip, rpc.port)")
}

#[cfg(not(feature = "zeromq"))]
async fn start_transport(
    _config: &Config,
) -> anyhow::Result<(Arc<dyn Remote>, mpsc::Receiver<IncomingRequest>)> {
    anyhow::bail!("this lymphd was built without the zeromq feature: fleet mode is unavailable")
}

#[cfg(feature = "zookeeper")]
async fn connect_registry(
    zk: &crate::config::ZookeeperSettings,
) -> anyhow::Result<Arc<dyn Registry>> {
    let config = crate::registry::ZookeeperConfig {
        hosts: zk.hosts.clone(),
        session_timeout: zk.session_timeout,
        connect_timeout: zk.connect_timeout,
    };
    // Retries with backoff while ZooKeeper is unreachable, logging each attempt.
    let registry = crate::registry::ZookeeperRegistry::connect_with_retry(config)
        .await
        .with_context(|| format!("cannot join the fleet through zookeeper at {}", zk.hosts))?;
    Ok(Arc::new(registry))
}

#[cfg(not(feature = "zookeeper"))]
async fn connect_registry(
    _zk: &crate::config::ZookeeperSettings,
) -> anyhow::Result<Arc<dyn Registry>> {
    anyhow::bail!("this lymphd was built without the zookeeper feature: fleet mode is unavailable")
}

/// Connects the RabbitMQ event bus, retrying with backoff while the broker is down.
#[cfg(feature = "amqp")]
pub async fn connect_bus(
    amqp: &crate::config::AmqpSettings,
    identity: &str,
    max_body_bytes: usize,
) -> anyhow::Result<Arc<dyn crate::events::EventBus>> {
    use crate::config::AmqpModeSetting;
    use crate::events::{AmqpBus, AmqpConfig, AmqpMode};

    let mut config = AmqpConfig::new(amqp.url.clone());
    config.exchange = amqp.exchange.clone();
    config.mode = match amqp.mode {
        AmqpModeSetting::Lymph => AmqpMode::Lymph,
        AmqpModeSetting::Durable => AmqpMode::Durable,
    };
    config.identity = identity.to_owned();
    config.confirm_window = amqp.confirm_window;
    config.connect_timeout = amqp.connect_timeout;
    config.max_body_bytes = max_body_bytes;
    let (username, password) = credentials(amqp)?;
    config.username = username;
    config.password = password;
    let url = config.redacted_url();
    let bus = AmqpBus::connect_with_retry(config)
        .await
        .with_context(|| format!("cannot connect the event bus to rabbitmq at {url}"))?;
    Ok(Arc::new(bus))
}

/// RabbitMQ credentials from the environment, else the credentials file,
/// else none (the URL's, or RabbitMQ's guest).
#[cfg(feature = "amqp")]
fn credentials(
    amqp: &crate::config::AmqpSettings,
) -> anyhow::Result<(Option<String>, Option<String>)> {
    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    if let Some(username) = env("LYMPHD_AMQP_USERNAME") {
        return Ok((Some(username), env("LYMPHD_AMQP_PASSWORD")));
    }
    let Some(path) = &amqp.credentials_file else {
        return Ok((None, None));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read events.credentials_file {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default().trim();
    let Some((username, password)) = line.split_once(':') else {
        anyhow::bail!(
            "events.credentials_file {} must hold username:password on its first line",
            path.display()
        );
    };
    Ok((Some(username.to_owned()), Some(password.to_owned())))
}

#[cfg(not(feature = "amqp"))]
pub async fn connect_bus(
    _amqp: &crate::config::AmqpSettings,
    _identity: &str,
    _max_body_bytes: usize,
) -> anyhow::Result<Arc<dyn crate::events::EventBus>> {
    anyhow::bail!(
        "this lymphd was built without the amqp feature: events.backend amqp is unavailable"
    )
}

/// Serves requests from other hosts in one task: each is routed and handed
/// to its app without waiting (the answer goes out from the app's stream, or
/// from the deadline sweep of `attach`). The transport's bounded queue (and
/// its NACK when full) is the backpressure.
///
/// When `draining` fires the task stops taking requests (the transport then
/// NACKs new ones as shutting down; those already queued are answered so)
/// and ends, so an idle daemon stops at once.
pub fn serve_incoming(
    mut incoming: mpsc::Receiver<IncomingRequest>,
    dispatcher: Arc<Dispatcher>,
    tasks: &TaskTracker,
    draining: CancellationToken,
) {
    tasks.spawn(async move {
        loop {
            tokio::select! {
                request = incoming.recv() => match request {
                    Some(request) => dispatcher.serve_incoming(request),
                    // The transport is gone: nothing more can arrive.
                    None => return,
                },
                () = draining.cancelled() => break,
            }
        }
        dispatcher.start_draining();
        incoming.close();
        // Bounded: the queue is closed, so only what it held comes out.
        while let Some(request) = incoming.recv().await {
            dispatcher.serve_incoming(request);
        }
    });
}
