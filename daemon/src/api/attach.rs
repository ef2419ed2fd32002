//! The `Attach` stream: reads the app's `Hello`, opens its session, then feeds
//! every later message to the session or the dispatcher until the stream ends,
//! when the app is unregistered and its calls in flight fail at once.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt};
use lymph_proto::v1 as pb;
use lymph_proto::v1::app_message::Kind as In;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use super::{BoxStream, convert};
use crate::attach::{AppSession, SessionLimits};
use crate::daemon::State;
use crate::dispatch::Call;
use crate::error::{CallError, ErrorKind};
use crate::server::conn::LocalPeer;
use crate::trace;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// Messages from an app handled per turn of its stream's loop, at most.
const BATCH: usize = 64;

static REFUSED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
/// Refused Hellos: a client may send them in a loop.
static BAD_HELLO: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// Starts serving one app's stream; returns the daemon's half at once. Takes
/// one of `slots` for the stream's life, or refuses it when none is left.
/// `peer` (the stream's connection) is marked arrived when the app said an
/// admitted `Hello`.
pub fn open(
    state: Arc<State>,
    slots: Arc<Semaphore>,
    peer: Option<LocalPeer>,
    inbound: Streaming<pb::AppMessage>,
) -> Result<BoxStream<pb::DaemonMessage>, Status> {
    if state.draining.is_cancelled() {
        return Err(Status::unavailable("lymphd is shutting down"));
    }
    let Ok(slot) = slots.try_acquire_owned() else {
        let max = state.config.apps.max_connections;
        warn_limited!(
            REFUSED,
            max_connections = max,
            "refused an Attach stream: apps.max_connections streams are open"
        );
        return Err(Status::resource_exhausted(format!(
            "lymphd has {max} apps attached, its limit (apps.max_connections)"
        )));
    };
    let (tx, rx) = mpsc::channel(state.config.apps.outbox_capacity);
    let closed = CancellationToken::new();
    let stream = ReceiverStream::new(rx).take_until(closed.clone().cancelled_owned());
    let tracker = state.tasks.clone();
    tracker.spawn(async move {
        let _slot = slot;
        serve(state, peer, inbound, tx, closed).await;
    });
    Ok(Box::pin(stream))
}

async fn serve(
    state: Arc<State>,
    peer: Option<LocalPeer>,
    mut inbound: Streaming<pb::AppMessage>,
    tx: crate::attach::Outbox,
    closed: CancellationToken,
) {
    let hello_timeout = state.config.apps.hello_timeout;
    let hello = match tokio::time::timeout(hello_timeout, inbound.message()).await {
        Ok(Ok(Some(pb::AppMessage {
            kind: Some(In::Hello(hello)),
        }))) => hello,
        Ok(Ok(None)) | Ok(Err(_)) => return,
        Ok(Ok(Some(_))) => {
            reject(
                &tx,
                ErrorKind::Invalid,
                "the first message on Attach must be Hello",
            )
            .await;
            return;
        }
        Err(_) => {
            reject(&tx, ErrorKind::Invalid, "no Hello within the hello timeout").await;
            return;
        }
    };
    if hello.http_port > u32::from(u16::MAX) {
        let reason = format!("http_port {} is not a port (1-65535)", hello.http_port);
        warn_limited!(BAD_HELLO, app = %crate::names::shown(&hello.app_name), error = %reason, "refused an app");
        reject(&tx, ErrorKind::Invalid, &reason).await;
        return;
    }
    let spec = convert::spec_from_hello(hello);
    let checked = spec
        .validate()
        .map_err(|e| e.to_string())
        .and_then(|()| crate::web::check_routes(&spec).map_err(|e| e.to_string()));
    if let Err(e) = checked {
        warn_limited!(BAD_HELLO, app = %crate::names::shown(&spec.app_name), error = %e, "refused an app");
        reject(&tx, ErrorKind::Invalid, &e).await;
        return;
    }
    let cred = peer.as_ref().map(|peer| &peer.cred);
    let names = spec.interfaces.iter().map(|i| i.name.as_str());
    if let Err(denied) = crate::access::admit_app(&state.config, cred, names) {
        reject(&tx, ErrorKind::Invalid, &denied.to_string()).await;
        return;
    }
    if let Some(peer) = &peer {
        peer.arrival.set();
    }
    let apps = &state.config.apps;
    let max_concurrency = match spec.max_concurrency {
        0 => apps.default_concurrency,
        asked => asked.min(apps.max_concurrency),
    };
    let limits = SessionLimits {
        max_concurrency,
        max_outgoing: apps.max_outgoing,
    };
    let identity = trace::new_id();
    let sweep = state.sessions.sweep();
    let session = AppSession::new(identity.clone(), spec, limits, tx, closed, sweep);
    let session = Arc::new(session.with_peer(peer.map(|peer| peer.cred)));
    // Tools that serve nothing (lymphctl) log nothing worth a port.
    if !session.spec.interfaces.is_empty() {
        let whose = format!("app {}", session.spec.app_name);
        if let Some(port) = crate::logs::open_port(&state.config, &whose).await {
            let _ = session.log.set(port);
        }
    }
    state.sessions.insert(session.clone());
    session.push(Out::Welcome(pb::Welcome {
        identity: identity.clone(),
        endpoint: state.me.endpoint.clone(),
        daemon_version: crate::VERSION.to_owned(),
        max_concurrency,
        max_body_bytes: state.config.rpc.max_body_bytes as u64,
    }));
    let names: Vec<&str> = session
        .spec
        .interfaces
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let uid = session.peer.as_ref().map(|peer| peer.uid);
    info!(app = %session.spec.app_name, identity = %identity, pid = session.spec.pid,
          uid = ?uid, interfaces = ?names, "app attached");

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
            if !step(&state, &session, message).await {
                break 'serve;
            }
            taken += 1;
            if taken < BATCH {
                next = inbound.message().now_or_never();
            }
        }
    }
    detach(&state, &session).await;
}

/// Handles one read from the app's stream; `false` when the stream is done.
async fn step(
    state: &Arc<State>,
    session: &Arc<AppSession>,
    message: Result<Option<pb::AppMessage>, Status>,
) -> bool {
    match message {
        Ok(Some(pb::AppMessage { kind: Some(kind) })) => {
            if let Err(e) = handle(state, session, kind).await {
                warn!(app = %session.spec.app_name, error = %e, "closing the app's stream");
                session
                    .send(Out::Rejected(pb::Rejected {
                        error: Some(e.to_pb()),
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

async fn reject(tx: &crate::attach::Outbox, kind: ErrorKind, message: &str) {
    let error = CallError::new(kind, message).to_pb();
    let rejected = pb::DaemonMessage {
        kind: Some(Out::Rejected(pb::Rejected { error: Some(error) })),
    };
    // Bounded: the app may already be gone.
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Ok(rejected))).await;
}

/// Handles one message of an attached app. An error closes the stream.
async fn handle(state: &Arc<State>, session: &Arc<AppSession>, kind: In) -> Result<(), CallError> {
    match kind {
        In::Hello(_) => {
            return Err(CallError::new(
                ErrorKind::Invalid,
                "Hello sent twice on one stream",
            ));
        }
        In::Ready(_) => {
            if session.mark_ready() {
                crate::attach::consume::start(&state.bus, session, &state.tasks, &state.metrics)
                    .await
                    .map_err(super::events::event_error)?;
                // Invalid: a port in use or taken is the app's setup, not a
                // passing failure, so the SDK stops instead of reconnecting.
                state
                    .web
                    .join(session.clone())
                    .await
                    .map_err(|e| CallError::new(ErrorKind::Invalid, crate::error_chain(&e)))?;
                state
                    .register_app(session)
                    .await
                    .map_err(|e| CallError::new(ErrorKind::Internal, e.to_string()))?;
            }
        }
        In::Reply(reply) => {
            let outcome = match reply.outcome {
                Some(pb::reply::Outcome::Body(body))
                    if body.len() > state.config.rpc.max_body_bytes =>
                {
                    Err(CallError::new(
                        ErrorKind::TooLarge,
                        format!(
                            "reply body is {} bytes, the limit is {} (rpc.max_body_bytes)",
                            body.len(),
                            state.config.rpc.max_body_bytes
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
        In::Call(call) => outgoing_call(state, session, call),
        In::Emit(emit) => outgoing_emit(state, session, emit),
        In::Ack(ack) => match session.settle(ack.delivery_id, None) {
            Some((event_type, step)) => state.metrics.event(step, &event_type),
            None => {
                debug!(app = %session.spec.app_name, id = ack.delivery_id, "ack of no delivery held")
            }
        },
        In::Fail(fail) => {
            debug!(app = %session.spec.app_name, id = fail.delivery_id, reason = %crate::names::shown(&fail.reason), "delivery failed");
            match session.settle(fail.delivery_id, Some(fail.reason)) {
                Some((event_type, step)) => state.metrics.event(step, &event_type),
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
            state.unregister_app(session).await;
        }
    }
    Ok(())
}

/// Runs one of the app's own calls in its own task; the result goes back on the stream.
fn outgoing_call(state: &Arc<State>, session: &Arc<AppSession>, call: pb::OutgoingCall) {
    if let Err(e) =
        crate::names::check_call(&call.service, &call.method, &call.version, &call.trace_id)
    {
        let error = CallError::from(e);
        session.push(Out::CallResult(pb::CallResult {
            id: call.id,
            outcome: Some(pb::call_result::Outcome::Error(error.to_pb())),
            trace_id: String::new(),
        }));
        return;
    }
    let Ok(permit) = session.outgoing.clone().try_acquire_owned() else {
        let error = CallError::new(
            ErrorKind::Overloaded,
            format!(
                "too many calls in flight from this app (apps.max_outgoing = {})",
                session.limits.max_outgoing
            ),
        );
        session.push(Out::CallResult(pb::CallResult {
            id: call.id,
            outcome: Some(pb::call_result::Outcome::Error(error.to_pb())),
            trace_id: call.trace_id,
        }));
        return;
    };
    let trace_id = trace::or_new(&call.trace_id);
    let id = call.id;
    let call = Call {
        service: call.service,
        method: call.method,
        body: call.body,
        trace_id: trace_id.clone(),
        timeout: Some(Duration::from_millis(u64::from(call.timeout_ms))),
        version: Some(call.version).filter(|v| !v.is_empty()),
    };
    let answer = {
        let (state, session) = (state.clone(), session.clone());
        move |result: Result<crate::dispatch::Answer, CallError>| {
            drop(permit);
            let outcome = match result {
                Ok(answer) => pb::call_result::Outcome::Body(answer.body),
                Err(e) => pb::call_result::Outcome::Error(e.to_pb()),
            };
            let result = Out::CallResult(pb::CallResult {
                id,
                outcome: Some(outcome),
                trace_id,
            });
            deliver(&state, &session, result);
        }
    };
    state.dispatcher.start(call, Box::new(answer));
}

/// Queues a message for the app; when its outbox is full, waits for room in
/// a task (bounded by the session: it ends when the app goes).
fn deliver(state: &Arc<State>, session: &Arc<AppSession>, kind: Out) {
    if let Some(kind) = session.try_push(kind) {
        let session = session.clone();
        state.tasks.spawn(async move {
            session.send(kind).await;
        });
    }
}

/// Publishes one of the app's emits in its own task; the result goes back on the stream.
fn outgoing_emit(state: &Arc<State>, session: &Arc<AppSession>, emit: pb::OutgoingEmit) {
    let Ok(permit) = session.outgoing.clone().try_acquire_owned() else {
        let error = CallError::new(
            ErrorKind::Overloaded,
            format!(
                "too many calls and emits in flight from this app (apps.max_outgoing = {})",
                session.limits.max_outgoing
            ),
        );
        session.push(Out::EmitResult(pb::EmitResult {
            id: emit.id,
            error: Some(error.to_pb()),
            event_id: String::new(),
        }));
        return;
    };
    let state = state.clone();
    let session = session.clone();
    state.tasks.clone().spawn(async move {
        let _permit = permit;
        let trace_id = trace::or_new(&emit.trace_id);
        let result =
            super::events::emit(&state, emit.event_type, emit.body, trace_id, emit.delay_ms).await;
        let (error, event_id) = match result {
            Ok(event_id) => (None, event_id),
            Err(e) => (Some(e.to_pb()), String::new()),
        };
        session
            .send(Out::EmitResult(pb::EmitResult {
                id: emit.id,
                error,
                event_id,
            }))
            .await;
    });
}

async fn detach(state: &Arc<State>, session: &Arc<AppSession>) {
    state.sessions.remove(&session.identity);
    state.web.leave(&session.identity);
    // Unregister first so nobody routes to the app, then fail what is in flight.
    state.unregister_app(session).await;
    let in_flight = session.in_flight();
    session.close();
    info!(app = %session.spec.app_name, identity = %session.identity,
          failed_in_flight = in_flight, "app detached");
}
