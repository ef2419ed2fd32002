//! `Client`, the cheap `Clone` handle every caller holds: it turns calls and
//! emits into commands for the one task that owns the daemon stream (`link`).
//! Knows nothing about the stream itself.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lymph_proto::v1;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::context::Proxy;
use crate::error::{CallError, ErrorKind};

/// Commands from handles to the stream's owner.
pub(crate) enum Command {
    Call {
        call: v1::OutgoingCall,
        reply: oneshot::Sender<Result<bytes::Bytes, CallError>>,
    },
    Emit {
        emit: v1::OutgoingEmit,
        reply: oneshot::Sender<Result<String, CallError>>,
    },
    /// The caller of call `id` stopped waiting: the daemon is told
    /// (`CancelCall`), so the call ends wherever it is.
    Cancel { id: u64 },
}

/// Call ids, unique in the process (so on every stream of it), chosen by the
/// caller so it can name its call when it gives up.
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// Cancels its call when dropped while armed: the caller's future went away
/// (its own timeout, a `select!`, an aborted task) before the reply came.
struct CancelOnDrop {
    commands: mpsc::Sender<Command>,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: with the queue full the call still ends at its deadline.
            let _ = self.commands.try_send(Command::Cancel { id: self.id });
        }
    }
}

/// How many commands may wait for the stream's owner. A full queue makes
/// callers wait (`send().await`): that is the backpressure, never unbounded.
pub(crate) const COMMAND_QUEUE: usize = 1024;

/// The trace an emit is made in: lymph's trace id and the W3C `traceparent`
/// of the handler's span (both empty outside a handler).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Trace<'a> {
    pub trace_id: &'a str,
    pub traceparent: &'a str,
}

/// Extra time a caller waits past the call's own timeout, so the daemon's
/// `DEADLINE_EXCEEDED` (with its reason) normally arrives first.
const DEADLINE_SLACK: Duration = Duration::from_secs(5);

/// A handle to the app's connection with lymphd: make calls and emit events.
/// Cheap to clone; all clones share the one stream.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Call { call, .. } => write!(f, "Call({}.{})", call.service, call.method),
            Command::Emit { emit, .. } => write!(f, "Emit({})", emit.event_type),
            Command::Cancel { id } => write!(f, "Cancel({id})"),
        }
    }
}

impl Client {
    pub(crate) fn new(commands: mpsc::Sender<Command>) -> Client {
        Client { commands }
    }

    /// Attaches to the daemon at `socket` with no interfaces, for programs that
    /// only call and emit. Fails if no daemon is there now; reconnects later
    /// ones by itself. The connection closes when the last clone is dropped.
    pub async fn connect(socket: impl AsRef<Path>) -> Result<Client, crate::ServiceError> {
        crate::link::connect_standalone(socket.as_ref().to_path_buf()).await
    }

    /// A proxy for calls to `service`; the daemon makes a new trace id.
    pub fn proxy(&self, service: impl Into<String>) -> Proxy {
        Proxy::new(self.clone(), service.into(), String::new())
    }

    /// Emits an event; returns its id once the daemon accepted it.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event_type: &str,
        body: &T,
    ) -> Result<String, CallError> {
        self.emit_with(event_type, body, Duration::ZERO, Trace::default())
            .await
    }

    /// Emits an event delivered no sooner than `delay` from now.
    pub async fn emit_delayed<T: Serialize + ?Sized>(
        &self,
        event_type: &str,
        body: &T,
        delay: Duration,
    ) -> Result<String, CallError> {
        self.emit_with(event_type, body, delay, Trace::default())
            .await
    }

    pub(crate) async fn emit_with<T: Serialize + ?Sized>(
        &self,
        event_type: &str,
        body: &T,
        delay: Duration,
        trace: Trace<'_>,
    ) -> Result<String, CallError> {
        let body = crate::codec::encode_body(format_args!("the body of event {event_type}"), body)?;
        let emit = v1::OutgoingEmit {
            id: 0,
            event_type: event_type.to_owned(),
            body: body.into(),
            trace_id: trace.trace_id.to_owned(),
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            traceparent: trace.traceparent.to_owned(),
        };
        let (reply, answer) = oneshot::channel();
        self.send(Command::Emit { emit, reply }).await?;
        answer
            .await
            .unwrap_or_else(|_| Err(CallError::not_connected()))
    }

    /// Sends one call and waits for its raw MessagePack reply.
    pub(crate) async fn call_raw(
        &self,
        mut call: v1::OutgoingCall,
    ) -> Result<bytes::Bytes, CallError> {
        call.id = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        let mut cancel = CancelOnDrop {
            commands: self.commands.clone(),
            id: call.id,
            armed: false,
        };
        let guard = (call.timeout_ms > 0)
            .then(|| Duration::from_millis(u64::from(call.timeout_ms)) + DEADLINE_SLACK);
        // Only a call with a deadline can need its name for the error.
        let what = guard.map(|_| format!("{}.{}", call.service, call.method));
        let (reply, answer) = oneshot::channel();
        self.send(Command::Call { call, reply }).await?;
        cancel.armed = true;
        let answer = match guard {
            None => answer.await,
            Some(limit) => match tokio::time::timeout(limit, answer).await {
                Ok(answer) => answer,
                Err(_) => {
                    return Err(CallError::new(
                        ErrorKind::DeadlineExceeded,
                        format!(
                            "no reply from {} within {limit:?}",
                            what.unwrap_or_default()
                        ),
                    ));
                }
            },
        };
        // Answered (or the stream is gone): nothing left to cancel.
        cancel.armed = false;
        answer.unwrap_or_else(|_| Err(CallError::not_connected()))
    }

    async fn send(&self, command: Command) -> Result<(), CallError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| CallError::new(ErrorKind::Unavailable, "the lymph client is closed"))
    }
}
