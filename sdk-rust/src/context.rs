//! What a handler gets: `Context` (the trace id of the request or event being
//! handled and the daemon's span it runs under, both carried into every call
//! and emit made through it, and the request's deadline, which bounds the
//! calls made through it) and `Proxy`, calls to one service with
//! `timeout`/`version` options and deferred calls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use lymph_proto::v1;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::{CallError, ErrorKind};

/// The handler's view of the request or event it handles.
#[derive(Clone, Debug)]
pub struct Context {
    client: Client,
    trace_id: String,
    traceparent: String,
    deadline: Option<Instant>,
}

impl Context {
    pub fn new(client: Client, trace_id: impl Into<String>) -> Context {
        Context {
            client,
            trace_id: trace_id.into(),
            traceparent: String::new(),
            deadline: None,
        }
    }

    /// The same context under the daemon's span `traceparent` (W3C form, as
    /// the daemon sent it with the request): calls and emits made through it
    /// pass it on, so their spans are children of the handler's.
    pub fn with_traceparent(self, traceparent: impl Into<String>) -> Context {
        Context {
            traceparent: traceparent.into(),
            ..self
        }
    }

    /// The W3C `traceparent` of the daemon's span this handler runs under;
    /// empty when the daemon's spans are off.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The same context for a request whose caller waits until `deadline`:
    /// every call made through it gets no more than the time left.
    pub fn with_deadline(self, deadline: Instant) -> Context {
        Context {
            deadline: Some(deadline),
            ..self
        }
    }

    /// When the caller of the request being handled stops waiting; `None` for
    /// events, HTTP requests and `on_start`.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The trace id of the request or event being handled.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The connection, for work that outlives the handler.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The trace an emit made through this context is in.
    fn trace(&self) -> crate::client::Trace<'_> {
        crate::client::Trace {
            trace_id: &self.trace_id,
            traceparent: &self.traceparent,
        }
    }

    /// A proxy for calls to `service` carrying this trace id, each given the
    /// smaller of its own timeout and the request's time left.
    pub fn proxy(&self, service: impl Into<String>) -> Proxy {
        Proxy {
            deadline: self.deadline,
            traceparent: self.traceparent.clone(),
            ..Proxy::new(self.client.clone(), service.into(), self.trace_id.clone())
        }
    }

    /// Emits an event carrying this trace id; waits until the daemon accepted it.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event_type: &str,
        body: &T,
    ) -> Result<String, CallError> {
        self.client
            .emit_with(event_type, body, Duration::ZERO, self.trace())
            .await
    }

    /// Emits an event delivered no sooner than `delay` from now.
    pub async fn emit_delayed<T: Serialize + ?Sized>(
        &self,
        event_type: &str,
        body: &T,
        delay: Duration,
    ) -> Result<String, CallError> {
        self.client
            .emit_with(event_type, body, delay, self.trace())
            .await
    }
}

/// Calls to one service, e.g. `ctx.proxy("Greeting").call::<String>("greet", &args)`.
#[derive(Clone, Debug)]
pub struct Proxy {
    client: Client,
    service: String,
    trace_id: String,
    /// The handler's span, for a proxy made from its `Context`.
    traceparent: String,
    timeout: Option<Duration>,
    version: String,
    /// The handler's deadline, for a proxy made from its `Context`.
    deadline: Option<Instant>,
}

impl Proxy {
    pub(crate) fn new(client: Client, service: String, trace_id: String) -> Proxy {
        Proxy {
            client,
            service,
            trace_id,
            traceparent: String::new(),
            timeout: None,
            version: String::new(),
            deadline: None,
        }
    }

    /// Time allowed for each reply; without it the daemon's default applies.
    /// From a handler's `Context`, no more than the request's time left (a
    /// call without its own timeout gets that time left).
    pub fn timeout(mut self, timeout: Duration) -> Proxy {
        self.timeout = Some(timeout);
        self
    }

    /// Only instances whose version matches this semver requirement, e.g. "1.2".
    pub fn version(mut self, requirement: impl Into<String>) -> Proxy {
        self.version = requirement.into();
        self
    }

    /// Calls `method` with `args`, a map of parameter name to value (a struct,
    /// a `serde_json::json!({..})`, or `()` for none) and decodes the reply.
    pub async fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        args: impl Serialize,
    ) -> Result<R, CallError> {
        let call = self.outgoing(method, &args)?;
        let body = self.client.call_raw(call).await?;
        crate::codec::decode_reply(format_args!("{}.{method}", self.service), &body)
    }

    /// Starts the call and returns at once; await the `Deferred` for the reply.
    pub fn defer<R: DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        args: impl Serialize,
    ) -> Deferred<R> {
        let outgoing = self.outgoing(method, &args);
        let client = self.client.clone();
        let what = format!("{}.{method}", self.service);
        Deferred(tokio::spawn(async move {
            let body = client.call_raw(outgoing?).await?;
            crate::codec::decode_reply(&what, &body)
        }))
    }

    fn outgoing(&self, method: &str, args: &impl Serialize) -> Result<v1::OutgoingCall, CallError> {
        let timeout_ms = self
            .timeout_for(method)?
            .map(|t| u32::try_from(t.as_millis().max(1)).unwrap_or(u32::MAX))
            .unwrap_or(0);
        Ok(v1::OutgoingCall {
            id: 0,
            service: self.service.clone(),
            method: method.to_owned(),
            body: crate::codec::encode_body(
                format_args!("the arguments of {}.{method}", self.service),
                args,
            )?
            .into(),
            trace_id: self.trace_id.clone(),
            timeout_ms,
            version: self.version.clone(),
            traceparent: self.traceparent.clone(),
        })
    }

    /// The call's own timeout, bounded by the handler's time left; an error,
    /// and no call, when that time is up.
    fn timeout_for(&self, method: &str) -> Result<Option<Duration>, CallError> {
        let Some(deadline) = self.deadline else {
            return Ok(self.timeout);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CallError::new(
                ErrorKind::DeadlineExceeded,
                format!(
                    "{}.{method} not called: the handler's time was up",
                    self.service
                ),
            ));
        }
        Ok(Some(self.timeout.map_or(left, |own| own.min(left))))
    }
}

/// A call in flight, started by `Proxy::defer`. Dropping it does not cancel the call.
#[derive(Debug)]
pub struct Deferred<R>(tokio::task::JoinHandle<Result<R, CallError>>);

impl<R> Future for Deferred<R> {
    type Output = Result<R, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| {
                Err(CallError::new(
                    ErrorKind::Internal,
                    format!("deferred call failed: {e}"),
                ))
            })
        })
    }
}

#[cfg(test)]
mod tests;
