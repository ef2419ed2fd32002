//! The whole life of an attached app: handshake (`handshake`), registration
//! (`register`), serving its stream (`stream`, `outgoing`, `consume`), drain
//! and detach. Each app's session holds its work in flight (one table for
//! RPC, HTTP and deliveries, one deadline sweep for all). The API hands
//! `Attach` streams to the `Attacher`; the dispatcher and the gateway reach
//! sessions only through the `apps` seam.

mod budget;
pub(crate) mod consume;
mod handshake;
mod in_flight;
mod outgoing;
mod register;
mod session;
mod stream;
mod table;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use lymph_proto::v1 as pb;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Status, Streaming};
use tracing::warn;

pub use register::Registrar;
use session::{AppSession, Outbox, SessionLimits};
pub use table::SessionTable;

use crate::Config;
use crate::dispatch::Dispatcher;
use crate::emit::Emitter;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::server::conn::LocalPeer;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;
use crate::web::Gateway;

/// The daemon's half of an `Attach` stream.
pub type DaemonStream =
    Pin<Box<dyn Stream<Item = Result<pb::DaemonMessage, Status>> + Send + 'static>>;

static REFUSED: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// How long a drain waits, after closing the sessions, for the event
/// consumers to hand the apps' last acks to the bus (a broker round trip).
const FLUSH: Duration = Duration::from_secs(2);

/// Owns attached apps from `Hello` to detach, with the handles that takes.
pub struct Attacher {
    config: Arc<Config>,
    sessions: Arc<SessionTable>,
    dispatcher: Arc<Dispatcher>,
    emitter: Arc<Emitter>,
    bus: Arc<dyn EventBus>,
    web: Arc<Gateway>,
    registrar: Registrar,
    metrics: Arc<Metrics>,
    tasks: TaskTracker,
    /// Cancelled when the daemon starts stopping: no new apps.
    draining: CancellationToken,
    /// The daemon's endpoint, told to apps in `Welcome`.
    endpoint: String,
    /// One per open `Attach` stream: at most `apps.max_connections` at once,
    /// however they are spread over connections.
    slots: Arc<Semaphore>,
}

/// What the `Attacher` is built from.
pub struct Parts {
    pub config: Arc<Config>,
    pub sessions: Arc<SessionTable>,
    pub dispatcher: Arc<Dispatcher>,
    pub emitter: Arc<Emitter>,
    pub bus: Arc<dyn EventBus>,
    pub web: Arc<Gateway>,
    pub registrar: Registrar,
    pub metrics: Arc<Metrics>,
    pub tasks: TaskTracker,
    pub draining: CancellationToken,
    pub endpoint: String,
}

impl Attacher {
    pub fn new(parts: Parts) -> Attacher {
        let slots = Arc::new(Semaphore::new(parts.config.apps.max_connections));
        Attacher {
            config: parts.config,
            sessions: parts.sessions,
            dispatcher: parts.dispatcher,
            emitter: parts.emitter,
            bus: parts.bus,
            web: parts.web,
            registrar: parts.registrar,
            metrics: parts.metrics,
            tasks: parts.tasks,
            draining: parts.draining,
            endpoint: parts.endpoint,
            slots,
        }
    }

    /// Starts serving one app's stream; returns the daemon's half at once.
    /// Takes one of the stream slots for the stream's life, or refuses it
    /// when none is left.
    pub fn open(
        self: &Arc<Self>,
        peer: Option<LocalPeer>,
        inbound: Streaming<pb::AppMessage>,
    ) -> Result<DaemonStream, Status> {
        if self.draining.is_cancelled() {
            return Err(Status::unavailable("lymphd is shutting down"));
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            let max = self.config.apps.max_connections;
            warn_limited!(
                REFUSED,
                max_connections = max,
                "refused an Attach stream: apps.max_connections streams are open"
            );
            return Err(Status::resource_exhausted(format!(
                "lymphd has {} attached, its limit (apps.max_connections)",
                crate::plural::count(max as u64, "app", "apps")
            )));
        };
        let (tx, rx) = mpsc::channel(self.config.apps.outbox_capacity);
        let closed = CancellationToken::new();
        let stream = ReceiverStream::new(rx).take_until(closed.clone().cancelled_owned());
        let this = self.clone();
        self.tasks.spawn(async move {
            let _slot = slot;
            stream::serve(this, peer, inbound, tx, closed).await;
        });
        Ok(Box::pin(stream))
    }

    /// The first half of a drain: every app is told to drain within `grace`,
    /// gets no new deliveries, and is unregistered so nobody routes to it.
    pub async fn start_drain(&self, grace: Duration) {
        for session in &self.sessions.all() {
            session.stop_consuming.cancel();
            session.push(Out::Drain(pb::Drain {
                grace_ms: u32::try_from(grace.as_millis()).unwrap_or(u32::MAX),
            }));
            self.registrar.unregister(session).await;
        }
    }

    /// The second half: waits until apps hold no request and no delivery,
    /// or `deadline` passed; then closes every session (what is left fails,
    /// held deliveries go back to the bus) and waits, at most `FLUSH`, until
    /// every consumer is finished: the acks the apps sent are with the bus.
    pub async fn finish_drain(&self, deadline: tokio::time::Instant) {
        while self.sessions.holding() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.sessions.holding();
        if left > 0 {
            warn!(
                in_flight = left,
                "grace period over; failing what is still in flight"
            );
        }
        let mut consumers = Vec::new();
        for session in &self.sessions.all() {
            for event_type in session.close() {
                self.metrics
                    .event(crate::metrics::EventStep::Returned, &event_type);
            }
            let subscribed = session
                .subscriptions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            consumers.extend(subscribed.iter().map(|s| s.finished.clone()));
        }
        let flushed = tokio::time::timeout(FLUSH, async {
            for consumer in &consumers {
                consumer.wait().await;
            }
        })
        .await;
        if flushed.is_err() {
            let open = consumers.iter().filter(|c| !c.is_done()).count();
            warn!(
                consumers = open,
                "event consumers still settling after {FLUSH:?}; stopping anyway"
            );
        }
    }

    /// Every attached app as `Status` shows it.
    pub fn status(&self) -> Vec<pb::AppStatus> {
        self.sessions
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
                subscriptions: consume::status(s),
                peer: s.peer.as_ref().map(|peer| pb::PeerCredentials {
                    uid: peer.uid,
                    gid: peer.gid,
                    pid: peer.pid.unwrap_or(0),
                }),
            })
            .collect()
    }
}
