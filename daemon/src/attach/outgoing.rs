//! An app's own calls and emits, sent on its stream: each bounded by
//! `apps.max_outgoing`, started without waiting, and answered on the stream
//! (`CallResult`, `EmitResult`) when its outcome arrives.

use std::sync::Arc;
use std::time::Duration;

use lymph_proto::v1 as pb;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio_util::task::TaskTracker;

use super::{AppSession, Attacher};
use crate::dispatch::{Call, CallHandle};
use crate::error::{CallError, ErrorKind};
use crate::spans::traceparent;
use crate::trace;

/// Runs one of the app's own calls in its own task; the result goes back on the stream.
pub(super) fn call(attacher: &Arc<Attacher>, session: &Arc<AppSession>, call: pb::OutgoingCall) {
    if let Err(e) =
        crate::names::check_call(&call.service, &call.method, &call.version, &call.trace_id)
    {
        let error = CallError::from(e);
        session.push(Out::CallResult(pb::CallResult {
            id: call.id,
            outcome: Some(pb::call_result::Outcome::Error(error.into_pb())),
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
            outcome: Some(pb::call_result::Outcome::Error(error.into_pb())),
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
        parent: traceparent::parse_given(&call.traceparent),
    };
    // Placed before the call starts: its outcome may come at once, and then
    // takes the place away again, so no handle outlives its call.
    let handle = CallHandle::default();
    session.call_started(id, handle.clone());
    let answer = {
        let (tasks, session) = (attacher.tasks.clone(), session.clone());
        move |result: Result<crate::dispatch::Answer, CallError>| {
            drop(permit);
            session.call_ended(id);
            let outcome = match result {
                Ok(answer) => pb::call_result::Outcome::Body(answer.body),
                Err(e) => pb::call_result::Outcome::Error(e.into_pb()),
            };
            let result = Out::CallResult(pb::CallResult {
                id,
                outcome: Some(outcome),
                trace_id,
            });
            deliver(&tasks, &session, result);
        }
    };
    attacher
        .dispatcher
        .start_with(call, handle, Box::new(answer));
}

/// The app gave up on its call `id`: the call is cancelled wherever it is.
pub(super) fn cancel(session: &AppSession, id: u64) {
    match session.call(id) {
        Some(handle) => handle.cancel(),
        None => tracing::debug!(app = %session.spec.app_name, id, "cancel of no call in flight"),
    }
}

/// Queues a message for the app; when its outbox is full, waits for room in
/// a task (bounded by the session: it ends when the app goes).
fn deliver(tasks: &TaskTracker, session: &Arc<AppSession>, kind: Out) {
    if let Some(kind) = session.try_push(kind) {
        let session = session.clone();
        tasks.spawn(async move {
            session.send(kind).await;
        });
    }
}

/// Publishes one of the app's emits in its own task; the result goes back on the stream.
pub(super) fn emit(attacher: &Arc<Attacher>, session: &Arc<AppSession>, emit: pb::OutgoingEmit) {
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
            error: Some(error.into_pb()),
            event_id: String::new(),
        }));
        return;
    };
    let emitter = attacher.emitter.clone();
    let session = session.clone();
    attacher.tasks.spawn(async move {
        let _permit = permit;
        let trace_id = trace::or_new(&emit.trace_id);
        let parent = traceparent::parse_given(&emit.traceparent);
        let result = emitter
            .emit(emit.event_type, emit.body, trace_id, emit.delay_ms, parent)
            .await;
        let (error, event_id) = match result {
            Ok(event_id) => (None, event_id),
            Err(e) => (Some(e.into_pb()), String::new()),
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
