//! What happens to each message arriving on the bound port (the "recv
//! socket", read by `receiver`): decoded within the limits, `lymph.ping`
//! answered here, replies completing their waiting calls, other requests
//! handed to the daemon with where to send their answer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::debug;

use super::peers::{Outgoing, Shared};
use super::queue::Refused;
use crate::error::ErrorKind;
use crate::rpc::frame::{self, Headers, Message, MessageType};
use crate::rpc::{IncomingReply, IncomingRequest, NackReason, ReplyKind, Responder, Response};
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// One line per interval about replies dropped for a full peer queue.
static DROPPED: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// The version lymph 0.15 puts on replies of its built-in `lymph.*` methods.
const LYMPH_VERSION: &str = "0.15.0";

/// The last peer whose liveness was noted in one read of a connection.
#[derive(Default)]
pub(super) struct Heard(Option<String>);

impl Heard {
    /// Notes that `from` is alive, unless it was the last one noted.
    fn note(&mut self, shared: &Shared, from: &str) {
        if self.0.as_deref() != Some(from) {
            shared.heard_from(from);
            self.0 = Some(from.to_owned());
        }
    }
}

/// Handles one received message: `frames[0]` is the sender's identity.
pub(super) fn handle(
    shared: &Arc<Shared>,
    incoming: &mpsc::Sender<IncomingRequest>,
    frames: Vec<Bytes>,
    heard: &mut Heard,
) {
    let (from, message) = match frame::decode(&frames, &shared.limits) {
        Ok(decoded) => decoded,
        Err(error) => {
            // Debug level: a misbehaving peer must not be able to flood the log.
            let sender = frames
                .first()
                .map(|f| String::from_utf8_lossy(f).into_owned());
            debug!(sender = ?sender, %error, "dropped a malformed rpc message");
            return;
        }
    };
    heard.note(shared, &from);
    let kind = match message.kind {
        MessageType::Req => return on_request(shared, incoming, from, message),
        MessageType::Rep => ReplyKind::Rep,
        MessageType::Ack => ReplyKind::Ack,
        MessageType::Nack => ReplyKind::Nack,
        MessageType::Error => ReplyKind::Error,
    };
    let reply = IncomingReply {
        kind,
        body: message.body,
        trace_id: message.headers.trace_id,
        reason: message.headers.reason,
    };
    // No waiting call: a heartbeat reply, a late or duplicate reply. Dropped.
    shared.resolve(&message.subject, Ok(reply));
}

fn on_request(
    shared: &Arc<Shared>,
    incoming: &mpsc::Sender<IncomingRequest>,
    from: String,
    message: Message,
) {
    let trace_id = message
        .headers
        .trace_id
        .unwrap_or_else(frame::new_message_id);
    if message.subject == "lymph.ping" {
        let headers = Headers {
            trace_id: Some(trace_id),
            version: Some(LYMPH_VERSION.to_owned()),
            ..Headers::default()
        };
        let body = frame::ping_payload(&message.body);
        return send_reply(shared, &from, &message.id, MessageType::Rep, headers, body);
    }
    let reply_to = ReplyTo {
        shared: shared.clone(),
        peer: from.clone(),
        request_id: message.id.clone(),
        trace_id: trace_id.clone(),
    };
    // The responder queues the reply from the task that answers: no task
    // spawned per request just to wait for its answer.
    let request = IncomingRequest {
        from,
        id: message.id,
        subject: message.subject,
        body: message.body,
        trace_id,
        version: message.headers.version,
        identity: message.headers.identity,
        deadline: message.headers.deadline_ms.map(Duration::from_millis),
        traceparent: message.headers.traceparent,
        responder: Responder::with(move |response| reply_to.send(response)),
    };
    // try_send: the receive loop never waits for the daemon; a full queue is
    // answered with an immediate NACK so the caller fails fast.
    let (request, refused) = match incoming.try_send(request) {
        Ok(()) => return,
        Err(mpsc::error::TrySendError::Full(request)) => (
            request,
            (ErrorKind::Overloaded, "the daemon's request queue is full"),
        ),
        Err(mpsc::error::TrySendError::Closed(request)) => (
            request,
            (ErrorKind::ShuttingDown, "the daemon is not taking requests"),
        ),
    };
    request.responder.respond(Response::Nack(NackReason {
        kind: refused.0,
        message: refused.1.to_owned(),
    }));
}

/// Where the answer to one incoming request goes.
struct ReplyTo {
    shared: Arc<Shared>,
    peer: String,
    request_id: String,
    trace_id: String,
}

impl ReplyTo {
    fn send(self, response: Response) {
        let mut headers = Headers {
            trace_id: Some(self.trace_id),
            ..Headers::default()
        };
        let (kind, body) = match response {
            // As lymph's: every reply from an interface names its version
            // (nil when unversioned); a refusal before one was chosen does not.
            Response::Rep { body, version } => {
                headers.version = version;
                headers.nil_version = true;
                (MessageType::Rep, body)
            }
            Response::Error {
                error_type,
                message,
                version,
            } => {
                headers.version = version;
                headers.nil_version = true;
                let body = frame::encode_error_body(&error_type, &message);
                (MessageType::Error, body)
            }
            Response::Nack(reason) => {
                headers.reason = Some(reason);
                (MessageType::Nack, Bytes::from_static(frame::NIL))
            }
            Response::NackFrom { reason, version } => {
                headers.reason = Some(reason);
                headers.version = version;
                headers.nil_version = true;
                (MessageType::Nack, Bytes::from_static(frame::NIL))
            }
        };
        let (kind, body) = if body.len() > self.shared.limits.max_frame_bytes {
            // The interface was chosen: the NACK keeps its version.
            headers.reason = Some(NackReason {
                kind: ErrorKind::TooLarge,
                message: format!(
                    "the reply is {} bytes, the limit is {}",
                    body.len(),
                    self.shared.limits.max_frame_bytes
                ),
            });
            (MessageType::Nack, Bytes::from_static(frame::NIL))
        } else {
            (kind, body)
        };
        send_reply(
            &self.shared,
            &self.peer,
            &self.request_id,
            kind,
            headers,
            body,
        );
    }
}

/// Queues a reply on the sender's connection (the sender's identity is its
/// endpoint). try_send: a peer whose queue is full (in messages or bytes)
/// loses the reply (counted) and times out, rather than stalling the receive
/// loop or growing the daemon.
fn send_reply(
    shared: &Arc<Shared>,
    peer: &str,
    request_id: &str,
    kind: MessageType,
    headers: Headers,
    body: Bytes,
) {
    let message = Message {
        id: frame::new_message_id(),
        kind,
        subject: request_id.to_owned(),
        headers,
        body,
    };
    let outgoing = Outgoing::encode(&message, None);
    let queue = match shared.conn_for(peer) {
        Ok(queue) => queue,
        Err(error) => {
            debug!(%peer, %error, "reply dropped");
            return;
        }
    };
    match queue.try_send(outgoing) {
        Ok(()) => {}
        Err(Refused::Closed) => debug!(%peer, "reply dropped: connection closed"),
        Err(Refused::Full(_) | Refused::OverBytes { .. }) => {
            let dropped_total = shared.dropped_replies.fetch_add(1, Ordering::Relaxed) + 1;
            warn_limited!(DROPPED, %peer, dropped_total,
                "reply dropped: the peer's queue is full (rpc.peer_queue_bytes)");
        }
    }
}
