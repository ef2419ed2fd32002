//! Opens a gRPC channel to lymphd over its Unix socket, with a clear error when
//! nobody listens there, and within a deadline when something listens but
//! does not answer. Every connection, reconnects included, is checked by
//! [`crate::trust`] before its first byte.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

use crate::trust::{self, CheckError, Untrusted};
use crate::v1::lymph_client::LymphClient;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no lymphd is listening on {path} (is the daemon running? start it with `lymphd`)")]
    NotListening {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to lymphd on {path}")]
    Transport {
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("timed out after {within:?} connecting to lymphd on {path}")]
    TimedOut { path: PathBuf, within: Duration },
    /// The socket's directory, the socket or the server behind it is not
    /// trusted: another user may be impersonating lymphd.
    #[error(transparent)]
    Untrusted(Untrusted),
}

/// Largest gRPC message either side accepts; the daemon's body limit is checked separately.
pub const MAX_GRPC_MESSAGE: usize = 64 * 1024 * 1024;

/// How long [`connect`] may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the daemon's socket within [`CONNECT_TIMEOUT`]. Fails at once
/// when nothing listens there.
pub async fn connect(path: &Path) -> Result<LymphClient<Channel>, ConnectError> {
    connect_within(path, CONNECT_TIMEOUT).await
}

/// Connects to the daemon's socket, failing at once when nothing listens there
/// and after `within` when the connection does not complete. The channel
/// reconnects by itself later, on the same socket.
pub async fn connect_within(
    path: &Path,
    within: Duration,
) -> Result<LymphClient<Channel>, ConnectError> {
    let timed_out = || ConnectError::TimedOut {
        path: path.to_path_buf(),
        within,
    };
    // Connect first ourselves: tonic's lazy errors would otherwise surface as
    // an opaque "transport error" on the first call. The stream is then the
    // channel's first connection (one connection, not a probe and another).
    let first = match tokio::time::timeout(within, open_trusted(path)).await {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(stream)) => Arc::new(Mutex::new(Some(stream))),
    };
    let socket = path.to_path_buf();
    // The URI is required by tonic but unused: the connector ignores it.
    let endpoint = Endpoint::from_static("http://lymphd.local")
        .connect_timeout(within)
        .tcp_nodelay(true);
    let channel = endpoint.connect_with_connector(tower::service_fn(move |_| {
        let socket = socket.clone();
        let first = first.clone();
        async move {
            let ready = first.lock().unwrap_or_else(PoisonError::into_inner).take();
            let stream = match ready {
                Some(stream) => stream,
                // A reconnect is checked again: the socket may have changed hands.
                None => open_trusted(&socket).await.map_err(std::io::Error::other)?,
            };
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    }));
    let channel = tokio::time::timeout(within, channel)
        .await
        .map_err(|_| timed_out())?
        .map_err(|source| ConnectError::Transport {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(LymphClient::new(channel)
        .max_decoding_message_size(MAX_GRPC_MESSAGE)
        .max_encoding_message_size(MAX_GRPC_MESSAGE))
}

/// Connects to `path` after checking its directory and file, then checks the
/// server's peer credentials; nothing is written before both pass.
async fn open_trusted(path: &Path) -> Result<UnixStream, ConnectError> {
    let refused = |e: CheckError| match e {
        CheckError::Unreachable(source) => ConnectError::NotListening {
            path: path.to_path_buf(),
            source,
        },
        CheckError::Untrusted(untrusted) => ConnectError::Untrusted(untrusted),
    };
    let socket_owner = trust::before_connect(path).map_err(refused)?;
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ConnectError::NotListening {
            path: path.to_path_buf(),
            source,
        })?;
    trust::after_connect(path, socket_owner, &stream).map_err(refused)?;
    Ok(stream)
}
