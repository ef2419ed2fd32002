//! One log port: a TCP port behind the frame guard (subscribers' frames are
//! checked before the ZeroMQ crate reads them), fed by a bounded queue; each
//! record goes out as `[LEVEL, log_endpoint, line]`. The PUB socket itself is
//! made when the first subscriber connects (the crate preallocates a 4 MB
//! queue per socket, and most ports are never tailed); until then records
//! are dropped, as a PUB socket without subscribers drops them.
//! Each accepted connection must come from `rpc.allowed_peers`, fit under
//! `log.max_subscribers` and get a descriptor of the public ports' budget,
//! else it is closed at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lymph_proto::v1::LogRecord;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, warn};
use zeromq::{Listener, PubSocket, Socket, SocketSend, ZmqMessage};

use super::{LogSink, PORT_QUEUE, PortBounds, line};
use crate::rpc::frame::Limits;
use crate::rpc::guard::{self, Guard};
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// Subscribers only send subscriptions (a topic prefix): small frames.
const SUBSCRIBER_LIMITS: Limits = Limits {
    max_frame_bytes: 4096,
    max_message_bytes: 4096,
};

/// The most a subscriber sends in all: its handshake and a few subscriptions
/// (each kept by the PUB socket, so an endless stream of them is cut).
const SUBSCRIBER_MAX_BYTES: u64 = 64 * 1024;

/// How long a subscriber may take to send its ZMTP greeting (clients send it
/// at once): a connection that sends nothing does not hold a subscriber's place.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after a failed accept (out of descriptors: retrying at once would spin).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// One line per interval for each kind of trouble a subscriber can cause.
static ACCEPT_FAILED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static REFUSED: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// A bound log port; its task stops when it is dropped.
#[derive(Debug)]
pub struct LogPort {
    endpoint: String,
    _stop: DropGuard,
}

impl LogPort {
    /// Binds `tcp://<ip>:<free port>` and starts serving what the sink gets.
    pub async fn open(ip: &str, bounds: PortBounds) -> Result<(LogPort, LogSink), String> {
        let listener = TcpListener::bind((ip, 0))
            .await
            .map_err(|e| format!("cannot bind a log port on {ip}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let endpoint = format!("tcp://{ip}:{port}");
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(PORT_QUEUE);
        let served = Served {
            listener,
            records: rx,
            endpoint_frame: Bytes::from(endpoint.clone().into_bytes()),
            guard: Arc::new(Guard {
                limits: SUBSCRIBER_LIMITS,
                max_inbound_bytes: SUBSCRIBER_MAX_BYTES,
                greeting_timeout: GREETING_TIMEOUT,
                cancel: stop.clone(),
            }),
            subscribers: Arc::new(Semaphore::new(bounds.max_subscribers)),
            allowed_peers: bounds.allowed_peers,
            socket: None,
        };
        tokio::spawn(served.run());
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

struct Served {
    listener: TcpListener,
    records: mpsc::Receiver<LogRecord>,
    endpoint_frame: Bytes,
    guard: Arc<Guard>,
    /// One permit per open subscriber connection (`log.max_subscribers`).
    subscribers: Arc<Semaphore>,
    allowed_peers: Vec<ipnet::IpNet>,
    /// The PUB socket and its private Unix path, once someone subscribed.
    socket: Option<(PubSocket, PathBuf)>,
}

impl Served {
    async fn run(mut self) {
        loop {
            tokio::select! {
                _ = self.guard.cancel.cancelled() => break,
                record = self.records.recv() => match record {
                    Some(record) => self.publish(record).await,
                    None => break,
                },
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, from)) => {
                        // Refused connections close here, as `stream` drops.
                        let Some(held) = self.admit(from) else { continue };
                        if let Some(inner) = self.socket_path().await {
                            guard::spawn_forward(&self.guard, stream, from, &inner, held);
                        }
                    }
                    Err(error) => {
                        warn_limited!(ACCEPT_FAILED, %error, "log port accept failed; pausing");
                        tokio::time::sleep(ACCEPT_PAUSE).await;
                    }
                },
            }
        }
        if let Some((socket, inner)) = self.socket.take() {
            drop(socket.close().await);
            guard::remove_private_socket(&inner);
        }
    }

    /// Whether a new subscriber from `from` may stay: an allowed address, room
    /// under `log.max_subscribers` and a descriptor of the ports' budget.
    /// Returns the permits its connection holds.
    fn admit(&self, from: SocketAddr) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        guard::admit(
            from,
            &self.allowed_peers,
            || self.subscribers.clone().try_acquire_owned().ok(),
            "log.max_subscribers",
            |reason| warn_limited!(REFUSED, %from, reason, "log subscriber refused"),
        )
    }

    async fn publish(&mut self, record: LogRecord) {
        let Some((socket, _)) = self.socket.as_mut() else {
            return;
        };
        let mut message = ZmqMessage::from(line::level_name(record.level));
        message.push_back(self.endpoint_frame.clone());
        message.push_back(Bytes::from(line::format(&record).into_bytes()));
        if let Err(e) = socket.send(message).await {
            debug!(error = %e, "log publish failed");
        }
    }

    /// The PUB socket's private path, binding the socket on first use.
    async fn socket_path(&mut self) -> Option<PathBuf> {
        if let Some((_, inner)) = &self.socket {
            return Some(inner.clone());
        }
        match bind_pub().await {
            Ok((socket, inner)) => {
                self.socket = Some((socket, inner.clone()));
                Some(inner)
            }
            Err(e) => {
                warn!(error = %e, "cannot open a log socket; the subscriber is turned away");
                None
            }
        }
    }
}

async fn bind_pub() -> Result<(PubSocket, PathBuf), String> {
    let inner = guard::private_socket_path().map_err(|e| e.to_string())?;
    let inner_listener = std::os::unix::net::UnixListener::bind(&inner)
        .map_err(|e| format!("private socket {}: {e}", inner.display()))?;
    let mut socket = PubSocket::new();
    if let Err(e) = socket.bind_listener(Listener::Ipc(inner_listener)).await {
        guard::remove_private_socket(&inner);
        return Err(format!("cannot bind the log socket: {e}"));
    }
    Ok((socket, inner))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lymph_proto::v1::LogLevel;
    use tokio::io::AsyncReadExt;
    use tokio::time::timeout;
    use zeromq::{SocketRecv, SubSocket};

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn record(message: &str) -> LogRecord {
        LogRecord {
            level: LogLevel::Warn as i32,
            logger: "greeting".into(),
            message: message.into(),
            trace_id: "t-1".into(),
            time: 1_795_808_608.5,
        }
    }

    #[tokio::test]
    async fn subscribers_get_lymphs_three_frames_and_a_huge_frame_only_cuts_its_connection() {
        let bounds = PortBounds {
            allowed_peers: Vec::new(),
            max_subscribers: 4,
        };
        let (port, sink) = LogPort::open("127.0.0.1", bounds).await.expect("opens");
        let endpoint = port.endpoint().to_owned();

        // Without the guard, zeromq 0.7 would reserve 1 TB for this frame.
        let mut rogue = crate::rpc::announce_huge_frame(&endpoint, 1 << 40).await;
        let mut sink_bytes = Vec::new();
        let cut = timeout(WAIT, rogue.read_to_end(&mut sink_bytes)).await;
        assert!(cut.is_ok(), "the rogue connection is cut in time");

        let mut sub = SubSocket::new();
        sub.subscribe("").await.expect("subscribes");
        sub.connect(&endpoint).await.expect("connects");
        // A subscription joins asynchronously: publish until one arrives.
        let received = timeout(WAIT, async {
            loop {
                sink.publish(record("Saying hi to Joe"));
                if let Ok(Ok(message)) = timeout(Duration::from_millis(100), sub.recv()).await {
                    return message;
                }
            }
        })
        .await
        .expect("a record arrives");
        let frames = received.into_vec();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].as_ref(), b"WARNING");
        assert_eq!(frames[1].as_ref(), endpoint.as_bytes());
        let line = String::from_utf8(frames[2].to_vec()).expect("utf-8");
        assert!(
            line.ends_with("[WARNING] greeting: Saying hi to Joe - trace_id=\"t-1\""),
            "{line}"
        );
    }
}
