//! lymphd: the per-host sidecar of lymph services. Apps attach over gRPC on a
//! Unix socket; the daemon owns the registry, the routing of calls and (in
//! fleet mode) the network. `main.rs` of `lymphd` only wires these together.

// Without every fleet backend (the Rust SDK's test harness builds the daemon
// so), the wire code they share is unused; dead code is checked with all on.
#![cfg_attr(
    not(all(feature = "zookeeper", feature = "zeromq", feature = "amqp")),
    allow(dead_code, unused_imports)
)]

pub(crate) mod access;
pub(crate) mod api;
pub(crate) mod apps;
pub(crate) mod attach;
pub mod config;
pub(crate) mod daemon;
pub(crate) mod deadline;
pub(crate) mod dispatch;
pub(crate) mod emit;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod fds;
pub(crate) mod fleet;
#[cfg(feature = "fleet")]
#[doc(hidden)]
pub mod fuzz;
pub(crate) mod gauges;
pub(crate) mod hex;
pub mod log_fields;
pub mod logs;
pub(crate) mod metrics;
pub(crate) mod names;
pub(crate) mod plural;
pub(crate) mod registry;
pub(crate) mod rpc;
pub mod server;
pub mod shutdown;
pub(crate) mod spans;
pub(crate) mod spec;
pub mod stats;
pub(crate) mod status;
pub(crate) mod trace;
pub(crate) mod warn_limit;
pub(crate) mod web;

pub use config::Config;

/// What test harnesses outside the crate reach (feature `conformance`): the
/// backends' conformance suites with the types they run against, and the
/// RPC wire codec for tests that speak raw ZeroMQ.
#[cfg(feature = "conformance")]
#[doc(hidden)]
pub mod conformance {
    /// The event bus backends and their suite (`conformance`).
    pub mod events {
        pub use crate::events::*;
    }
    /// The registry backends and their suite (`conformance`).
    pub mod registry {
        pub use crate::registry::*;
    }
    pub use crate::rpc::frame;
}

/// An error and its sources on one line: "outer: inner: innermost".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The daemon's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Resolves the socket, binds it, builds the daemon and serves until
/// `shutdown` resolves. The entry point of `lymphd` and of in-process test daemons.
pub async fn serve(
    config: Config,
    socket_flag: Option<std::path::PathBuf>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let (socket, source) = lymph_proto::resolve_socket(socket_flag, config.socket.clone());
    let bound = server::bind(&socket)
        .await
        .with_context(|| format!("socket path from {source}"))?;
    let (listener, _guard) = bound.into_parts();
    let shutdown = shutdown;
    tokio::pin!(shutdown);
    // Joining a fleet may retry for a long time (ZooKeeper down): a stop
    // request meanwhile ends the start-up instead of waiting for it.
    let daemon = tokio::select! {
        built = daemon::Daemon::build(config, socket) => built?,
        () = &mut shutdown => {
            tracing::info!("stopped while starting up");
            return Ok(());
        }
    };
    daemon.run(listener, shutdown).await
}
