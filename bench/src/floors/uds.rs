//! gRPC over a Unix socket, both ends: a listener's stream of connections
//! for a tonic server, and a channel to one.

use std::path::Path;

use anyhow::Context;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Channel, Endpoint};

/// Binds `path` (removing what was there) for a tonic server.
pub fn listen(path: &Path) -> anyhow::Result<UnixListenerStream> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    Ok(UnixListenerStream::new(listener))
}

/// A channel to the server listening on `path`.
pub async fn channel(path: &Path) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(format!("unix://{}", path.display()))?;
    endpoint
        .connect()
        .await
        .with_context(|| format!("connect to {}", path.display()))
}
