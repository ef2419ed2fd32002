//! lymphd: the per-host sidecar of lymph services. Apps attach over gRPC on a
//! Unix socket; the daemon owns the registry, the routing of calls and (in
//! fleet mode) the network. `main.rs` of `lymphd` only wires these together.

pub mod access;
pub mod api;
pub mod apps;
pub mod attach;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod emit;
pub mod error;
pub mod events;
pub mod fds;
pub mod fleet;
#[cfg(feature = "fleet")]
#[doc(hidden)]
pub mod fuzz;
pub mod log_fields;
pub mod logs;
pub mod metrics;
pub mod names;
pub mod registry;
pub mod rpc;
pub mod server;
pub mod shutdown;
pub mod spec;
pub mod stats;
pub mod status;
pub mod trace;
pub mod warn_limit;
pub mod web;

pub use config::Config;
pub use daemon::Daemon;

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
        built = Daemon::build(config, socket) => built?,
        () = &mut shutdown => {
            tracing::info!("stopped while starting up");
            return Ok(());
        }
    };
    daemon.run(listener, shutdown).await
}
