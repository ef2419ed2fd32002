//! Wiring: builds the daemon's parts from the config and hands each the
//! handles it needs, registers the daemon's own `lymph` instance, serves the
//! API on a Unix listener, and stops in order: stop accepting → tell apps to
//! drain → unregister → finish in flight (requests and event deliveries) →
//! close app streams, the apps' last acks handed to the bus → close the
//! registry session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::api::Api;
use crate::attach::{Attacher, Registrar, SessionTable};
use crate::config::{Config, EventsConfig};
use crate::dispatch::{BUILTIN_VERSION, Dispatcher, Me};
use crate::emit::Emitter;
use crate::events::{EmbeddedBus, EventBus};
use crate::metrics::Metrics;
use crate::registry::{EmbeddedStore, Instance, Registry};
use crate::server::conn;
use crate::status::StatusBoard;
use crate::trace;

/// The running daemon's parts, held for the stop sequence.
pub struct Daemon {
    config: Arc<Config>,
    socket: PathBuf,
    me: Me,
    registry: Arc<dyn Registry>,
    dispatcher: Arc<Dispatcher>,
    attacher: Arc<Attacher>,
    web: Arc<crate::web::Gateway>,
    /// The API's handles, taken when it starts serving.
    api: Option<Api>,
    /// Cancelled when the daemon starts stopping.
    draining: CancellationToken,
    /// Cancelled once every app's session is closed: ends the deadline sweep.
    sessions_closed: CancellationToken,
    /// Every task the daemon spawns, so shutdown can wait for them.
    tasks: TaskTracker,
    /// The port of the daemon's own log records (`log.publish`).
    own_log: Option<crate::logs::PortHandle>,
    /// The `/metrics` port, bound, and what it serves; served from `run`.
    metrics: Option<(tokio::net::TcpListener, Arc<crate::metrics::prom::Exporter>)>,
}

impl Daemon {
    /// Builds the parts; connects to nothing yet.
    pub async fn build(config: Config, socket: PathBuf) -> anyhow::Result<Daemon> {
        let config = Arc::new(config);
        let fds = crate::fds::configure(config.runtime.fd_reserve);
        info!(
            open_file_limit = fds.limit(),
            public_port_fds = fds.total(),
            "file descriptors"
        );
        let fleet = crate::fleet::join(&config).await?;
        let registry: Arc<dyn Registry> = match &fleet {
            Some(fleet) => fleet.registry.clone(),
            None => Arc::new(EmbeddedStore::new().session()),
        };
        let remote = fleet.as_ref().map(|f| f.remote.clone());
        let metrics_listener = crate::metrics::endpoint::bind(&config.metrics).await;
        let metrics_listen = metrics_listener
            .as_ref()
            .and_then(crate::metrics::endpoint::address);
        let identity = trace::new_id();
        let bus: Arc<dyn EventBus> = match &config.events {
            EventsConfig::Embedded { queue_limit } => Arc::new(EmbeddedBus::spawn(*queue_limit)),
            EventsConfig::Amqp(amqp) => {
                crate::fleet::connect_bus(amqp, &identity, config.rpc.max_body_bytes).await?
            }
        };
        let me = Me {
            identity,
            endpoint: match &remote {
                Some(remote) => remote.endpoint().to_owned(),
                None => format!("unix://{}", socket.display()),
            },
        };
        let ip = remote.as_ref().map(|_| config.rpc.ip.clone());
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok());
        let tasks = TaskTracker::new();
        let draining = CancellationToken::new();
        let sessions = Arc::new(SessionTable::default());
        let metrics = Arc::new(Metrics::new(config.metrics.listen.is_some()));
        let spans = crate::spans::Spans::start(&config.tracing, "lymphd");
        let gauges = Arc::new(crate::gauges::DaemonGauges {
            sessions: sessions.clone(),
            metrics: metrics.clone(),
            registry: registry.clone(),
            bus: bus.clone(),
            remote: remote.clone(),
            spans: spans.clone(),
        });
        let exporter = Arc::new(crate::metrics::prom::Exporter::new(metrics.clone(), gauges));
        let dispatcher = Arc::new(
            Dispatcher::new(
                registry.clone(),
                sessions.clone(),
                me.clone(),
                config.rpc.clone(),
                metrics.clone(),
                remote,
                tasks.clone(),
            )
            .with_spans(spans.clone()),
        );
        let own_log = crate::logs::open_port(&config, "the daemon").await;
        let web = Arc::new(
            crate::web::Gateway::new(
                config.web.clone(),
                config.rpc.max_body_bytes,
                tasks.clone(),
                metrics.clone(),
            )
            .with_spans(spans.clone()),
        );
        let emitter = Arc::new(
            Emitter::new(
                bus.clone(),
                config.rpc.max_body_bytes,
                draining.clone(),
                metrics.clone(),
            )
            .with_spans(spans.clone()),
        );
        let registrar = Registrar::new(
            registry.clone(),
            me.endpoint.clone(),
            ip.clone(),
            hostname.clone(),
            &config.web.ip,
        );
        let attacher = Arc::new(Attacher::new(crate::attach::Parts {
            config: config.clone(),
            sessions: sessions.clone(),
            dispatcher: dispatcher.clone(),
            emitter: emitter.clone(),
            bus: bus.clone(),
            web: web.clone(),
            registrar,
            metrics: metrics.clone(),
            tasks: tasks.clone(),
            draining: draining.clone(),
            endpoint: me.endpoint.clone(),
        }));
        let status = Arc::new(StatusBoard {
            socket: socket.display().to_string(),
            endpoint: me.endpoint.clone(),
            identity: me.identity.clone(),
            registry: config.registry_name(),
            events: config.events_name(),
            started: Instant::now(),
            attacher: attacher.clone(),
            metrics,
            metrics_listen,
            default_timeout: config.rpc.default_timeout,
        });
        let api = Api {
            apps: config.apps.clone(),
            attacher: attacher.clone(),
            dispatcher: dispatcher.clone(),
            emitter,
            registry: registry.clone(),
            bus,
            status,
            endpoint: me.endpoint.clone(),
            draining: draining.clone(),
            tasks: tasks.clone(),
        };
        let sessions_closed = CancellationToken::new();
        tasks.spawn(sessions.run_sweep(sessions_closed.clone()));
        if let Some(fleet) = fleet {
            crate::fleet::serve_incoming(
                fleet.incoming,
                dispatcher.clone(),
                &tasks,
                draining.clone(),
            );
        }
        let own = own_instance(&me, ip, hostname, own_log.as_ref());
        registry.register(own).await?;
        Ok(Daemon {
            config,
            socket,
            me,
            registry,
            dispatcher,
            attacher,
            web,
            api: Some(api),
            draining,
            sessions_closed,
            tasks,
            own_log,
            metrics: metrics_listener.map(|listener| (listener, exporter)),
        })
    }

    /// Serves until `shutdown` resolves, then drains and stops.
    pub async fn run(
        mut self,
        listener: UnixListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        crate::logs::set_own_sink(self.own_log.as_ref().map(|port| port.sink.clone()));
        info!(socket = %self.socket.display(), identity = %self.me.identity,
              registry = self.registry.backend(), version = crate::VERSION, "lymphd ready");
        // Stop accepting new connections as soon as draining starts.
        let limits = conn::Limits {
            max_connections: self.config.apps.max_connections,
            hello_timeout: self.config.apps.hello_timeout,
        };
        let incoming =
            conn::incoming(listener, limits).take_until(self.draining.clone().cancelled_owned());
        let served = CancellationToken::new();
        let api = self
            .api
            .take()
            .ok_or_else(|| anyhow::anyhow!("the daemon runs once"))?;
        let server = conn::server_builder()
            .add_service(api.server())
            .serve_with_incoming_shutdown(incoming, served.clone().cancelled_owned());
        let server = tokio::spawn(server);
        if let Some((listener, exporter)) = self.metrics.take() {
            crate::metrics::endpoint::serve(
                listener,
                exporter,
                &self.config.metrics,
                self.sessions_closed.clone(),
                &self.tasks,
            );
        }

        shutdown.await;
        self.drain().await;
        served.cancel();
        // Open connections end once their streams have; don't wait forever.
        match tokio::time::timeout(Duration::from_secs(2), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(error = %e, "api server stopped with an error"),
            Ok(Err(e)) => warn!(error = %e, "api server task failed"),
            Err(_) => warn!("api connections still open after shutdown; exiting anyway"),
        }
        self.registry.close().await;
        info!("lymphd stopped");
        crate::logs::set_own_sink(None);
        Ok(())
    }

    async fn drain(&self) {
        let grace = self.config.shutdown.grace_period;
        info!(grace = %humantime::format_duration(grace), "stopping: draining apps");
        self.draining.cancel();
        // Stop accepting HTTP too; requests already in flight finish.
        self.web.close_all();
        self.dispatcher.start_draining();
        self.attacher.start_drain(grace).await;
        let _ = self
            .registry
            .unregister("lymph", &own_instance_id(&self.me))
            .await;
        self.attacher
            .finish_drain(tokio::time::Instant::now() + grace)
            .await;
        self.sessions_closed.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(1), self.tasks.wait())
            .await
            .is_err()
        {
            warn!("some tasks did not finish in time");
        }
    }
}

fn own_instance_id(me: &Me) -> String {
    // Stable per daemon: derived from its identity, distinct from app ids.
    format!("{}-lymph", me.identity)
}

/// The daemon's own instance of the built-in `lymph` interface.
fn own_instance(
    me: &Me,
    ip: Option<String>,
    hostname: Option<String>,
    own_log: Option<&crate::logs::PortHandle>,
) -> Instance {
    Instance {
        service: "lymph".to_owned(),
        id: own_instance_id(me),
        identity: me.identity.clone(),
        endpoint: me.endpoint.clone(),
        version: Some(BUILTIN_VERSION.to_owned()),
        ip,
        hostname,
        log_endpoint: own_log.map(|port| port.endpoint.clone()),
        app_name: Some("lymphd".to_owned()),
    }
}
