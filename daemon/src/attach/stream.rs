//! An attached app's stream after its `Hello`: every message is handed to
//! its session (replies, acks), the dispatcher (its calls) or the emitter
//! (its emits) until the stream ends, when the app is unregistered and its
//! work in flight fails at once.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use lymph_proto::v1 as pb;
use lymph_proto::v1::app_message::Kind as In;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use super::{AppSession, Attacher, Outbox, handshake, outgoing};
use crate::error::{CallError, ErrorKind};
use crate::server::conn::LocalPeer;

/// Messages from an app handled per turn of its stream's loop, at most.
const BATCH: usize = 64;

/// Serves one app's stream from its `Hello` to its end, then detaches it.
pub(super) async fn serve(
    attacher: Arc<Attacher>,
    peer: Option<LocalPeer>,
    mut inbound: Streaming<pb::AppMessage>,
    tx: Outbox,
    closed: CancellationToken,
) {
    let accepted = handshake::accept(&attacher, peer, &mut inbound, tx, closed).await;
    let Some(session) = accepted else {
        return;
    };
    'serve: loop {
        let message = tokio::select! {
            m = inbound.message() => m,
            () = session.closed.cancelled() => break,
        };
        // Under load more messages have arrived already: take them in this
        // turn (a bounded number) rather than one select each.
        let mut next = Some(message);
        let mut taken = 0;
        while let Some(message) = next.take() {
            if !step(&attacher, &session, message).await {
                break 'serve;
            }
            taken += 1;
            if taken < BATCH {
                next = inbound.message().now_or_never();
            }
        }
    }
    detach(&attacher, &session).await;
}

/// Handles one read from the app's stream; `false` when the stream is done.
async fn step(
    attacher: &Arc<Attacher>,
    session: &Arc<AppSession>,
    message: Result<Option<pb::AppMessage>, Status>,
) -> bool {
    match message {
        Ok(Some(pb::AppMessage { kind: Some(kind) })) => {
            if let Err(e) = handle(attacher, session, kind).await {
                warn!(app = %session.spec.app_name, error = %e, "closing the app's stream");
                session
                    .send(Out::Rejected(pb::Rejected {
                        error: Some(e.into_pb()),
                    }))
                    .await;
                session.flush(Duration::from_secs(1)).await;
                return false;
            }
            true
        }
        Ok(Some(pb::AppMessage { kind: None })) => true,
        Ok(None) => false,
        Err(status) => {
            // An app that dies mid-stream is normal life for a sidecar.
            debug!(app = %session.spec.app_name, %status, "app stream ended with an error");
            false
        }
    }
}

/// Handles one message of an attached app. An error closes the stream.
async fn handle(
    attacher: &Arc<Attacher>,
    session: &Arc<AppSession>,
    kind: In,
) -> Result<(), CallError> {
    match kind {
        In::Hello(_) => {
            return Err(CallError::new(
                ErrorKind::Invalid,
                "Hello sent twice on one stream",
            ));
        }
        In::Ready(_) => {
            if session.mark_ready() {
                ready(attacher, session).await?;
            }
        }
        In::Reply(reply) => {
            let outcome = match reply.outcome {
                Some(pb::reply::Outcome::Body(body))
                    if body.len() > attacher.config.rpc.max_body_bytes =>
                {
                    Err(CallError::new(
                        ErrorKind::TooLarge,
                        format!(
                            "reply body is {} bytes, the limit is {} (rpc.max_body_bytes)",
                            body.len(),
                            attacher.config.rpc.max_body_bytes
                        ),
                    ))
                }
                Some(pb::reply::Outcome::Body(body)) => Ok(body),
                Some(pb::reply::Outcome::Error(e)) => Err(crate::error::CallError::from_pb(e)),
                None => Ok(bytes::Bytes::new()),
            };
            if !session.complete(reply.id, outcome) {
                debug!(app = %session.spec.app_name, id = reply.id, "reply to no request in flight (late or unknown)");
            }
        }
        In::Call(call) => outgoing::call(attacher, session, call),
        In::CancelCall(cancel) => outgoing::cancel(session, cancel.id),
        In::Emit(emit) => outgoing::emit(attacher, session, emit),
        In::Ack(ack) => match session.settle(ack.delivery_id, None) {
            Some(s) => settled(attacher, s),
            None => {
                debug!(app = %session.spec.app_name, id = ack.delivery_id, "ack of no delivery held")
            }
        },
        In::Fail(fail) => {
            debug!(app = %session.spec.app_name, id = fail.delivery_id, reason = %crate::names::shown(&fail.reason), "delivery failed");
            match session.settle(fail.delivery_id, Some(fail.reason)) {
                Some(s) => settled(attacher, s),
                None => {
                    debug!(app = %session.spec.app_name, id = fail.delivery_id, "fail of no delivery held")
                }
            }
        }
        In::HttpResponse(response) => {
            let id = response.id;
            if !session.complete_http(response) {
                debug!(app = %session.spec.app_name, id, "http response to no request in flight (late or unknown)");
            }
        }
        In::Log(record) => {
            if let Some(port) = session.log.get() {
                port.sink.publish(record);
            }
        }
        In::Goodbye(_) => {
            info!(app = %session.spec.app_name, "app is stopping; unregistering it");
            session.mark_not_ready();
            session.stop_consuming.cancel();
            attacher.registrar.unregister(session).await;
        }
    }
    Ok(())
}

/// A delivery the app acked or failed: its metrics and its span.
fn settled(attacher: &Attacher, s: super::session::Settled) {
    attacher
        .metrics
        .event_settled(s.step, &s.event_type, s.held);
    if let Some(open) = s.span {
        let error = (s.step != crate::metrics::EventStep::Acked).then_some("handler_failed");
        let attributes = crate::emit::messaging_attributes(&s.event_type, "process");
        let name = format!("process {}", s.event_type);
        let spans = attacher.dispatcher.spans();
        spans.record(open.end(name, crate::spans::Kind::Consumer, attributes, error));
    }
}

/// An app that said Ready: its subscriptions consume, its web port opens,
/// its instances are registered (last, so nobody routes to it before).
async fn ready(attacher: &Attacher, session: &Arc<AppSession>) -> Result<(), CallError> {
    let (bus, tasks, metrics) = (&attacher.bus, &attacher.tasks, &attacher.metrics);
    let spans = attacher.dispatcher.spans();
    super::consume::start(bus, session, tasks, metrics, spans)
        .await
        .map_err(crate::emit::event_error)?;
    // Invalid: a port in use or taken is the app's setup, not a passing
    // failure, so the SDK stops instead of reconnecting.
    attacher
        .web
        .join(session.clone())
        .await
        .map_err(|e| CallError::new(ErrorKind::Invalid, crate::error_chain(&e)))?;
    attacher
        .registrar
        .register(session)
        .await
        .map_err(|e| CallError::new(ErrorKind::Internal, e.to_string()))
}

async fn detach(attacher: &Arc<Attacher>, session: &Arc<AppSession>) {
    attacher.sessions.remove(&session.identity);
    attacher.web.leave(&session.identity);
    // Unregister first so nobody routes to the app, then fail what is in flight.
    attacher.registrar.unregister(session).await;
    let in_flight = session.in_flight();
    for event_type in session.close() {
        attacher
            .metrics
            .event(crate::metrics::EventStep::Returned, &event_type);
    }
    info!(app = %session.spec.app_name, identity = %session.identity,
          failed_in_flight = in_flight, "app detached");
}
