//! What the link does with each message: daemon messages (requests, HTTP requests, deliveries,
//! results of the app's own calls, cancel, drain), commands from `Client`s, and
//! handlers that finished (their reply, ack or fail, panics included).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use lymph_proto::v1::{self, app_message, call_result, daemon_message, reply};
use tokio::task::{AbortHandle, JoinError};
use tracing::{Instrument as _, debug, error, info, info_span, warn};

use super::{Link, Map, Start};
use crate::client::{Client, Command};
use crate::context::Context;
use crate::error::{CallError, Error, ErrorKind};
use crate::event::Event;
use crate::interface::Interface;
use crate::service::ServiceError;

/// What a handler task returns.
pub(crate) enum Done {
    Reply(Result<Vec<u8>, Error>),
    Http(Result<crate::http::Response, Error>),
    Delivery(Result<(), Error>),
    Start(Result<(), ServiceError>),
}

/// Who waits for a running handler.
pub(crate) struct InFlight {
    generation: u64,
    work: Work,
    /// For the lines logged when it ends.
    trace_id: String,
}

enum Work {
    Request { id: u64, what: String },
    Http { id: u64, what: String },
    Delivery { delivery_id: u64, what: String },
    Start,
}

impl Link {
    /// An error only for a rejection the app cannot recover from by reconnecting.
    pub(super) async fn on_message(
        &mut self,
        message: v1::DaemonMessage,
    ) -> Result<(), ServiceError> {
        let Some(kind) = message.kind else {
            return Ok(());
        };
        match kind {
            daemon_message::Kind::Request(request) => self.on_request(request).await,
            daemon_message::Kind::Delivery(delivery) => self.on_delivery(delivery).await,
            daemon_message::Kind::CallResult(result) => {
                if let Some(waiter) = self.calls.remove(&result.id) {
                    let outcome = match result.outcome {
                        Some(call_result::Outcome::Body(body)) => Ok(body),
                        Some(call_result::Outcome::Error(e)) => Err(CallError::from_proto(e)),
                        None => Ok(bytes::Bytes::from_static(&[0xc0])),
                    };
                    let _ = waiter.send(outcome);
                }
            }
            daemon_message::Kind::EmitResult(result) => {
                if let Some(waiter) = self.emits.remove(&result.id) {
                    let outcome = match result.error {
                        Some(e) => Err(CallError::from_proto(e)),
                        None => Ok(result.event_id),
                    };
                    let _ = waiter.send(outcome);
                }
            }
            // The caller stopped waiting: the handler's future is dropped where
            // it waits, and no answer goes back (`on_done` sends none for a
            // request no longer in `requests`).
            daemon_message::Kind::Cancel(cancel) => {
                if let Some(handle) = self.requests.remove(&cancel.id) {
                    debug!(id = cancel.id, reason = %cancel.reason, "request cancelled");
                    handle.abort();
                }
            }
            daemon_message::Kind::Drain(drain) => {
                info!(
                    grace_ms = drain.grace_ms,
                    "lymphd is draining: finishing in-flight work"
                );
                self.draining = true;
            }
            daemon_message::Kind::Rejected(rejected) => {
                let reason = rejected.error.map(CallError::from_proto);
                // Invalid (a port in use, bad routes): reconnecting would be refused again.
                if let Some(error) = reason.clone().filter(|e| e.kind == ErrorKind::Invalid) {
                    return Err(ServiceError::Rejected {
                        socket: self.socket.clone(),
                        error,
                    });
                }
                error!(reason = ?reason, "lymphd rejected a message of the app");
            }
            daemon_message::Kind::HttpRequest(request) => self.on_http(request).await,
            daemon_message::Kind::Welcome(_) => debug!("ignoring a second welcome"),
        }
        Ok(())
    }

    async fn on_request(&mut self, request: v1::Request) {
        // Named in logs only if the handler fails; built by appending, not format!.
        let mut what = String::with_capacity(request.interface.len() + 1 + request.method.len());
        what.push_str(&request.interface);
        what.push('.');
        what.push_str(&request.method);
        let refusal = if self.draining || self.stopping.is_some() {
            Some(CallError::new(
                ErrorKind::ShuttingDown,
                "the app is stopping",
            ))
        } else if request.deadline_ms == 0 {
            // Its caller stops waiting now: not started.
            Some(CallError::new(
                ErrorKind::DeadlineExceeded,
                "no time was left when the request reached the app",
            ))
        } else if !self.interfaces.contains_key(&request.interface) {
            Some(CallError::new(
                ErrorKind::UnknownService,
                format!("this app does not serve {}", request.interface),
            ))
        } else {
            None
        };
        let (Some(client), Some(iface), None) = (
            self.client(),
            self.interfaces.get(&request.interface).cloned(),
            refusal.clone(),
        ) else {
            let error = refusal.unwrap_or_else(CallError::not_connected);
            let reply = reply_error(request.id, error);
            self.send(app_message::Kind::Reply(reply)).await;
            return;
        };
        let span = info_span!("rpc", trace_id = %request.trace_id);
        let trace_id = request.trace_id.clone();
        // The time left counts from now, when the request arrived.
        let deadline = Instant::now() + Duration::from_millis(u64::from(request.deadline_ms));
        let ctx = Context::new(client, request.trace_id)
            .with_traceparent(request.traceparent)
            .with_deadline(deadline);
        let v1::Request {
            id, method, body, ..
        } = request;
        let handler = async move {
            let outcome = iface.call(&ctx, &method, &body).await;
            Done::Reply(outcome.map_err(|e| failed_in_time(e, deadline)))
        }
        .instrument(span);
        if !self.inline_first_poll {
            return self.spawn_request(id, what, trace_id, handler);
        }
        // On a current-thread runtime a handler that answers without waiting
        // is answered here, without a task of its own; one that waits goes on
        // in a task from where it stopped.
        let mut handler = Box::pin(handler);
        let outcome = match poll_once(handler.as_mut()) {
            Ok(None) => return self.spawn_request(id, what, trace_id, handler),
            Ok(Some(done)) => Ok(done),
            Err(panic) => Err(panic),
        };
        let reply = request_reply(id, &what, &trace_id, outcome);
        self.send(app_message::Kind::Reply(reply)).await;
    }

    /// Runs a request's handler in a task of its own, cancellable by id.
    fn spawn_request(
        &mut self,
        id: u64,
        what: String,
        trace_id: String,
        handler: impl Future<Output = Done> + Send + 'static,
    ) {
        let handle = self.handlers.spawn(handler);
        self.requests.insert(id, handle.clone());
        self.track(handle.id(), Work::Request { id, what }, trace_id);
    }

    /// Runs a route handler in its own task, like an RPC request; its answer
    /// goes back as `HttpResponse` with the same id.
    async fn on_http(&mut self, request: v1::HttpRequest) {
        let iface = if request.interface.is_empty() && self.interfaces.len() == 1 {
            self.interfaces.values().next().cloned()
        } else {
            self.interfaces.get(&request.interface).cloned()
        };
        let stopping = self.draining || self.stopping.is_some();
        let (Some(client), Some(iface), false) = (self.client(), iface, stopping) else {
            let response = crate::http::Response::new(503, "the app cannot serve this now\n");
            self.send(app_message::Kind::HttpResponse(
                response.into_proto(request.id),
            ))
            .await;
            return;
        };
        let id = request.id;
        let trace_id = request.trace_id.clone();
        let what = format!("{} {} ({})", request.method, request.path, request.endpoint);
        let span = info_span!("http", trace_id = %request.trace_id);
        let ctx = Context::new(client, request.trace_id.clone())
            .with_traceparent(request.traceparent.clone());
        let request = crate::http::Request::from_proto(request);
        let handle = self
            .handlers
            .spawn(async move { Done::Http(iface.http(&ctx, request).await) }.instrument(span));
        self.requests.insert(id, handle.clone());
        self.track(handle.id(), Work::Http { id, what }, trace_id);
    }

    async fn on_delivery(&mut self, delivery: v1::Delivery) {
        let iface = self.interface_for(&delivery);
        let (Some(client), Some(iface), false) = (self.client(), iface, self.stopping.is_some())
        else {
            let fail = v1::Fail {
                delivery_id: delivery.delivery_id,
                reason: format!("this app cannot handle event {} now", delivery.event_type),
            };
            self.send(app_message::Kind::Fail(fail)).await;
            return;
        };
        let what = format!("{} on {}", delivery.event_type, iface.spec().name);
        let delivery_id = delivery.delivery_id;
        let trace_id = delivery.trace_id.clone();
        let ctx =
            Context::new(client, delivery.trace_id.clone()).with_traceparent(delivery.traceparent);
        let event = Event {
            event_type: delivery.event_type,
            body: delivery.body,
            trace_id: delivery.trace_id,
            attempt: delivery.attempt,
            event_id: delivery.event_id,
            handler: delivery.handler,
        };
        let span = info_span!("event", trace_id = %event.trace_id);
        let handle = self.handlers.spawn(
            async move { Done::Delivery(iface.deliver(&ctx, event).await) }.instrument(span),
        );
        self.track(handle.id(), Work::Delivery { delivery_id, what }, trace_id);
    }

    /// The interface a delivery names, or the only one when it names none.
    fn interface_for(&self, delivery: &v1::Delivery) -> Option<Arc<dyn Interface>> {
        if delivery.interface.is_empty() && self.interfaces.len() == 1 {
            return self.interfaces.values().next().cloned();
        }
        self.interfaces.get(&delivery.interface).cloned()
    }

    pub(super) async fn on_command(&mut self, command: Command) {
        if self.conn.is_none() {
            match command {
                Command::Call { reply, .. } => drop(reply.send(Err(CallError::not_connected()))),
                Command::Emit { reply, .. } => drop(reply.send(Err(CallError::not_connected()))),
                Command::Cancel { .. } => {}
            }
            return;
        }
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.sweep();
        match command {
            // The caller chose the call's id (unique in the process), so it
            // can name the call when it gives up.
            Command::Call { call, reply } => {
                self.calls.insert(call.id, reply);
                self.send(app_message::Kind::Call(call)).await;
            }
            Command::Cancel { id } => {
                if self.calls.remove(&id).is_some() {
                    self.send(app_message::Kind::CancelCall(v1::CancelCall { id }))
                        .await;
                }
            }
            Command::Emit { mut emit, reply } => {
                emit.id = id;
                self.emits.insert(id, reply);
                self.send(app_message::Kind::Emit(emit)).await;
            }
        }
    }

    /// Forgets callers that stopped waiting (their own timeout), so a daemon
    /// that never answers cannot grow the pending maps without bound.
    fn sweep(&mut self) {
        if self.calls.len() + self.emits.len() < self.sweep_at {
            return;
        }
        self.calls.retain(|_, waiter| !waiter.is_closed());
        self.emits.retain(|_, waiter| !waiter.is_closed());
        self.sweep_at = (2 * (self.calls.len() + self.emits.len())).max(1024);
    }

    pub(super) async fn on_done(
        &mut self,
        done: Result<(tokio::task::Id, Done), JoinError>,
    ) -> Result<(), ServiceError> {
        let (task, outcome) = match done {
            Ok((task, done)) => (task, Ok(done)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(InFlight {
            generation,
            work,
            trace_id,
        }) = self.in_flight.remove(&task)
        else {
            return Ok(());
        };
        if let Work::Start = work {
            return self.on_started(outcome).await;
        }
        if let Err(e) = &outcome
            && e.is_cancelled()
        {
            return Ok(());
        }
        let current = self.conn.is_some() && generation == self.generation;
        // A request answers only while it is in `requests`: not once its
        // connection went (a new one may reuse its id) or it was cancelled
        // (its handler may have finished just before the abort).
        let answer = |requests: &mut Map<u64, AbortHandle>, id: u64| {
            current && requests.remove(&id).is_some()
        };
        match work {
            Work::Request { id, what } => {
                let current = answer(&mut self.requests, id);
                let reply = request_reply(id, &what, &trace_id, outcome.map_err(panic_text));
                if current {
                    self.send(app_message::Kind::Reply(reply)).await;
                }
            }
            Work::Http { id, what } => {
                let current = answer(&mut self.requests, id);
                let result = match outcome {
                    Ok(Done::Http(result)) => result,
                    Ok(_) => Err(Error::internal("unexpected handler outcome")),
                    Err(e) => Err(Error::internal(format!(
                        "{what} panicked: {}",
                        panic_text(e)
                    ))),
                };
                let response = result.unwrap_or_else(|e| {
                    if e.kind() != ErrorKind::BadRequest {
                        warn!(route = %what, error = %e, %trace_id, "route handler failed");
                    }
                    crate::http::error_response(&e)
                });
                if current {
                    self.send(app_message::Kind::HttpResponse(response.into_proto(id)))
                        .await;
                }
            }
            Work::Delivery { delivery_id, what } => {
                let result = match outcome {
                    Ok(Done::Delivery(result)) => result,
                    Ok(_) => Err(Error::internal("unexpected handler outcome")),
                    Err(e) => Err(Error::internal(format!(
                        "{what} panicked: {}",
                        panic_text(e)
                    ))),
                };
                let kind = match result {
                    Ok(()) => app_message::Kind::Ack(v1::Ack { delivery_id }),
                    Err(e) => {
                        warn!(event = %what, error = %e, %trace_id, "event handler failed");
                        app_message::Kind::Fail(v1::Fail {
                            delivery_id,
                            reason: e.to_string(),
                        })
                    }
                };
                if current {
                    self.send(kind).await;
                }
            }
            Work::Start => {}
        }
        Ok(())
    }

    async fn on_started(&mut self, outcome: Result<Done, JoinError>) -> Result<(), ServiceError> {
        match outcome {
            Ok(Done::Start(Ok(()))) => {
                self.start = Start::Done;
                self.send(app_message::Kind::Ready(v1::Ready {})).await;
                info!("ready");
                Ok(())
            }
            Ok(Done::Start(Err(e))) => Err(e),
            Ok(_) => Ok(()),
            Err(e) => Err(ServiceError::Start {
                interface: "an interface".into(),
                message: format!("on_start panicked: {}", panic_text(e)),
            }),
        }
    }

    /// Runs every interface's `on_start`, in order, as one handler task.
    pub(super) fn spawn_start(&mut self) {
        let Some(client) = self.client() else {
            return;
        };
        let interfaces = self.ordered.clone();
        let handle = self.handlers.spawn(async move {
            let ctx = Context::new(client, String::new());
            for iface in interfaces {
                if let Err(e) = iface.on_start(&ctx).await {
                    return Done::Start(Err(ServiceError::Start {
                        interface: iface.spec().name,
                        message: e.to_string(),
                    }));
                }
            }
            Done::Start(Ok(()))
        });
        self.track(handle.id(), Work::Start, String::new());
    }

    fn track(&mut self, task: tokio::task::Id, work: Work, trace_id: String) {
        let generation = self.generation;
        let in_flight = InFlight {
            generation,
            work,
            trace_id,
        };
        self.in_flight.insert(task, in_flight);
    }

    fn client(&self) -> Option<Client> {
        self.weak.upgrade().map(Client::new)
    }
}

/// The `Reply` for a request's handler outcome (`Err`: it panicked, saying this).
fn request_reply(id: u64, what: &str, trace_id: &str, outcome: Result<Done, String>) -> v1::Reply {
    let result = match outcome {
        Ok(Done::Reply(result)) => result,
        Ok(_) => Err(Error::internal("unexpected handler outcome")),
        Err(panic) => Err(Error::internal(format!("{what} panicked: {panic}"))),
    };
    match result {
        Ok(body) => v1::Reply {
            id,
            outcome: Some(reply::Outcome::Body(body.into())),
        },
        Err(e) => {
            if e.kind() == ErrorKind::HandlerFailed {
                warn!(method = %what, error = %e.message(), %trace_id, "handler failed");
            }
            reply_error(id, e.to_call_error())
        }
    }
}

/// Polls a handler once, in place: its output if it finished, `None` if it
/// waits (its wakers are registered again when its task polls it), or the
/// text of its panic.
fn poll_once<F: Future + ?Sized>(handler: Pin<&mut F>) -> Result<Option<F::Output>, String> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler.poll(&mut cx))) {
        Ok(Poll::Ready(output)) => Ok(Some(output)),
        Ok(Poll::Pending) => Ok(None),
        Err(payload) => Err(payload_text(payload.as_ref())),
    }
}

fn reply_error(id: u64, error: CallError) -> v1::Reply {
    v1::Reply {
        id,
        outcome: Some(reply::Outcome::Error(error.to_proto())),
    }
}

fn panic_text(error: JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload_text(payload.as_ref()),
        Err(e) => e.to_string(),
    }
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// A handler that failed once its request's time was up failed for want of
/// it (a call it made inherited the deadline and ran out): its caller hears
/// `deadline exceeded`, as from the daemon's own clock, whichever of the two
/// answers first. A failure within the time stands.
fn failed_in_time(error: Error, deadline: Instant) -> Error {
    if error.kind() != ErrorKind::HandlerFailed || Instant::now() < deadline {
        return error;
    }
    Error::with_kind(
        ErrorKind::DeadlineExceeded,
        format!(
            "the request's time ran out in its handler ({})",
            error.message()
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::failed_in_time;
    use crate::error::{Error, ErrorKind};

    #[test]
    fn a_failure_past_the_requests_deadline_is_deadline_exceeded() {
        let past = Instant::now() - Duration::from_millis(1);
        let nested = Error::internal("deadline exceeded: no reply within 696ms");
        let error = failed_in_time(nested, past);
        assert_eq!(error.kind(), ErrorKind::DeadlineExceeded);
        assert!(error.message().contains("no reply within 696ms"), "{error}");
    }

    #[test]
    fn a_failure_in_time_or_of_another_kind_stands() {
        let future = Instant::now() + Duration::from_secs(60);
        let error = failed_in_time(Error::internal("boom"), future);
        assert_eq!(error.kind(), ErrorKind::HandlerFailed);
        let past = Instant::now() - Duration::from_millis(1);
        let typed = failed_in_time(Error::remote("OutOfStock", "none"), past);
        assert_eq!(typed.kind(), ErrorKind::RemoteError);
        let bad = failed_in_time(Error::bad_request("qty"), past);
        assert_eq!(bad.kind(), ErrorKind::BadRequest);
    }
}
