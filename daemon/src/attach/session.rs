//! One attached app: its outbox (the daemon's half of the `Attach` stream),
//! its work in flight (one table for RPC, HTTP and deliveries), its
//! concurrency budget (`budget`: one for all three, with the delivery share
//! and per-handler limits).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use lymph_proto::v1::{
    Cancel, DaemonMessage, HttpRequest, HttpResponse, Request, daemon_message::Kind,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::budget::{Budget, Permits};
use super::in_flight::{self, Entry, Held, InFlight, Sweep};
use crate::apps::{AppRequest, Completion, Deadline, HttpCompletion};
use crate::dispatch::CallHandle;
use crate::error::{CallError, ErrorKind};
use crate::events::Settle;
use crate::metrics::EventStep;
use crate::spec::AppSpec;

/// The daemon's half of an app's stream. Bounded: a stuck app fills it and
/// then gets overload errors instead of growing the daemon's memory.
pub type Outbox = mpsc::Sender<Result<DaemonMessage, tonic::Status>>;

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_concurrency: u32,
    pub max_outgoing: u32,
}

pub struct AppSession {
    pub identity: String,
    pub spec: AppSpec,
    /// Who opened the app's connection, from the kernel (not from `spec`).
    pub peer: Option<crate::access::PeerCred>,
    pub limits: SessionLimits,
    outbox: Outbox,
    /// Requests and deliveries the app holds.
    in_flight: InFlight,
    /// Its concurrency permits: requests and deliveries, per method and handler.
    pub(crate) budget: Budget,
    /// Bounds the app's own calls and emits in flight.
    pub outgoing: Arc<Semaphore>,
    ready: AtomicBool,
    /// Cancelled when the session ends; ends the response stream too.
    pub closed: CancellationToken,
    /// Registrations made for this app: (service, instance id).
    pub registrations: Mutex<Vec<(String, String)>>,
    /// Web service registrations (fleet mode's `/lymph/http`): (service, id).
    pub http_registrations: Mutex<Vec<(String, String)>>,
    /// Cancelled when the app says Goodbye or the daemon drains: no new deliveries.
    pub stop_consuming: CancellationToken,
    /// The app's log port (its instances' `log_endpoint`), once opened.
    pub log: std::sync::OnceLock<crate::logs::PortHandle>,
    /// Its event subscriptions and their consumers' health, once Ready.
    pub subscriptions: Mutex<Vec<super::consume::Subscribed>>,
    /// Its own calls in flight, by its call id (at most `max_outgoing`),
    /// with their cancel handles once started.
    calls: Mutex<Calls>,
}

/// An app's own calls in flight by its id, with their cancel handles;
/// looked up per call: foldhash rather than SipHash.
type Calls = HashMap<u64, CallHandle, foldhash::fast::RandomState>;

impl AppSession {
    pub(crate) fn new(
        identity: String,
        spec: AppSpec,
        limits: SessionLimits,
        outbox: Outbox,
        closed: CancellationToken,
        sweep: Arc<Sweep>,
    ) -> Self {
        let budget = Budget::new(&spec, limits.max_concurrency);
        AppSession {
            identity,
            spec,
            peer: None,
            limits,
            outbox,
            in_flight: InFlight::new(sweep),
            budget,
            outgoing: Arc::new(Semaphore::new(limits.max_outgoing as usize)),
            ready: AtomicBool::new(false),
            closed,
            registrations: Mutex::new(Vec::new()),
            http_registrations: Mutex::new(Vec::new()),
            stop_consuming: CancellationToken::new(),
            log: std::sync::OnceLock::new(),
            subscriptions: Mutex::new(Vec::new()),
            calls: Mutex::default(),
        }
    }

    /// The session of an app whose connection `peer` opened.
    pub fn with_peer(self, peer: Option<crate::access::PeerCred>) -> Self {
        AppSession { peer, ..self }
    }

    pub fn mark_ready(&self) -> bool {
        !self.ready.swap(true, Ordering::AcqRel)
    }

    pub fn mark_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Requests (RPC and HTTP) the app has not answered yet.
    pub fn in_flight(&self) -> u32 {
        u32::try_from(self.in_flight.requests()).unwrap_or(u32::MAX)
    }

    /// Everything the app holds: requests and deliveries.
    pub fn holding(&self) -> usize {
        self.in_flight.len()
    }

    /// Work the app answered: replies, HTTP responses, acks and fails.
    pub fn handled(&self) -> u64 {
        self.in_flight.handled()
    }

    /// Queues a message to the app without waiting; `false` when the app is
    /// gone or its outbox is full.
    pub fn push(&self, kind: Kind) -> bool {
        self.outbox
            .try_send(Ok(DaemonMessage { kind: Some(kind) }))
            .is_ok()
    }

    /// Queues a message to the app without waiting; gives it back when the
    /// outbox is full, for a caller that must not lose it (`None` also when
    /// the app is gone).
    pub fn try_push(&self, kind: Kind) -> Option<Kind> {
        match self.outbox.try_send(Ok(DaemonMessage { kind: Some(kind) })) {
            Err(mpsc::error::TrySendError::Full(Ok(DaemonMessage { kind }))) => kind,
            _ => None,
        }
    }

    /// Queues a message to the app, waiting while its outbox is full; `false`
    /// when the app is gone.
    pub async fn send(&self, kind: Kind) -> bool {
        let message = Ok(DaemonMessage { kind: Some(kind) });
        tokio::select! {
            sent = self.outbox.send(message) => sent.is_ok(),
            () = self.closed.cancelled() => false,
        }
    }

    /// Waits (bounded) until the app's stream has taken every queued message,
    /// so a last `Rejected` is not cut off when the session closes.
    pub async fn flush(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.outbox.capacity() < self.outbox.max_capacity() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends a request to the app without waiting for it: `done` runs with
    /// the reply in the task that reads the app's stream, or with the failure
    /// (at once; from the sweep past its deadline; from `close`). No task and
    /// no timer per request.
    pub fn start_request(&self, request: AppRequest, done: Completion) -> Option<u64> {
        let AppRequest {
            interface,
            method,
            body,
            trace_id,
            traceparent,
            deadline,
            now,
        } = request;
        let left = deadline.at.saturating_duration_since(now);
        let permits = self.budget.request(Some((&interface, &method)));
        let message = |id| {
            Kind::Request(Request {
                id,
                interface,
                method,
                body,
                trace_id,
                deadline_ms: u32::try_from(left.as_millis()).unwrap_or(u32::MAX),
                traceparent: traceparent
                    .map(crate::spans::traceparent::format)
                    .unwrap_or_default(),
            })
        };
        match self.start(Held::Rpc(done), deadline, now, permits, message) {
            Ok(id) => Some(id),
            Err(refused) => {
                let (held, error) = *refused;
                fail(held, error);
                None
            }
        }
    }

    /// Hands an HTTP request to the app (its `id` is set here) without
    /// waiting: `done` runs with the app's response or the failure.
    pub fn start_http(&self, mut request: HttpRequest, deadline: Deadline, done: HttpCompletion) {
        let message = |id| {
            request.id = id;
            Kind::HttpRequest(request)
        };
        let permits = self.budget.request(None);
        let now = Instant::now();
        if let Err(refused) = self.start(Held::Http(done), deadline, now, permits, message) {
            let (held, error) = *refused;
            fail(held, error);
        }
    }

    /// The one start path of requests: its permits (taken by the caller:
    /// the app's budget and, for RPC, its method's limit), an entry in the
    /// table, the message on the stream. Gives the work back with the error
    /// when any step fails. `now`: the clock read its starter made last.
    fn start(
        &self,
        held: Held,
        deadline: Deadline,
        now: Instant,
        permits: Result<Permits, CallError>,
        message: impl FnOnce(u64) -> Kind,
    ) -> Result<u64, Box<(Held, CallError)>> {
        // Work whose deadline has passed on its way here is not started.
        if deadline.at <= now {
            return Err(Box::new((held, CallError::deadline(deadline.timeout))));
        }
        let permits = match permits {
            Ok(permits) => permits,
            Err(e) => return Err(Box::new((held, e))),
        };
        let kind = held.kind();
        let id = match self.in_flight.insert(held, Some(deadline), permits) {
            Ok(id) => id,
            Err(held) => return Err(Box::new((held, CallError::app_gone()))),
        };
        // try_send: the permit above bounds requests, so a full outbox means
        // the app stopped reading; fail now rather than queue without bound.
        if !self.push(message(id))
            && let Some(entry) = self.in_flight.take(id, kind)
        {
            return Err(Box::new((entry.held, self.not_reading())));
        }
        Ok(id)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The app's call `id` is about to start: its handle, until it ends.
    pub(super) fn call_started(&self, id: u64, handle: CallHandle) {
        self.calls().insert(id, handle);
    }

    /// The app's call `id` ended.
    pub(super) fn call_ended(&self, id: u64) {
        self.calls().remove(&id);
    }

    /// The handle of the app's call `id` in flight.
    pub(super) fn call(&self, id: u64) -> Option<CallHandle> {
        self.calls().get(&id).cloned()
    }

    /// Ends the request `id` because its caller gave up: the app is told to
    /// cancel it, and the request ends `cancelled`. `false` when it is not
    /// (or no longer) waiting.
    pub fn cancel_request(&self, id: u64, reason: &str) -> bool {
        let Some(entry) = self.in_flight.take(id, in_flight::Kind::Rpc) else {
            return false;
        };
        self.push(Kind::Cancel(Cancel {
            id,
            reason: reason.to_owned(),
        }));
        fail(entry.held, CallError::cancelled());
        true
    }

    /// Fails the requests whose deadline has passed, and tells the app to
    /// cancel them. Returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let overdue = self.in_flight.overdue(now);
        let count = overdue.len();
        for (id, entry) in overdue {
            self.push(Kind::Cancel(Cancel {
                id,
                reason: "deadline exceeded".to_owned(),
            }));
            let timeout = entry.deadline.map_or(Duration::ZERO, |d| d.timeout);
            fail(entry.held, CallError::deadline(timeout));
        }
        count
    }

    fn not_reading(&self) -> CallError {
        if self.closed.is_cancelled() {
            CallError::app_gone()
        } else {
            CallError::new(
                ErrorKind::Overloaded,
                format!("{} is not reading its stream", self.spec.app_name),
            )
        }
    }

    /// Completes a request with the app's reply. `false` for an unknown id
    /// (late reply after the deadline, or a confused app).
    pub fn complete(&self, id: u64, outcome: Result<Bytes, CallError>) -> bool {
        match self.in_flight.answered(id, in_flight::Kind::Rpc) {
            Some(Entry {
                held: Held::Rpc(done),
                ..
            }) => {
                done(outcome);
                true
            }
            _ => false,
        }
    }

    /// Completes an HTTP request with the app's response; `false` for an unknown id.
    pub fn complete_http(&self, response: HttpResponse) -> bool {
        match self.in_flight.answered(response.id, in_flight::Kind::Http) {
            Some(Entry {
                held: Held::Http(done),
                ..
            }) => {
                done(Ok(response));
                true
            }
            _ => false,
        }
    }

    /// Remembers a delivery handed to the app with its permits (`budget`);
    /// returns its delivery id, or `None` when the session closed (the bus
    /// takes the event back). `last_try`: the handler's retries are used up,
    /// so a fail drops it.
    pub(crate) fn track_delivery(
        &self,
        settle: &mpsc::UnboundedSender<Settle>,
        handed: Handed<'_>,
        permits: Permits,
    ) -> Option<u64> {
        let held = Held::Delivery {
            settle: settle.clone(),
            tag: handed.tag,
            event_type: handed.event_type.to_owned(),
            last_try: handed.last_try,
            handed: Instant::now(),
            span: handed.span.map(Box::new),
        };
        self.in_flight.insert(held, None, permits).ok()
    }

    /// Passes the app's ack or fail of a delivery to the bus. Returns the
    /// event's type, what became of it and how long the app held it; `None`
    /// for an unknown delivery id.
    pub fn settle(&self, delivery_id: u64, fail: Option<String>) -> Option<Settled> {
        let Some(Entry {
            held:
                Held::Delivery {
                    settle,
                    tag,
                    event_type,
                    last_try,
                    handed,
                    span,
                },
            ..
        }) = self
            .in_flight
            .answered(delivery_id, in_flight::Kind::Delivery)
        else {
            return None;
        };
        let (message, step) = match fail {
            None => (Settle::Ack(tag), EventStep::Acked),
            Some(reason) if last_try => (Settle::Fail { tag, reason }, EventStep::Dropped),
            Some(reason) => (Settle::Fail { tag, reason }, EventStep::Failed),
        };
        // The consumer may be gone already; then the bus has taken the event back.
        let _ = settle.send(message);
        Some(Settled {
            event_type,
            step,
            held: handed.elapsed(),
            span: span.map(|s| *s),
        })
    }

    /// Ends the session: every request in flight fails at once with
    /// "disconnected", new ones are refused, held event deliveries go back to
    /// the bus for another instance, and the response stream ends. Returns
    /// the event types of the deliveries given back.
    pub fn close(&self) -> Vec<String> {
        let mut returned = Vec::new();
        for entry in self.in_flight.close() {
            if let Held::Delivery { event_type, .. } = &entry.held {
                returned.push(event_type.clone());
            }
            fail(entry.held, CallError::app_gone());
        }
        self.stop_consuming.cancel();
        self.closed.cancel();
        returned
    }
}

/// Ends work unanswered: requests fail with `error`; a delivery is dropped
/// unsettled (its consumer hands it back to the bus when it goes).
fn fail(held: Held, error: CallError) {
    match held {
        Held::Rpc(done) => done(Err(error)),
        Held::Http(done) => done(Err(error)),
        Held::Delivery { .. } => {}
    }
}

/// A delivery the app answered: its type, what became of it, how long the
/// app held it.
#[derive(Debug)]
pub struct Settled {
    pub event_type: String,
    pub step: EventStep,
    pub held: std::time::Duration,
    pub span: Option<crate::spans::Open>,
}

/// A delivery handed to the app: its bus tag, type, whether it is its
/// handler's last try (a fail then drops it), and its span.
pub struct Handed<'a> {
    pub tag: u64,
    pub event_type: &'a str,
    pub last_try: bool,
    pub span: Option<crate::spans::Open>,
}

impl crate::apps::LocalApp for AppSession {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn spec(&self) -> &AppSpec {
        &self.spec
    }

    fn is_ready(&self) -> bool {
        AppSession::is_ready(self)
    }

    fn start_request(&self, request: AppRequest, done: Completion) -> Option<u64> {
        AppSession::start_request(self, request, done)
    }

    fn cancel_request(&self, id: u64, reason: &str) -> bool {
        AppSession::cancel_request(self, id, reason)
    }

    fn start_http(&self, request: HttpRequest, deadline: Deadline, done: HttpCompletion) {
        AppSession::start_http(self, request, deadline, done);
    }
}

#[cfg(test)]
mod tests;
