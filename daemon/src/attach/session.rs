//! One attached app: its outbox (the daemon's half of the `Attach` stream),
//! its requests in flight (RPC and HTTP), its concurrency permits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use lymph_proto::v1::{
    Cancel, DaemonMessage, HttpRequest, HttpResponse, Request, daemon_message::Kind,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dispatch::Completion;
use crate::error::{CallError, ErrorKind};
use crate::events::Settle;
use crate::spec::AppSpec;

/// The daemon's half of an app's stream. Bounded: a stuck app fills it and
/// then gets overload errors instead of growing the daemon's memory.
pub type Outbox = mpsc::Sender<Result<DaemonMessage, tonic::Status>>;

/// A request the app has not answered yet: `done` runs once, with the reply
/// (`complete`), past `deadline` (`expire`, or the waiting `request`), or when
/// the app goes (`close`).
struct Waiting {
    done: Completion,
    deadline: Instant,
    timeout: Duration,
}

/// Looked up per request: foldhash rather than SipHash for the ids.
type Pending = HashMap<u64, (Waiting, OwnedSemaphorePermit), foldhash::fast::RandomState>;

/// HTTP requests in flight: like `Pending`, answered with the app's response.
type HttpPending = HashMap<u64, (oneshot::Sender<HttpResponse>, OwnedSemaphorePermit)>;

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
    /// `None` once the session closed: requests after that fail at once.
    pending: Mutex<Option<Pending>>,
    http_pending: Mutex<Option<HttpPending>>,
    /// Shared by RPC and HTTP requests, so one `Cancel` id names one of them.
    next_id: AtomicU64,
    permits: Arc<Semaphore>,
    /// Bounds the app's own calls and emits in flight.
    pub outgoing: Arc<Semaphore>,
    ready: AtomicBool,
    handled: AtomicU64,
    /// Cancelled when the session ends; ends the response stream too.
    pub closed: CancellationToken,
    /// Registrations made for this app: (service, instance id).
    pub registrations: Mutex<Vec<(String, String)>>,
    /// Web service registrations (fleet mode's `/lymph/http`): (service, id).
    pub http_registrations: Mutex<Vec<(String, String)>>,
    /// Event deliveries the app holds: delivery id -> (its consumer's settle
    /// channel, the bus's tag).
    deliveries: Mutex<HashMap<u64, (mpsc::UnboundedSender<Settle>, u64)>>,
    next_delivery: AtomicU64,
    /// Cancelled when the app says Goodbye or the daemon drains: no new deliveries.
    pub stop_consuming: CancellationToken,
    /// The app's log port (its instances' `log_endpoint`), once opened.
    pub log: std::sync::OnceLock<crate::logs::PortHandle>,
    /// Its event subscriptions and their consumers' health, once Ready.
    pub subscriptions: Mutex<Vec<super::consume::Subscribed>>,
}

impl AppSession {
    pub fn new(
        identity: String,
        spec: AppSpec,
        limits: SessionLimits,
        outbox: Outbox,
        closed: CancellationToken,
    ) -> Self {
        AppSession {
            identity,
            spec,
            peer: None,
            limits,
            outbox,
            pending: Mutex::new(Some(Pending::default())),
            http_pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU64::new(1),
            permits: Arc::new(Semaphore::new(limits.max_concurrency as usize)),
            outgoing: Arc::new(Semaphore::new(limits.max_outgoing as usize)),
            ready: AtomicBool::new(false),
            handled: AtomicU64::new(0),
            closed,
            registrations: Mutex::new(Vec::new()),
            http_registrations: Mutex::new(Vec::new()),
            deliveries: Mutex::new(HashMap::new()),
            next_delivery: AtomicU64::new(1),
            stop_consuming: CancellationToken::new(),
            log: std::sync::OnceLock::new(),
            subscriptions: Mutex::new(Vec::new()),
        }
    }

    /// The session of an app whose connection `peer` opened.
    pub fn with_peer(self, peer: Option<crate::access::PeerCred>) -> Self {
        AppSession { peer, ..self }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn http_pending(&self) -> std::sync::MutexGuard<'_, Option<HttpPending>> {
        self.http_pending.lock().unwrap_or_else(|p| p.into_inner())
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

    pub fn in_flight(&self) -> u32 {
        let rpc = self.pending().as_ref().map_or(0, |p| p.len() as u32);
        rpc + self.http_pending().as_ref().map_or(0, |p| p.len() as u32)
    }

    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
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

    /// Sends a request to the app and waits for its reply until `deadline`.
    pub async fn request(
        &self,
        interface: &str,
        method: &str,
        body: Bytes,
        trace_id: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let (tx, rx) = oneshot::channel();
        let answer = Box::new(move |outcome| {
            // The caller may have given up in the same instant.
            let _ = tx.send(outcome);
        });
        let id = self.start(interface, method, body, trace_id, deadline, timeout, answer);
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(CallError::app_gone()),
            Err(_) => {
                if let Some(id) = id
                    && self.take(id).is_some()
                {
                    self.push(Kind::Cancel(Cancel {
                        id,
                        reason: "deadline exceeded".to_owned(),
                    }));
                }
                Err(CallError::deadline(timeout))
            }
        }
    }

    /// Sends a request to the app without waiting for it: `done` runs with
    /// the reply in the task that reads the app's stream, or with the failure
    /// (at once; from `expire` past `deadline`; from `close`). No task and no
    /// timer per request: how requests from other hosts are served.
    #[allow(clippy::too_many_arguments)]
    pub fn start_request(
        &self,
        interface: &str,
        method: &str,
        body: Bytes,
        trace_id: &str,
        deadline: Instant,
        timeout: Duration,
        done: Completion,
    ) {
        self.start(interface, method, body, trace_id, deadline, timeout, done);
    }

    /// `start_request`, returning the request's id while it waits for the app.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        interface: &str,
        method: &str,
        body: Bytes,
        trace_id: &str,
        deadline: Instant,
        timeout: Duration,
        done: Completion,
    ) -> Option<u64> {
        let permit = match self.permit() {
            Ok(permit) => permit,
            Err(e) => {
                done(Err(e));
                return None;
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = request_message(id, interface, method, body, trace_id, deadline);
        {
            let mut pending = self.pending();
            let Some(pending) = pending.as_mut() else {
                drop(pending);
                done(Err(CallError::app_gone()));
                return None;
            };
            let waiting = Waiting {
                done,
                deadline,
                timeout,
            };
            pending.insert(id, (waiting, permit));
        }
        // try_send: the permit above bounds requests, so a full outbox means
        // the app stopped reading; fail now rather than queue without bound.
        if !self.push(Kind::Request(request)) {
            if let Some((waiting, _permit)) = self.take(id) {
                (waiting.done)(Err(self.not_reading()));
            }
            return None;
        }
        Some(id)
    }

    /// Fails the requests whose deadline has passed, and tells the app to
    /// cancel them. Returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let overdue: Vec<(u64, Waiting)> = {
            let mut pending = self.pending();
            let Some(pending) = pending.as_mut() else {
                return 0;
            };
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, (waiting, _))| waiting.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id).map(|(waiting, _permit)| (id, waiting)))
                .collect()
        };
        let count = overdue.len();
        for (id, waiting) in overdue {
            self.push(Kind::Cancel(Cancel {
                id,
                reason: "deadline exceeded".to_owned(),
            }));
            (waiting.done)(Err(CallError::deadline(waiting.timeout)));
        }
        count
    }

    /// One of the app's concurrency permits: RPC and HTTP share the limit.
    fn permit(&self) -> Result<OwnedSemaphorePermit, CallError> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            CallError::new(
                ErrorKind::Overloaded,
                format!(
                    "{} is at its concurrency limit ({} requests in flight)",
                    self.spec.app_name, self.limits.max_concurrency
                ),
            )
        })
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

    /// Hands an HTTP request to the app (its `id` is set here) and waits for
    /// the response until `deadline`. Errors: overloaded, app gone, deadline.
    pub async fn http_request(
        &self,
        mut request: HttpRequest,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<HttpResponse, CallError> {
        let permit = self.permit()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        request.id = id;
        let (tx, rx) = oneshot::channel();
        match self.http_pending().as_mut() {
            Some(pending) => pending.insert(id, (tx, permit)),
            None => return Err(CallError::app_gone()),
        };
        // try_send, as for RPC: the permit bounds what is queued.
        if !self.push(Kind::HttpRequest(request)) {
            self.take_http(id);
            return Err(self.not_reading());
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(response)) => {
                self.handled.fetch_add(1, Ordering::Relaxed);
                Ok(response)
            }
            Ok(Err(_)) => Err(CallError::app_gone()),
            Err(_) => {
                if self.take_http(id).is_some() {
                    self.push(Kind::Cancel(Cancel {
                        id,
                        reason: "deadline exceeded".to_owned(),
                    }));
                }
                Err(CallError::deadline(timeout))
            }
        }
    }

    fn take_http(&self, id: u64) -> Option<(oneshot::Sender<HttpResponse>, OwnedSemaphorePermit)> {
        self.http_pending().as_mut().and_then(|p| p.remove(&id))
    }

    /// Completes an HTTP request with the app's response; `false` for an unknown id.
    pub fn complete_http(&self, response: HttpResponse) -> bool {
        match self.take_http(response.id) {
            Some((tx, _permit)) => {
                // The gateway may have given up in the same instant.
                let _ = tx.send(response);
                true
            }
            None => false,
        }
    }

    fn take(&self, id: u64) -> Option<(Waiting, OwnedSemaphorePermit)> {
        self.pending().as_mut().and_then(|p| p.remove(&id))
    }

    /// Completes a request with the app's reply. `false` for an unknown id
    /// (late reply after the deadline, or a confused app).
    pub fn complete(&self, id: u64, outcome: Result<Bytes, CallError>) -> bool {
        match self.take(id) {
            Some((waiting, _permit)) => {
                self.handled.fetch_add(1, Ordering::Relaxed);
                (waiting.done)(outcome);
                true
            }
            None => false,
        }
    }

    /// Remembers a delivery handed to the app; returns its delivery id.
    pub fn track_delivery(&self, settle: &mpsc::UnboundedSender<Settle>, tag: u64) -> u64 {
        let id = self.next_delivery.fetch_add(1, Ordering::Relaxed);
        self.deliveries_map().insert(id, (settle.clone(), tag));
        id
    }

    /// Passes the app's ack or fail of a delivery to the bus. `false` for an
    /// unknown delivery id.
    pub fn settle(&self, delivery_id: u64, fail: Option<String>) -> bool {
        let Some((settle, tag)) = self.deliveries_map().remove(&delivery_id) else {
            return false;
        };
        let message = match fail {
            None => Settle::Ack(tag),
            Some(reason) => Settle::Fail { tag, reason },
        };
        // The consumer may be gone already; then the bus has taken the event back.
        let _ = settle.send(message);
        true
    }

    pub fn deliveries_held(&self) -> usize {
        self.deliveries_map().len()
    }

    fn deliveries_map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, (mpsc::UnboundedSender<Settle>, u64)>> {
        self.deliveries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the session: every request in flight fails at once with
    /// "disconnected", new ones are refused, held event deliveries go back to
    /// the bus for another instance, and the response stream ends.
    pub fn close(&self) {
        let pending = self.pending().take();
        for (_, (waiting, _permit)) in pending.into_iter().flatten() {
            (waiting.done)(Err(CallError::app_gone()));
        }
        self.http_pending().take();
        self.deliveries_map().clear();
        self.stop_consuming.cancel();
        self.closed.cancel();
    }
}

#[async_trait::async_trait]
impl crate::dispatch::LocalApp for AppSession {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn spec(&self) -> &AppSpec {
        &self.spec
    }

    async fn request(
        &self,
        interface: &str,
        method: &str,
        body: Bytes,
        trace_id: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        AppSession::request(self, interface, method, body, trace_id, deadline, timeout).await
    }

    fn start_request(
        &self,
        interface: &str,
        method: &str,
        body: Bytes,
        trace_id: &str,
        deadline: Instant,
        timeout: Duration,
        done: Completion,
    ) {
        AppSession::start_request(
            self, interface, method, body, trace_id, deadline, timeout, done,
        );
    }
}

/// The `Request` message for the app, with the time left until `deadline`.
fn request_message(
    id: u64,
    interface: &str,
    method: &str,
    body: Bytes,
    trace_id: &str,
    deadline: Instant,
) -> Request {
    let left = deadline.saturating_duration_since(Instant::now());
    Request {
        id,
        interface: interface.to_owned(),
        method: method.to_owned(),
        body,
        trace_id: trace_id.to_owned(),
        deadline_ms: u32::try_from(left.as_millis()).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests;
