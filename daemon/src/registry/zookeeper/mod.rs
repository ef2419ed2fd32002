//! The ZooKeeper registry: lymph's own layout (`<chroot>/services/<service>/<id>`,
//! ephemeral JSON znodes), so Python lymph and lymphd discover each other. One
//! session per registry (the crate's cloneable client over its own connection
//! task); a supervisor replaces an expired session and re-registers; a keeper
//! re-creates an owned node someone deleted; one cache task per watched service. Knows nothing of apps, dispatch or the API.

mod cache;
mod config;
mod handle;
mod keeper;
pub(crate) mod node;
#[cfg(test)]
mod node_props;
mod read;
mod session;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use zookeeper_client as zk;

pub use config::ZookeeperConfig;

use super::{Instances, RegistryError};
use config::{Target, valid_segment};
use session::BACKOFF;

/// What can go wrong talking to ZooKeeper; reaches callers as `RegistryError::Backend`.
#[derive(Debug, thiserror::Error)]
pub enum ZookeeperError {
    #[error("invalid zookeeper hosts {hosts:?}: {reason}")]
    InvalidHosts { hosts: String, reason: String },
    #[error("cannot reach zookeeper at {servers} within {timeout:?}")]
    Unreachable { servers: String, timeout: Duration },
    #[error("cannot reach zookeeper at {servers}: {source}")]
    Connect {
        servers: String,
        #[source]
        source: zk::Error,
    },
    #[error("zookeeper {op} of {path} failed: {source}")]
    Op {
        op: &'static str,
        path: String,
        #[source]
        source: zk::Error,
    },
    #[error("zookeeper {op} of {path} got no answer within {timeout:?}")]
    OpTimeout {
        op: &'static str,
        path: String,
        timeout: Duration,
    },
    #[error("invalid instance: {0}")]
    InvalidInstance(String),
}

impl ZookeeperError {
    /// The session is gone (expired or closed under us): the supervisor will
    /// open a new one and re-register, so the write is not lost.
    fn is_session_lost(&self) -> bool {
        matches!(
            self,
            ZookeeperError::Op {
                source: zk::Error::SessionExpired
                    | zk::Error::ClientClosed
                    | zk::Error::SessionMoved,
                ..
            }
        )
    }
}

impl From<ZookeeperError> for RegistryError {
    fn from(e: ZookeeperError) -> Self {
        RegistryError::Backend(e.to_string())
    }
}

/// One service's cache: the sender its task keeps fresh, and whether the first
/// listing is done.
struct ServiceCache {
    tx: Arc<watch::Sender<Instances>>,
    loaded: watch::Receiver<bool>,
}

/// State shared by the handle, the supervisor and the cache tasks.
pub(crate) struct Shared {
    target: Target,
    config: ZookeeperConfig,
    /// The current session; `None` once closed. The supervisor swaps in a new
    /// one after an expiry. Users clone the client per operation and never hold
    /// a clone while waiting: the session closes when the last clone drops.
    session: watch::Sender<Option<zk::Client>>,
    /// Nodes this registry owns (path -> data), to re-create after an expiry.
    /// A tokio mutex held across the writes: `register`, `unregister` and the
    /// re-registration never interleave (registrations are rare; a few ms each).
    registrations: tokio::sync::Mutex<BTreeMap<String, Vec<u8>>>,
    /// Told after every change of `registrations`, so the keeper re-arms its
    /// watches over the new set (a stored permit if it is busy: never missed).
    owned_changed: Notify,
    /// Service -> cache, kept for the registry's life (lymph caches lookups
    /// forever too). A std mutex: a lookup or insert, never held across an await.
    caches: Mutex<HashMap<String, ServiceCache>>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    closed: AtomicBool,
}

impl Shared {
    /// Deadline of one ZooKeeper operation: past the session timeout the session is gone anyway.
    fn op_timeout(&self) -> Duration {
        self.config.session_timeout
    }

    fn client(&self) -> Result<zk::Client, RegistryError> {
        self.session.borrow().clone().ok_or(RegistryError::Closed)
    }

    fn caches(&self) -> MutexGuard<'_, HashMap<String, ServiceCache>> {
        // A panic while holding the lock leaves a plain map behind; keep serving.
        self.caches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A registry session on ZooKeeper. Dropping it closes the session, as
/// `close()` does without waiting.
pub struct ZookeeperRegistry {
    shared: Arc<Shared>,
}

impl ZookeeperRegistry {
    /// Opens a session; fails with an error naming the hosts when ZooKeeper
    /// does not answer within `connect_timeout`.
    #[cfg(feature = "conformance")]
    pub async fn connect(config: ZookeeperConfig) -> Result<Self, RegistryError> {
        Ok(Self::open(config).await?)
    }

    async fn open(config: ZookeeperConfig) -> Result<Self, ZookeeperError> {
        let target = Target::parse(&config.hosts)?;
        let client = session::open_session(&target, &config).await?;
        info!(hosts = %target.servers, root = %target.root, session = %client.session_id(),
            timeout = ?client.session_timeout(), "zookeeper session opened");
        let state = client.state_watcher();
        let shared = Arc::new(Shared {
            target,
            config,
            session: watch::Sender::new(Some(client)),
            registrations: tokio::sync::Mutex::new(BTreeMap::new()),
            owned_changed: Notify::new(),
            caches: Mutex::new(HashMap::new()),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            closed: AtomicBool::new(false),
        });
        shared
            .tasks
            .spawn(session::supervise(shared.clone(), state));
        shared.tasks.spawn(keeper::keep(shared.clone()));
        Ok(ZookeeperRegistry { shared })
    }

    /// `connect`, retried with backoff (200 ms doubling to 5 s) while ZooKeeper
    /// is unreachable, logging each attempt; for daemon start-up, so it never
    /// crash-loops. A bad connect string fails at once.
    pub async fn connect_with_retry(config: ZookeeperConfig) -> Result<Self, RegistryError> {
        let servers = Target::parse(&config.hosts)?.servers;
        let mut backoff = BACKOFF;
        loop {
            match Self::open(config.clone()).await {
                Ok(registry) => return Ok(registry),
                Err(error) => {
                    let delay = backoff.next_delay();
                    warn!(hosts = %servers, %error,
                        "cannot reach zookeeper at {servers}; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The znode all paths live under (`/lymph` unless the hosts named a chroot).
    #[cfg(feature = "conformance")]
    pub fn root(&self) -> &str {
        &self.shared.target.root
    }

    /// The current session (id and password), for diagnostics and for tests
    /// that expire it from another connection; `None` once closed.
    #[cfg(feature = "conformance")]
    pub fn current_session(&self) -> Option<zk::SessionInfo> {
        self.shared
            .session
            .borrow()
            .as_ref()
            .map(|c| c.session().clone())
    }

    fn check_open(&self) -> Result<(), RegistryError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(RegistryError::Closed);
        }
        Ok(())
    }

    fn path_of(&self, service: &str, id: &str) -> Result<String, ZookeeperError> {
        if !valid_segment(service) || !valid_segment(id) {
            return Err(ZookeeperError::InvalidInstance(format!(
                "service {service:?} and id {id:?} must be non-empty znode names without '/'"
            )));
        }
        Ok(self.shared.target.instance_path(service, id))
    }
}
