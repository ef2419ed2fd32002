//! The ZeroMQ transport in lymph's socket model (`docs/wire.md` §3.1): the
//! bound port receives everything (`receiver`); outgoing messages leave on
//! connections whose identity is our endpoint (`conn`), both speaking ZMTP
//! (`zmtp`). Owns sockets, heartbeats, deadlines, peer liveness and the
//! port's bounds (`queue`: bytes per peer; `idle`: inbound connections);
//! knows nothing of apps or the registry.

#[cfg(test)]
mod bounds_tests;
mod conn;
mod deadlines;
pub(crate) mod guard;
mod heartbeat;
mod idle;
mod inbound;
mod peers;
mod queue;
mod receiver;
#[cfg(test)]
pub(crate) mod tests;
mod zmtp;
#[cfg(feature = "fleet")]
pub(crate) mod zmtp_fuzz;
#[cfg(test)]
mod zmtp_props;

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, info};

use self::peers::{Outgoing, Shared, is_endpoint};
use self::queue::Refused;
use super::frame::{self, Headers, Message, MessageType};
use super::{IncomingRequest, OutgoingRequest, Remote, ReplyDone, RpcError, TransportConfig};

/// lymph's range for a random port (`container.port` unset).
const PORT_RANGE: std::ops::RangeInclusive<u16> = 35536..=65535;
/// Random ports tried before giving up (lymph tries 3).
const PORT_ATTEMPTS: usize = 5;

/// Binds the transport and returns its client handle and the incoming requests.
/// Dropping the last handle closes the transport: its tasks end, sockets close
/// and the receiver then yields `None`.
pub async fn start(
    config: TransportConfig,
) -> Result<(Arc<dyn Remote>, mpsc::Receiver<IncomingRequest>), RpcError> {
    let (client, incoming) = RpcClient::start(config).await?;
    Ok((Arc::new(client), incoming))
}

/// Binds the public port. Our identity (lymph's: the endpoint) goes out in
/// each connection's handshake, so a random port is chosen first and retried
/// when taken.
async fn bind(config: &TransportConfig) -> Result<(tokio::net::TcpListener, String), RpcError> {
    let attempts = if config.port == 0 { PORT_ATTEMPTS } else { 1 };
    let mut last_error = String::new();
    for _ in 0..attempts {
        let port = if config.port == 0 {
            random_port()
        } else {
            config.port
        };
        let endpoint = format!("tcp://{}:{}", config.ip, port);
        if !is_endpoint(&endpoint) {
            return Err(RpcError::BadEndpoint(endpoint));
        }
        match tokio::net::TcpListener::bind((config.ip.as_str(), port)).await {
            Ok(listener) => return Ok((listener, endpoint)),
            Err(error) => {
                debug!(%endpoint, %error, "bind failed");
                last_error = error.to_string();
            }
        }
    }
    Err(RpcError::Bind {
        endpoint: format!("tcp://{}:{}", config.ip, config.port),
        reason: last_error,
    })
}

fn random_port() -> u16 {
    let span = u128::from(PORT_RANGE.end() - PORT_RANGE.start()) + 1;
    let offset = uuid::Uuid::new_v4().as_u128() % span;
    PORT_RANGE.start() + u16::try_from(offset).unwrap_or(0)
}

/// The transport's client handle: `Remote` for the dispatcher.
pub struct RpcClient {
    shared: Arc<Shared>,
}

impl RpcClient {
    /// `start` with the concrete client type.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(RpcClient, mpsc::Receiver<IncomingRequest>), RpcError> {
        let (listener, endpoint) = bind(&config).await?;
        info!(%endpoint, "rpc transport listening");
        // The daemon's backlog of requests; past it, new requests are NACKed.
        let (incoming_tx, incoming_rx) = mpsc::channel(config.incoming_queue.max(1));
        let shared = Arc::new(Shared::new(endpoint, config));
        tokio::spawn(receiver::run(shared.clone(), listener, incoming_tx));
        tokio::spawn(heartbeat::run(shared.clone()));
        tokio::spawn(deadlines::run(shared.clone()));
        tokio::spawn(idle::run(shared.clone()));
        Ok((RpcClient { shared }, incoming_rx))
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

#[async_trait::async_trait]
impl Remote for RpcClient {
    fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    fn peer_counts(&self) -> [u64; 3] {
        self.shared.peer_counts()
    }

    fn liveness(&self, endpoint: &str) -> super::Liveness {
        self.shared.liveness(endpoint)
    }

    fn probe(&self, endpoint: &str) {
        heartbeat::probe(&self.shared, endpoint);
    }

    /// Sends a request; `done` runs once with its first reply or failure.
    fn start_request(
        &self,
        endpoint: &str,
        request: OutgoingRequest,
        done: ReplyDone,
    ) -> Option<String> {
        let crate::deadline::Deadline {
            at: deadline,
            timeout,
        } = request.deadline;
        let message = request_message(request);
        let request_id = Some(message.id.clone());
        let outgoing = match Outgoing::encode_within(&message, request_id, &self.shared.limits) {
            Ok(outgoing) => outgoing,
            Err(e) => {
                done(Err(e));
                return None;
            }
        };
        let queue = match self.shared.conn_for(endpoint) {
            Ok(queue) => queue,
            Err(e) => {
                done(Err(e));
                return None;
            }
        };
        let id = message.id;
        self.shared
            .add_pending(id.clone(), endpoint, done, deadline, timeout);
        match queue.try_send(outgoing) {
            Ok(()) => {}
            // A busy peer: wait for room in a task, within the call's deadline
            // (past it the sweep has failed the call already).
            Err(Refused::Full(outgoing)) => {
                let (shared, endpoint, id) = (self.shared.clone(), endpoint.to_owned(), id.clone());
                tokio::spawn(async move {
                    let error = match tokio::time::timeout_at(deadline, queue.send(outgoing)).await
                    {
                        Ok(Ok(())) => return,
                        Ok(Err(refused)) => refused_error(&endpoint, refused),
                        Err(_) => RpcError::Timeout { endpoint, timeout },
                    };
                    shared.resolve(&id, Err(error));
                });
            }
            // A peer that reads nothing (or not fast enough): fail at once.
            Err(refused) => {
                self.shared
                    .resolve(&id, Err(refused_error(endpoint, refused)));
                return None;
            }
        }
        Some(id)
    }

    fn cancel_request(&self, endpoint: &str, request_id: &str, tell_peer: bool) {
        if !self.shared.resolve(request_id, Err(RpcError::Cancelled)) || !tell_peer {
            return;
        }
        let request = OutgoingRequest {
            subject: super::CANCEL_SUBJECT.to_owned(),
            body: frame::cancel_body(request_id),
            trace_id: crate::trace::new_trace_id(),
            version: None,
            identity: None,
            deadline: crate::deadline::Deadline::after(CANCEL_TIMEOUT),
            traceparent: None,
        };
        // Nobody waits for the peer's answer: the caller has gone already.
        self.start_request(endpoint, request, Box::new(|_| {}));
    }
}

/// How long telling a peer about a cancelled request may take.
const CANCEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The call's failure when its peer's queue refused it.
fn refused_error(endpoint: &str, refused: Refused) -> RpcError {
    match refused {
        Refused::OverBytes { queued } => RpcError::Overloaded {
            endpoint: endpoint.to_owned(),
            queued,
        },
        Refused::Full(_) | Refused::Closed => peers::unreachable(endpoint, "connection closed"),
    }
}

/// lymph's REQ message for an outgoing request, with a fresh message id.
fn request_message(request: OutgoingRequest) -> Message {
    let deadline_ms = u64::try_from(request.deadline.timeout.as_millis()).unwrap_or(u64::MAX);
    Message {
        id: frame::new_message_id(),
        kind: MessageType::Req,
        subject: request.subject,
        headers: Headers {
            trace_id: Some(request.trace_id),
            version: request.version,
            identity: request.identity,
            deadline_ms: Some(deadline_ms),
            traceparent: request.traceparent,
            ..Headers::default()
        },
        body: request.body,
    }
}
