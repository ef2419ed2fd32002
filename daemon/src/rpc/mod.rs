//! RPC between daemons (and Python lymph containers) in lymph 0.15's wire
//! format: six ZeroMQ frames over two ROUTER sockets (`docs/wire.md` §3).
//! `frame` is the pure codec; `zmq` owns the sockets, heartbeats and peer
//! liveness. The daemon hands outgoing calls to an `RpcClient` and receives
//! `IncomingRequest`s to dispatch to its apps. Knows nothing of apps, the
//! registry or the local API.

pub mod frame;
#[cfg(feature = "zeromq")]
mod zmq;

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

#[cfg(feature = "zeromq")]
pub(crate) use zmq::guard;
#[cfg(feature = "zeromq")]
pub use zmq::start;
#[cfg(all(test, feature = "zeromq"))]
pub(crate) use zmq::tests::announce_huge_frame;
#[cfg(feature = "fleet")]
pub(crate) use zmq::zmtp_fuzz;

/// The extra header key carrying lymphd's reason on a NACK (lymph ignores
/// unknown header keys, so Python peers see a plain NACK).
pub const REASON_HEADER: &str = "lymphd_error";

/// The extra header key a lymphd sets on a request meant for one app behind
/// a shared endpoint (its registered identity): `lymph.inspect` then answers
/// for that app alone. Python lymph neither sends nor reads it.
pub const IDENTITY_HEADER: &str = "lymphd_identity";

/// The extra header key carrying a request's time left, in milliseconds,
/// from one lymphd to another: the callee's deadline is the caller's. Python
/// lymph ignores it (its requests get `rpc.default_timeout`).
pub const DEADLINE_HEADER: &str = "lymphd_deadline_ms";

/// lymphd's header on a REQ: the W3C `traceparent` of the caller's span
/// (only while spans are on, or one came from the caller's app).
pub const TRACEPARENT_HEADER: &str = "lymphd_traceparent";

/// The subject of lymphd's own request telling a peer lymphd that the caller
/// of one of its requests gave up (body `{"id": <request id>}`). Never sent
/// to Python lymph.
pub const CANCEL_SUBJECT: &str = "lymphd.cancel";

/// Settings of the ZeroMQ transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// The address to bind and to advertise in the endpoint (`tcp://ip:port`).
    pub ip: String,
    /// 0: a random free port in lymph's range (35536..65535).
    pub port: u16,
    /// How long connecting to a peer may take before the call fails.
    pub connect_timeout: Duration,
    /// lymph's heartbeat: a `lymph.ping` to every peer this often.
    pub heartbeat_interval: Duration,
    /// A peer that sent nothing for this long is unresponsive (not chosen).
    pub unresponsive_after: Duration,
    /// Largest single frame accepted; larger messages are dropped with a log line.
    pub max_frame_bytes: usize,
    /// Largest whole message (all frames) accepted.
    pub max_message_bytes: usize,
    /// Incoming requests queued for the daemon before new ones are NACKed as overloaded.
    pub incoming_queue: usize,
    /// Bytes queued for one peer (written or not yet); past it, replies to the
    /// peer are dropped and calls to it fail as overloaded.
    pub peer_queue_bytes: usize,
    /// A peer that takes none of what is written to it for this long is disconnected.
    pub peer_write_timeout: Duration,
    /// An inbound connection that completes no frame for this long is closed;
    /// it also bounds the ZMTP greeting of a new connection (at most 10 s).
    pub idle_timeout: Duration,
    /// Inbound connections on the port at once; past it new ones are closed.
    pub max_connections: usize,
    /// Networks whose connections the port accepts; empty means any.
    pub allowed_peers: Vec<ipnet::IpNet>,
}

/// A request to send to another container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// `Interface.method`
    pub subject: String,
    /// MessagePack map of keyword arguments, forwarded untouched.
    pub body: Bytes,
    pub trace_id: String,
    /// The exact version of the chosen instance, for the `version` header.
    pub version: Option<String>,
    /// The chosen instance's identity, for the `lymphd_identity` header
    /// (set only where the answer depends on the app, e.g. `lymph.inspect`).
    pub identity: Option<String>,
    /// When the caller stops waiting; its `timeout` is the time left as the
    /// request leaves (the `lymphd_deadline_ms` header).
    pub deadline: crate::deadline::Deadline,
    /// The caller's span (the `lymphd_traceparent` header).
    pub traceparent: Option<crate::spans::TraceParent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Rep,
    Ack,
    Nack,
    Error,
}

/// lymphd's reason for a NACK: an error kind (on the wire its
/// `error::kind_name`, e.g. `unknown_method`) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NackReason {
    pub kind: crate::error::ErrorKind,
    pub message: String,
}

/// The first reply to an outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingReply {
    pub kind: ReplyKind,
    /// REP/ACK: the return value. ERROR: lymph's `{type, message}` map (see
    /// `frame::decode_error_body`). NACK: nil.
    pub body: Bytes,
    pub trace_id: Option<String>,
    /// Present when the peer is a lymphd that said why it NACKed.
    pub reason: Option<NackReason>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("no reply from {endpoint} within {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("{endpoint} is not reading: {queued} bytes are queued for it already")]
    Overloaded { endpoint: String, queued: usize },
    #[error("message too large: {size} bytes, the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid endpoint {0:?}: expected tcp://IP:PORT")]
    BadEndpoint(String),
    #[error("cannot bind {endpoint}: {reason}")]
    Bind { endpoint: String, reason: String },
    #[error("the rpc transport is closed")]
    Closed,
    #[error("the caller cancelled the call")]
    Cancelled,
}

/// The daemon's answer to an incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// REP with the return value; `version` of the interface that handled it.
    Rep {
        body: Bytes,
        version: Option<String>,
    },
    /// lymph's ERROR: a typed error raised by the handler.
    Error {
        error_type: String,
        message: String,
        version: Option<String>,
    },
    /// lymph's NACK before an interface was chosen (unknown interface or
    /// method, bad version, refused), with lymphd's reason in an extra
    /// header and no `version`.
    Nack(NackReason),
    /// lymph's NACK from the interface that took the request (bad
    /// arguments, the handler failed or timed out): with its `version`.
    NackFrom {
        reason: NackReason,
        version: Option<String>,
    },
}

/// Sends the one response to an incoming request. Dropping it unanswered
/// sends a NACK (`internal`), so a caller never waits for nothing.
pub struct Responder {
    reply: Option<Box<dyn FnOnce(Response) + Send>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("answered", &self.reply.is_none())
            .finish()
    }
}

impl Responder {
    /// Answers by calling `reply` in the responding task: the transport
    /// queues the reply from there, with no task of its own per request.
    pub fn with(reply: impl FnOnce(Response) + Send + 'static) -> Responder {
        Responder {
            reply: Some(Box::new(reply)),
        }
    }

    pub fn respond(mut self, response: Response) {
        if let Some(reply) = self.reply.take() {
            reply(response);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            reply(Response::Nack(NackReason {
                kind: crate::error::ErrorKind::Internal,
                message: "the daemon dropped the request unanswered".to_owned(),
            }));
        }
    }
}

/// A request that arrived from another container, for the daemon to dispatch.
#[derive(Debug)]
pub struct IncomingRequest {
    /// The caller's endpoint and its id for the request: what a later
    /// `lymphd.cancel` from that caller names.
    pub from: String,
    pub id: String,
    /// `Interface.method`
    pub subject: String,
    pub body: Bytes,
    pub trace_id: String,
    /// The `version` header: the exact interface version the caller picked.
    pub version: Option<String>,
    /// The caller's time left (`lymphd_deadline_ms`); `None` from Python lymph.
    pub deadline: Option<Duration>,
    /// The `lymphd_identity` header: the app a lymphd caller picked.
    pub identity: Option<String>,
    /// The `lymphd_traceparent` header: the caller's span.
    pub traceparent: Option<crate::spans::TraceParent>,
    pub responder: Responder,
}

/// What runs with the first reply to a request started with
/// `Remote::start_request`, or with its failure (deadline, peer gone).
pub type ReplyDone = Box<dyn FnOnce(Result<IncomingReply, RpcError>) + Send>;

/// What the transport knows of a peer, for choosing among instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Completed a handshake or sent something within `unresponsive_after`.
    Verified,
    /// Never reached yet, or being reached for less than `unresponsive_after`.
    Unverified,
    /// Silent past `unresponsive_after`: since it was last heard, or since it
    /// was first tried when it was never heard.
    Dead,
}

/// Outgoing calls to other containers: what the dispatcher needs of the
/// transport. The ZeroMQ transport's client handle implements it.
#[async_trait::async_trait]
pub trait Remote: Send + Sync + 'static {
    /// This daemon's own endpoint (`tcp://ip:port`), also its ZeroMQ identity.
    fn endpoint(&self) -> &str;

    /// What is known of `endpoint`'s liveness, for choosing instances.
    fn liveness(&self, endpoint: &str) -> Liveness;

    /// Peers known now, by liveness: verified, unverified, dead (the
    /// `lymphd_peers` gauge).
    fn peer_counts(&self) -> [u64; 3];

    /// lymph's liveness: false only for a peer known to be dead.
    #[cfg(test)]
    fn is_alive(&self, endpoint: &str) -> bool {
        self.liveness(endpoint) != Liveness::Dead
    }

    /// Starts verifying an endpoint never reached yet (connect, then
    /// `lymph.ping`, as the heartbeat does), so it becomes verified or known
    /// dead without a call going there first. A no-op for a known peer.
    fn probe(&self, endpoint: &str);

    /// Sends a request without waiting: `done` runs once, in the task that
    /// sees the reply, or with the failure (at once, past `request.deadline`,
    /// the peer gone). No task and no timer per call: the one start path.
    /// Returns the request's id while it waits (`None`: `done` ran already).
    fn start_request(
        &self,
        endpoint: &str,
        request: OutgoingRequest,
        done: ReplyDone,
    ) -> Option<String>;

    /// Ends a waiting request because its caller gave up (`done` runs with
    /// `Cancelled`); with `tell_peer` the peer (a lymphd) is sent
    /// `lymphd.cancel` naming it, so its app is told too.
    fn cancel_request(&self, endpoint: &str, request_id: &str, tell_peer: bool);

    /// `start_request`, waiting for the first reply (the transport's deadline
    /// sweep ends it past `request.deadline`).
    async fn request(
        &self,
        endpoint: &str,
        request: OutgoingRequest,
    ) -> Result<IncomingReply, RpcError> {
        let (tx, rx) = oneshot::channel();
        self.start_request(
            endpoint,
            request,
            Box::new(move |result| {
                // The waiter may have gone (its caller gave up).
                let _ = tx.send(result);
            }),
        );
        rx.await.unwrap_or(Err(RpcError::Closed))
    }
}
