//! A test harness for services (feature `testing`), on par with Python's
//! `lymph.testing`: an in-process `lymphd` on the embedded registry and event
//! bus, listening on a real Unix socket in a temp dir, so a service's own tests
//! need nothing installed. This module only wires its parts together and owns
//! their shared error type and timeouts.
//!
//! - [`TestDaemon`]: the daemon (config from YAML or a value), services run
//!   against it, `restart()` that waits for the apps to come back;
//! - [`EventRecorder`]: the events of a type emitted while it records;
//! - [`Stub`]: a stand-in for a service the app under test calls, recording the calls;
//! - [`HttpClient`]: requests to a service's `#[route]`s through the daemon's gateway;
//! - [`service_config`] / [`service_config_value`]: the app's own config without a file;
//! - logs go to the test's captured output (shown when it fails), filtered by `RUST_LOG`.
//!
//! ```no_run
//! # use lymph::testing::TestDaemon;
//! # #[derive(Default)] struct Greeting;
//! # #[lymph::interface] impl Greeting { #[rpc] fn greet(&self, name: String) -> Result<String, lymph::Error> { Ok(name) } }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let daemon = TestDaemon::start().await?;
//! let greeted = daemon.record("greeted").await?;
//! let _greeting = daemon.serve(daemon.service().interface(Greeting)).await?;
//! let client = daemon.client().await?;
//! let reply: String = client.proxy("Greeting").call("greet", serde_json::json!({"name": "Joe"})).await?;
//! let events = greeted.wait_for(1).await?;
//! # Ok(()) }
//! ```

mod config;
mod daemon;
mod events;
mod http;
mod log;
mod logging;
mod running;
mod stub;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use config::{service_config, service_config_value};
pub use daemon::{TestDaemon, TestDaemonBuilder};
pub use events::EventRecorder;
pub use http::{HttpClient, HttpResponse, free_port};
pub use logging::init_logging;
pub use running::{RunningService, WebService};
pub use stub::{Stub, StubBuilder, StubCall};

use crate::ServiceError;

/// How long the harness waits for the daemon, a service, events or calls.
pub const WAIT: Duration = Duration::from_secs(20);

/// What can go wrong in the harness (not in the code under test).
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    #[error("cannot make a temp dir for the test daemon")]
    TempDir(#[source] std::io::Error),
    #[error("bad test config: {0}")]
    Config(String),
    #[error("the test daemon did not start: {0}")]
    Daemon(String),
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("the test daemon's API failed: {0}")]
    Api(String),
    #[error("HTTP request failed: {0}")]
    Http(String),
    #[error("cannot decode {what}: {message}")]
    Decode { what: String, message: String },
}

/// Polls `condition` every 10 ms until it holds; a [`TestingError::Timeout`]
/// naming `what` after [`WAIT`]. Python's `lymph.testing.wait_for`.
///
/// ```no_run
/// # async fn demo(done: std::sync::atomic::AtomicBool) -> Result<(), lymph::testing::TestingError> {
/// use std::sync::atomic::Ordering;
/// lymph::testing::wait_for("the handler ran", || done.load(Ordering::Relaxed)).await?;
/// # Ok(()) }
/// ```
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) -> Result<(), TestingError> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            return Err(TestingError::Timeout(format!(
                "timed out after {WAIT:?} waiting for {what}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
