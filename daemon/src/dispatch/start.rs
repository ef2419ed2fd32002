//! Calls to other hosts routed and sent without a task waiting for them: the
//! reply completes the call from the transport's receive loop. Anything else
//! (a service not yet watched, local apps, the daemon's own methods) goes on
//! to `Dispatcher::call` in a task, with the instance already picked.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{
    Answer, Call, CallError, Dispatcher, ErrorKind, Target, remote, requirement, split_subject,
};
use crate::metrics::Metrics;
use crate::registry::Instance;
use crate::rpc::OutgoingRequest;

/// What runs once with the outcome of a call started by `start_call`.
pub type CallDone = Box<dyn FnOnce(Result<Answer, CallError>) + Send>;

/// A call `start_call` could not finish without waiting: run it in a task.
pub struct Deferred {
    call: Call,
    done: CallDone,
    /// The instance already chosen (so round-robin does not skip one).
    picked: Option<(Instance, Target)>,
}

impl Deferred {
    pub async fn run(self, dispatcher: &Dispatcher) {
        let result = dispatcher.call_picked(self.call, self.picked).await;
        (self.done)(result);
    }
}

impl Dispatcher {
    /// Starts `call`. A call to another host over a route already watched is
    /// sent at once and `done` runs when its reply arrives; so do calls that
    /// fail before reaching anyone. Anything else comes back as `Deferred`.
    pub fn start_call(&self, call: Call, done: CallDone) -> Option<Deferred> {
        let Some(remote) = &self.remote else {
            return Some(Deferred {
                call,
                done,
                picked: None,
            });
        };
        let checked = self.check_call(&call);
        let (interface, method) = match checked {
            Ok(split) => split,
            Err(e) => {
                done(Err(e));
                return None;
            }
        };
        let requirement = match requirement(call.version.as_deref()) {
            Ok(requirement) => requirement,
            Err(e) => {
                done(Err(e));
                return None;
            }
        };
        let Some((list, next)) = self.cached_instances(&call.service) else {
            return Some(Deferred {
                call,
                done,
                picked: None,
            });
        };
        let version = call.version.as_deref();
        let picked = self.pick_in(&list, &next, &call.service, version, requirement.as_ref());
        let subject = format!("{interface}.{method}");
        let instance = match picked {
            Ok((instance, Target::Remote)) => instance,
            Ok(picked) => {
                return Some(Deferred {
                    call,
                    done,
                    picked: Some(picked),
                });
            }
            Err(e) => {
                finish_unreached(&self.metrics, &subject, e, done);
                return None;
            }
        };
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let timeout = self.timeout(call.timeout);
        let request = OutgoingRequest {
            identity: remote::identity_header(&subject, &instance),
            subject: subject.clone(),
            body: call.body,
            trace_id: call.trace_id,
            version: instance.version.clone(),
            timeout,
        };
        let endpoint = instance.endpoint.clone();
        let finish = Finish {
            metrics: self.metrics.clone(),
            started: std::time::Instant::now(),
            subject,
            identity: instance.identity,
            version: instance.version,
            done,
        };
        let reply_done = Box::new(move |reply: Result<crate::rpc::IncomingReply, _>| {
            let outcome = match reply {
                Ok(reply) => remote::reply_outcome(reply),
                Err(e) => Err(remote::transport_error(e)),
            };
            finish.finish(outcome);
        });
        remote.start_request(&endpoint, request, reply_done);
        None
    }

    /// What `call` checks before routing: not draining, a valid subject, the
    /// body within the limit. Returns the interface and method.
    pub(super) fn check_call(&self, call: &Call) -> Result<(String, String), CallError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(CallError::shutting_down());
        }
        let split = split_subject(&call.service, &call.method)?;
        self.check_body(call.body.len())?;
        Ok(split)
    }
}

/// A call that found no instance: only errors past routing get a series.
fn finish_unreached(metrics: &Metrics, subject: &str, error: CallError, done: CallDone) {
    if reached(&error) {
        metrics.record(subject, std::time::Duration::ZERO, true);
    }
    done(Err(error));
}

/// Whether a failed call reached an instance (and so gets a metrics series):
/// a caller inventing names must not grow the daemon's memory.
pub(super) fn reached(error: &CallError) -> bool {
    !matches!(
        error.kind,
        ErrorKind::UnknownService | ErrorKind::UnknownMethod | ErrorKind::Invalid
    )
}

/// The end of a call sent by `start_call`: metrics, then `done`.
struct Finish {
    metrics: Arc<Metrics>,
    started: std::time::Instant,
    subject: String,
    identity: String,
    version: Option<String>,
    done: CallDone,
}

impl Finish {
    fn finish(self, outcome: Result<Bytes, CallError>) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        let failed = outcome.is_err();
        if outcome.as_ref().err().is_none_or(reached) {
            self.metrics
                .record(&self.subject, self.started.elapsed(), failed);
        }
        (self.done)(outcome.map(|body| Answer {
            body,
            identity: self.identity,
            version: self.version,
        }));
    }
}
