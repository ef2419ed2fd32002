//! `trait Registry`: where service instances are registered and looked up.
//! Backends: `embedded` (this host, in the daemon) and, in fleet mode,
//! ZooKeeper. Lookups return a watch receiver kept fresh by the backend, so the
//! hot path never waits on the registry. Knows nothing of apps or the API.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod embedded;
#[cfg(feature = "zookeeper")]
pub(crate) mod zookeeper;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[cfg(feature = "conformance")]
pub use embedded::EmbeddedRegistry;
pub use embedded::EmbeddedStore;
#[cfg(feature = "zookeeper")]
pub use zookeeper::{ZookeeperConfig, ZookeeperRegistry};

/// One registered instance of one service, as lymph stores it (the JSON of a
/// znode under `/lymph/services/<service>/<id>`), plus lymphd's `app_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The service (interface) name; not stored in the znode, it is the parent's name.
    #[serde(skip)]
    pub service: String,
    /// Unique per registration: the node's name.
    pub id: String,
    /// The process (app) the instance lives in; 32 hex.
    pub identity: String,
    /// The RPC endpoint of the daemon serving the instance.
    pub endpoint: String,
    /// Strict semver, or none.
    pub version: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub log_endpoint: Option<String>,
    /// The name the app gave itself (lymphd only; lymph ignores unknown keys).
    #[serde(default)]
    pub app_name: Option<String>,
}

/// A web service instance as lymph publishes it under
/// `/lymph/http/<service>/<id>` (fleet mode), for proxies and tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpInstance {
    pub service: String,
    pub id: String,
    pub identity: String,
    pub ip: Option<String>,
    pub hostname: Option<String>,
    pub http_port: u16,
}

/// The current instances of one service, shared cheaply.
pub type Instances = Arc<Vec<Instance>>;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry session is closed")]
    Closed,
    #[error("registry backend failed: {0}")]
    Backend(String),
}

/// A registry session. Registrations made through it are ephemeral: they
/// vanish when the session is closed or dropped (as ZooKeeper ephemeral nodes
/// vanish with their session).
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// The backend's name, for status and logs.
    fn backend(&self) -> &'static str;

    /// Adds (or replaces, by service and id) an instance.
    async fn register(&self, instance: Instance) -> Result<(), RegistryError>;

    /// Removes an instance this session registered. Removing a missing one is fine.
    async fn unregister(&self, service: &str, id: &str) -> Result<(), RegistryError>;

    /// Names of services that have at least one instance.
    async fn services(&self) -> Result<Vec<String>, RegistryError>;

    /// The instances of a service, kept fresh by the backend. Receivers of one
    /// service share one cache.
    async fn watch(&self, service: &str) -> Result<watch::Receiver<Instances>, RegistryError>;

    /// Publishes a web service instance, ephemeral like `register`. Only
    /// fleet registries publish them (lymph's `/lymph/http`); a no-op otherwise.
    async fn register_http(&self, _instance: HttpInstance) -> Result<(), RegistryError> {
        Ok(())
    }

    /// Removes a web service instance; removing a missing one is fine.
    async fn unregister_http(&self, _service: &str, _id: &str) -> Result<(), RegistryError> {
        Ok(())
    }

    /// Whether the backend's session is up now (the embedded registry's
    /// always is): the `lymphd_registry_connected` gauge.
    fn connected(&self) -> bool {
        true
    }

    /// Ends the session: every registration it made disappears.
    async fn close(&self);
}
