//! Opens a gRPC channel to lymphd over its Unix socket, with a clear error when
//! nobody listens there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

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
}

/// Largest gRPC message either side accepts; the daemon's body limit is checked separately.
pub const MAX_GRPC_MESSAGE: usize = 64 * 1024 * 1024;

/// Connects to the daemon's socket. Fails at once when nothing listens there.
pub async fn connect(path: &Path) -> Result<LymphClient<Channel>, ConnectError> {
    // Probe first: tonic's lazy errors would otherwise surface as an opaque
    // "transport error" on the first call.
    if let Err(source) = tokio::net::UnixStream::connect(path).await {
        return Err(ConnectError::NotListening {
            path: path.to_path_buf(),
            source,
        });
    }
    let socket = path.to_path_buf();
    // The URI is required by tonic but unused: the connector ignores it.
    let channel = Endpoint::from_static("http://lymphd.local")
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|source| ConnectError::Transport {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(LymphClient::new(channel)
        .max_decoding_message_size(MAX_GRPC_MESSAGE)
        .max_encoding_message_size(MAX_GRPC_MESSAGE))
}
