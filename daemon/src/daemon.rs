//! Wiring: builds the daemon's parts from the config, registers its own
//! `lymph` instance, serves the API on a Unix listener, and stops in order:
//! stop accepting → tell apps to drain → unregister → finish in flight →
//! close app streams → close the registry session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lymph_proto::v1 as pb;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::api::Api;
use crate::attach::{AppSession, SessionTable};
use crate::config::{Config, EventsConfig};
use crate::dispatch::{BUILTIN_VERSION, Dispatcher, Me};
use crate::events::{EmbeddedBus, EventBus};
use crate::metrics::Metrics;
use crate::registry::{EmbeddedStore, HttpInstance, Instance, Registry, RegistryError};
use crate::server::conn;
use crate::trace;

/// What every part of the running daemon shares.
pub struct State {
    pub config: Config,
    pub socket: PathBuf,
    pub me: Me,
    pub started: Instant,
    pub registry: Arc<dyn Registry>,
    pub bus: Arc<dyn EventBus>,
    pub sessions: Arc<SessionTable>,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
    /// The HTTP gateway: the ports of apps' web services.
    pub web: Arc<crate::web::Gateway>,
    /// Cancelled when the daemon starts stopping.
    pub draining: CancellationToken,
    /// Every task the daemon spawns, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Cancelled once every app's session is closed: ends the deadline sweep.
    sessions_closed: CancellationToken,
    hostname: Option<String>,
    /// Fleet mode: the address in the endpoint, registered as lymph's `ip`.
    ip: Option<String>,
    /// The port of the daemon's own log records (`log.publish`).
    own_log: Option<crate::logs::PortHandle>,
}

pub struct Daemon {
    state: Arc<State>,
}

impl Daemon {
    /// Builds the parts; connects to nothing yet.
    pub async fn build(config: Config, socket: PathBuf) -> anyhow::Result<Daemon> {
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
        let tasks = TaskTracker::new();
        let sessions = Arc::new(SessionTable::default());
        let metrics = Arc::new(Metrics::default());
        let dispatcher = Arc::new(Dispatcher::new(
            registry.clone(),
            sessions.clone(),
            me.clone(),
            config.rpc.clone(),
            metrics.clone(),
            remote,
            tasks.clone(),
        ));
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok());
        let own_log = crate::logs::open_port(&config, "the daemon").await;
        let web = Arc::new(crate::web::Gateway::new(
            config.web.clone(),
            config.rpc.max_body_bytes,
            tasks.clone(),
            metrics.clone(),
        ));
        let state = Arc::new(State {
            config,
            socket,
            me,
            started: Instant::now(),
            registry,
            bus,
            sessions,
            dispatcher,
            metrics,
            web,
            draining: CancellationToken::new(),
            tasks,
            sessions_closed: CancellationToken::new(),
            hostname,
            ip,
            own_log,
        });
        let sweep = state
            .sessions
            .clone()
            .run_sweep(state.sessions_closed.clone());
        state.tasks.spawn(sweep);
        if let Some(fleet) = fleet {
            crate::fleet::serve_incoming(
                fleet.incoming,
                state.dispatcher.clone(),
                &state.tasks,
                state.draining.clone(),
            );
        }
        state.registry.register(state.own_instance()).await?;
        Ok(Daemon { state })
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains and stops.
    pub async fn run(
        self,
        listener: UnixListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let state = self.state;
        crate::logs::set_own_sink(state.own_log.as_ref().map(|port| port.sink.clone()));
        info!(socket = %state.socket.display(), identity = %state.me.identity,
              registry = state.registry.backend(), version = crate::VERSION, "lymphd ready");
        // Stop accepting new connections as soon as draining starts.
        let limits = conn::Limits {
            max_connections: state.config.apps.max_connections,
            hello_timeout: state.config.apps.hello_timeout,
        };
        let incoming =
            conn::incoming(listener, limits).take_until(state.draining.clone().cancelled_owned());
        let served = CancellationToken::new();
        let server = conn::server_builder()
            .add_service(Api::server(state.clone()))
            .serve_with_incoming_shutdown(incoming, served.clone().cancelled_owned());
        let server = tokio::spawn(server);

        shutdown.await;
        drain(&state).await;
        served.cancel();
        // Open connections end once their streams have; don't wait forever.
        match tokio::time::timeout(Duration::from_secs(2), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(error = %e, "api server stopped with an error"),
            Ok(Err(e)) => warn!(error = %e, "api server task failed"),
            Err(_) => warn!("api connections still open after shutdown; exiting anyway"),
        }
        state.registry.close().await;
        info!("lymphd stopped");
        crate::logs::set_own_sink(None);
        Ok(())
    }
}

async fn drain(state: &Arc<State>) {
    let grace = state.config.shutdown.grace_period;
    info!(grace = %humantime::format_duration(grace), "stopping: draining apps");
    state.draining.cancel();
    // Stop accepting HTTP too; requests already in flight finish.
    state.web.close_all();
    state.dispatcher.start_draining();
    let sessions = state.sessions.all();
    for session in &sessions {
        session.stop_consuming.cancel();
        session.push(Out::Drain(pb::Drain {
            grace_ms: u32::try_from(grace.as_millis()).unwrap_or(u32::MAX),
        }));
        state.unregister_app(session).await;
    }
    let _ = state
        .registry
        .unregister("lymph", &own_instance_id(&state.me))
        .await;
    let deadline = tokio::time::Instant::now() + grace;
    while state.sessions.in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = state.sessions.in_flight();
    if left > 0 {
        warn!(
            in_flight = left,
            "grace period over; failing what is still in flight"
        );
    }
    for session in &sessions {
        session.close();
    }
    state.sessions_closed.cancel();
    state.tasks.close();
    if tokio::time::timeout(Duration::from_secs(1), state.tasks.wait())
        .await
        .is_err()
    {
        warn!("some tasks did not finish in time");
    }
}

fn own_instance_id(me: &Me) -> String {
    // Stable per daemon: derived from its identity, distinct from app ids.
    format!("{}-lymph", me.identity)
}

impl State {
    fn own_instance(&self) -> Instance {
        Instance {
            service: "lymph".to_owned(),
            id: own_instance_id(&self.me),
            identity: self.me.identity.clone(),
            endpoint: self.me.endpoint.clone(),
            version: Some(BUILTIN_VERSION.to_owned()),
            ip: self.ip.clone(),
            hostname: self.hostname.clone(),
            log_endpoint: self.own_log.as_ref().map(|port| port.endpoint.clone()),
            app_name: Some("lymphd".to_owned()),
        }
    }

    /// Registers one instance per interface of a ready app.
    pub async fn register_app(&self, session: &AppSession) -> Result<(), RegistryError> {
        for iface in &session.spec.interfaces {
            let instance = Instance {
                service: iface.name.clone(),
                id: trace::new_id(),
                identity: session.identity.clone(),
                endpoint: self.me.endpoint.clone(),
                version: iface.version.clone(),
                ip: self.ip.clone(),
                hostname: self.hostname.clone(),
                log_endpoint: session.log.get().map(|port| port.endpoint.clone()),
                app_name: Some(session.spec.app_name.clone()),
            };
            let key = (instance.service.clone(), instance.id.clone());
            self.registry.register(instance).await?;
            session
                .registrations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(key.clone());
            if session.spec.http_port != 0 && !iface.routes.is_empty() {
                self.registry
                    .register_http(HttpInstance {
                        service: key.0.clone(),
                        id: key.1.clone(),
                        identity: session.identity.clone(),
                        ip: Some(self.web_ip()),
                        hostname: self.hostname.clone(),
                        http_port: session.spec.http_port,
                    })
                    .await?;
                session
                    .http_registrations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(key);
            }
        }
        Ok(())
    }

    /// The address web clients reach: `web.ip`, or the fleet address when
    /// the gateway listens on every interface.
    fn web_ip(&self) -> String {
        let unspecified = self
            .config
            .web
            .ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        match &self.ip {
            Some(fleet_ip) if unspecified => fleet_ip.clone(),
            _ => self.config.web.ip.clone(),
        }
    }

    /// Removes every registration of an app. Idempotent.
    pub async fn unregister_app(&self, session: &AppSession) {
        let keys: Vec<(String, String)> = std::mem::take(
            &mut *session
                .registrations
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for (service, id) in keys {
            if let Err(e) = self.registry.unregister(&service, &id).await {
                warn!(%service, %id, error = %e, "could not unregister an instance");
            }
        }
        let http_keys: Vec<(String, String)> = std::mem::take(
            &mut *session
                .http_registrations
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for (service, id) in http_keys {
            if let Err(e) = self.registry.unregister_http(&service, &id).await {
                warn!(%service, %id, error = %e, "could not unregister a web instance");
            }
        }
    }

    pub fn status(&self) -> pb::StatusReply {
        let (calls_total, calls_failed, calls_in_flight) = self.metrics.rpc_totals();
        let apps = self
            .sessions
            .all()
            .iter()
            .map(|s| pb::AppStatus {
                identity: s.identity.clone(),
                app_name: s.spec.app_name.clone(),
                interfaces: s.spec.interfaces.iter().map(|i| i.name.clone()).collect(),
                pid: s.spec.pid,
                sdk: s.spec.sdk.clone(),
                ready: s.is_ready(),
                in_flight: s.in_flight(),
                max_concurrency: s.limits.max_concurrency,
                handled: s.handled(),
                subscriptions: crate::attach::consume::status(s),
                peer: s.peer.as_ref().map(|peer| pb::PeerCredentials {
                    uid: peer.uid,
                    gid: peer.gid,
                    pid: peer.pid.unwrap_or(0),
                }),
            })
            .collect();
        pb::StatusReply {
            version: crate::VERSION.to_owned(),
            socket: self.socket.display().to_string(),
            endpoint: self.me.endpoint.clone(),
            identity: self.me.identity.clone(),
            registry: self.config.registry_name().to_owned(),
            events: self.config.events_name().to_owned(),
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            apps,
            calls_total,
            calls_failed,
            calls_in_flight,
        }
    }
}
