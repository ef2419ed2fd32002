//! How the dispatcher reaches apps attached to this daemon, without knowing
//! how sessions work.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::error::CallError;
use crate::spec::AppSpec;

/// What runs when a request started with `LocalApp::start_request` ends:
/// with the app's reply, or with the failure (deadline, app gone).
pub type Completion = Box<dyn FnOnce(Result<Bytes, CallError>) + Send>;

#[async_trait::async_trait]
pub trait LocalApp: Send + Sync {
    fn identity(&self) -> &str;
    fn spec(&self) -> &AppSpec;
    /// Sends a request and waits for the reply until `deadline`.
    async fn request(
        &self,
        interface: &str,
        method: &str,
        body: Bytes,
        trace_id: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Bytes, CallError>;

    /// Sends a request without waiting: `done` runs once, with the reply or
    /// the failure (refused at once, past `deadline`, the app gone).
    #[allow(clippy::too_many_arguments)]
    fn start_request(
        &self,
        interface: &str,
        method: &str,
        body: Bytes,
        trace_id: &str,
        deadline: Instant,
        timeout: Duration,
        done: Completion,
    );
}

pub trait LocalApps: Send + Sync {
    /// Fails the requests started without waiting whose deadline passed.
    fn expire_overdue(&self, now: Instant);

    /// The attached, ready app with this identity.
    fn app(&self, identity: &str) -> Option<Arc<dyn LocalApp>>;

    /// Every attached, ready app.
    fn ready_apps(&self) -> Vec<Arc<dyn LocalApp>>;

    /// Ready apps serving `interface`, each with the version that would
    /// serve: exactly `version` when given, else the app's default (its
    /// unversioned interface, else its highest version).
    fn serving(
        &self,
        interface: &str,
        version: Option<&str>,
    ) -> Vec<(Arc<dyn LocalApp>, Option<String>)> {
        self.ready_apps()
            .into_iter()
            .filter_map(|app| {
                let spec = app.spec();
                let chosen = match version {
                    Some(v) => spec
                        .interfaces
                        .iter()
                        .find(|i| i.name == interface && i.version.as_deref() == Some(v))
                        .map(|i| i.version.clone()),
                    None => spec.interface(interface).map(|i| i.version.clone()),
                };
                chosen.map(|v| (app, v))
            })
            .collect()
    }
}
