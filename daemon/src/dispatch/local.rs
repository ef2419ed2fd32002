//! How the dispatcher reaches apps attached to this daemon, without knowing
//! how sessions work.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::CallError;
use crate::spec::AppSpec;

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
}

pub trait LocalApps: Send + Sync {
    /// The attached, ready app with this identity.
    fn app(&self, identity: &str) -> Option<Arc<dyn LocalApp>>;
}
