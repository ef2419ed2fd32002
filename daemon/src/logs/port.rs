//! One log port: a ZeroMQ PUB socket behind the frame guard (subscribers'
//! frames are checked before the crate reads them), fed by a bounded queue;
//! each record goes out as `[LEVEL, log_endpoint, line]`.

use bytes::Bytes;
use lymph_proto::v1::LogRecord;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::debug;
use zeromq::{Listener, PubSocket, Socket, SocketSend, ZmqMessage};

use super::{LogSink, PORT_QUEUE, line};
use crate::rpc::frame::Limits;
use crate::rpc::guard;

/// Subscribers only send subscriptions (a topic prefix): small frames.
const SUBSCRIBER_LIMITS: Limits = Limits {
    max_frame_bytes: 4096,
    max_message_bytes: 4096,
};

/// A bound log port; its tasks stop when it is dropped.
#[derive(Debug)]
pub struct LogPort {
    endpoint: String,
    _stop: DropGuard,
}

impl LogPort {
    /// Binds `tcp://<ip>:<free port>` and starts publishing what the sink gets.
    pub async fn open(ip: &str) -> Result<(LogPort, LogSink), String> {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .map_err(|e| format!("cannot bind a log port on {ip}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let endpoint = format!("tcp://{ip}:{port}");
        let inner = guard::private_socket_path().map_err(|e| e.to_string())?;
        let inner_listener = std::os::unix::net::UnixListener::bind(&inner)
            .map_err(|e| format!("private socket {}: {e}", inner.display()))?;
        let mut socket = PubSocket::new();
        if let Err(e) = socket.bind_listener(Listener::Ipc(inner_listener)).await {
            guard::remove_private_socket(&inner);
            return Err(format!("cannot bind the log socket: {e}"));
        }
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(PORT_QUEUE);
        tokio::spawn(guard::run(
            SUBSCRIBER_LIMITS,
            stop.clone(),
            listener,
            inner.clone(),
        ));
        tokio::spawn(publish(socket, rx, endpoint.clone(), stop.clone(), inner));
        Ok((
            LogPort {
                endpoint,
                _stop: stop.drop_guard(),
            },
            LogSink::new(tx),
        ))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

async fn publish(
    mut socket: PubSocket,
    mut records: mpsc::Receiver<LogRecord>,
    endpoint: String,
    stop: CancellationToken,
    inner: std::path::PathBuf,
) {
    let endpoint_frame = Bytes::from(endpoint.clone().into_bytes());
    loop {
        let record = tokio::select! {
            _ = stop.cancelled() => break,
            record = records.recv() => match record {
                Some(record) => record,
                None => break,
            },
        };
        let mut message = ZmqMessage::from(line::level_name(record.level));
        message.push_back(endpoint_frame.clone());
        message.push_back(Bytes::from(line::format(&record).into_bytes()));
        if let Err(e) = socket.send(message).await {
            debug!(%endpoint, error = %e, "log publish failed");
        }
    }
    drop(socket.close().await);
    guard::remove_private_socket(&inner);
}
