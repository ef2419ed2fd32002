//! The one start path of a call: checked, routed to an instance, handed to
//! the daemon's own `lymph` interface, a local app or another host, and
//! finished (metrics, then the caller's callback) wherever the answer
//! arrives. No task waits per call; only a service not watched yet is looked
//! up in a task first. `Dispatcher::call` is the waiting helper on top.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{
    Answer, Call, CallHandle, Dispatcher, Picked, Target, builtin, remote, requirement,
    split_subject,
};
use crate::apps::{AppRequest, Deadline, LocalApp};
use crate::error::{CallError, ErrorKind};
use crate::metrics::{Metrics, Side};
use crate::registry::{Instance, Instances};
use crate::rpc::OutgoingRequest;

/// What runs once with the outcome of a call.
pub type CallDone = Box<dyn FnOnce(Result<Answer, CallError>) + Send>;

/// A call checked and timed, on its way to an instance.
struct Started {
    call: Call,
    handle: CallHandle,
    interface: String,
    method: String,
    deadline: Deadline,
    /// The last clock read on its way (the deadline's checks reuse it).
    now: tokio::time::Instant,
    requirement: Option<super::VersionReq>,
    done: CallDone,
}

impl Dispatcher {
    /// Starts `call`; `done` runs once with its outcome: from the app's
    /// stream, the transport's receive loop, a deadline sweep, or at once.
    /// The handle cancels it.
    pub fn start(self: &Arc<Self>, call: Call, done: CallDone) -> CallHandle {
        let handle = CallHandle::default();
        self.start_with(call, handle.clone(), done);
        handle
    }

    /// `start`, with a handle the caller made (and may have put where a
    /// cancel finds it) before the call could end.
    pub fn start_with(self: &Arc<Self>, call: Call, handle: CallHandle, done: CallDone) {
        let checked = self.check_call(&call).and_then(|(interface, method)| {
            let requirement = requirement(call.version.as_deref())?;
            Ok((interface, method, requirement))
        });
        let (interface, method, requirement) = match checked {
            Ok(checked) => checked,
            Err(e) => return done(Err(e)),
        };
        let now = tokio::time::Instant::now();
        let mut started = Started {
            deadline: Deadline::from(now, self.timeout(call.timeout)),
            now,
            handle,
            call,
            interface,
            method,
            requirement,
            done,
        };
        if let Some((list, next)) = self.cached_instances(&started.call.service) {
            return self.start_on(&list, &next, started);
        }
        // Not watched yet: look the service up in a task, then go on.
        let this = self.clone();
        self.tasks.spawn(async move {
            match this.instances(&started.call.service).await {
                Ok((list, next)) => {
                    started.now = tokio::time::Instant::now();
                    this.start_on(&list, &next, started);
                }
                Err(e) => (started.done)(Err(e)),
            }
        });
    }

    /// Starts `call` and waits for its outcome.
    pub async fn call(self: &Arc<Self>, call: Call) -> Result<Answer, CallError> {
        let (tx, rx) = oneshot::channel();
        self.start(
            call,
            Box::new(move |outcome| {
                // The waiter may have gone (its caller gave up).
                let _ = tx.send(outcome);
            }),
        );
        rx.await.unwrap_or_else(|_| Err(CallError::shutting_down()))
    }

    /// Picks an instance of a known list and hands the call to it.
    fn start_on(&self, list: &Instances, next: &AtomicUsize, started: Started) {
        let Started {
            call,
            handle,
            interface,
            method,
            deadline,
            now,
            requirement,
            done,
        } = started;
        let subject = format!("{interface}.{method}");
        let version = call.version.as_deref();
        let picked = self.pick_in(list, next, &call.service, version, requirement.as_ref());
        let (picked, target) = match picked {
            Ok(picked) => picked,
            Err(e) => {
                let elapsed = std::time::Duration::ZERO;
                self.metrics
                    .rpc_done(Side::Client, &subject, elapsed, Err(e.kind));
                return done(Err(e));
            }
        };
        let instance = picked.instance();
        let mut finish = Finish::start(&self.metrics, subject, &picked, now.into_std(), done);
        let client = self.spans.open(&call.trace_id, call.parent);
        // What the next hop is a child of: this call's span, else the caller's.
        let parent = crate::spans::passed_on(client.as_ref(), call.parent);
        if let Some(open) = client {
            finish.span = Some(Box::new(CallSpans {
                spans: self.spans.clone(),
                client: open,
                server: None,
            }));
        }
        // Its time ran out on the way (the service's look-up), or its caller
        // gave up meanwhile: not started.
        if deadline.at <= now {
            return finish.finish(Err(CallError::deadline(deadline.timeout)));
        }
        if handle.cancelled() {
            return finish.finish(Err(CallError::cancelled()));
        }
        match target {
            Target::Daemon => {
                let answer = builtin::answer_for_daemon(
                    &interface,
                    &method,
                    &call.body,
                    &self.me,
                    &self.metrics,
                );
                finish.finish(answer);
            }
            Target::App(app) => {
                let checked =
                    self.check_app(app.as_ref(), instance, &interface, &method, &call.body);
                match checked {
                    Ok(Some(answer)) => finish.finish(Ok(answer)),
                    Ok(None) => {
                        // The app is here: this daemon is the server side
                        // too, with a SERVER span as another host's would be.
                        let server = self.spans.open(&call.trace_id, parent);
                        let traceparent = crate::spans::passed_on(server.as_ref(), parent);
                        if let Some(span) = &mut finish.span {
                            span.server = server;
                        }
                        let request = AppRequest {
                            interface,
                            method,
                            body: call.body,
                            trace_id: call.trace_id,
                            traceparent,
                            deadline,
                            now,
                        };
                        let done = Box::new(move |outcome| finish.finish(outcome));
                        if let Some(id) = app.start_request(request, done) {
                            handle.at_app(&app, id);
                        }
                    }
                    Err(e) => finish.finish(Err(e)),
                }
            }
            Target::Remote => {
                let Some(remote) = &self.remote else {
                    return finish.finish(Err(CallError::new(ErrorKind::Internal, "no transport")));
                };
                let subject = finish.subject.clone();
                let request = OutgoingRequest {
                    identity: remote::identity_header(&subject, instance),
                    subject,
                    body: call.body,
                    trace_id: call.trace_id,
                    version: instance.version.clone(),
                    deadline: deadline.left_at(now),
                    traceparent: parent,
                };
                let reply_done = Box::new(move |reply: Result<crate::rpc::IncomingReply, _>| {
                    let outcome = match reply {
                        Ok(reply) => remote::reply_outcome(reply),
                        Err(e) => Err(remote::transport_error(e)),
                    };
                    finish.finish(outcome);
                });
                // Python lymph has no `app_name` in its nodes, nor lymphd.cancel.
                let lymphd = instance.app_name.is_some();
                if let Some(id) = remote.start_request(&instance.endpoint, request, reply_done) {
                    handle.at_peer(remote, picked, id, lymphd);
                }
            }
        }
    }

    /// What a local app must have for the call: the interface (of the
    /// registered version) and the method. `Some` for the `lymph.*` methods,
    /// which the daemon answers for the app.
    fn check_app(
        &self,
        app: &dyn LocalApp,
        instance: &Instance,
        interface: &str,
        method: &str,
        body: &[u8],
    ) -> Result<Option<Bytes>, CallError> {
        if interface == "lymph" {
            let answer = builtin::answer_for_app(
                method,
                body,
                app.identity(),
                &self.me,
                app.spec(),
                &self.metrics,
            )?;
            return Ok(Some(answer));
        }
        let spec = app.spec();
        // The looked-up registration names the version; a subject naming
        // another interface of the same app takes that one's default version.
        let def = if interface == instance.service {
            spec.interfaces
                .iter()
                .find(|i| i.name == interface && i.version == instance.version)
        } else {
            spec.interface(interface)
        };
        let Some(def) = def else {
            return Err(CallError::new(
                ErrorKind::UnknownMethod,
                format!(
                    "{} (an instance of {}) has no interface {interface:?}",
                    spec.app_name, instance.service
                ),
            ));
        };
        super::require_method(def, method)?;
        Ok(None)
    }

    /// What `start` checks before routing: not draining, a valid subject, the
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

/// The end of a call that found an instance: metrics, then `done`.
struct Finish {
    metrics: Arc<Metrics>,
    started: std::time::Instant,
    subject: String,
    picked: Picked,
    done: CallDone,
    /// Its spans, when spans are on and its trace sampled (boxed: the
    /// common case, none, stays one word in what every call carries).
    span: Option<Box<CallSpans>>,
}

/// A call's open spans: the CLIENT one, and the SERVER one of a call to an
/// app on this daemon.
struct CallSpans {
    spans: crate::spans::Spans,
    client: crate::spans::Open,
    server: Option<crate::spans::Open>,
}

impl Finish {
    fn start(
        metrics: &Arc<Metrics>,
        subject: String,
        picked: &Picked,
        started: std::time::Instant,
        done: CallDone,
    ) -> Finish {
        metrics.rpc_started();
        Finish {
            metrics: metrics.clone(),
            started,
            subject,
            picked: picked.clone(),
            done,
            span: None,
        }
    }

    fn finish(self, outcome: Result<Bytes, CallError>) {
        self.metrics.rpc_ended();
        let result = outcome.as_ref().map(|_| ()).map_err(|e| e.kind);
        if let Some(span) = self.span {
            let CallSpans {
                spans,
                client,
                server,
            } = *span;
            let instance = self.picked.instance();
            let attributes = rpc_attributes(&self.subject, &instance.endpoint);
            let error = result.err().map(crate::error::kind_name);
            if let Some(server) = server {
                let (kind, attributes) = (crate::spans::Kind::Server, attributes.clone());
                spans.record(server.end(self.subject.clone(), kind, attributes, error));
            }
            let kind = crate::spans::Kind::Client;
            spans.record(client.end(self.subject.clone(), kind, attributes, error));
        }
        let elapsed = self.started.elapsed();
        self.metrics
            .rpc_done(Side::Client, &self.subject, elapsed, result);
        (self.done)(match outcome {
            Ok(body) => Ok(Answer {
                body,
                from: self.picked,
            }),
            Err(e) => Err(CallError {
                instance: Some(self.picked.instance().identity.clone()),
                ..e
            }),
        });
    }
}

/// A call span's attributes (semantic conventions v1.40.0): the RPC system,
/// the fully qualified method, and the peer it went to.
pub(super) fn rpc_attributes(subject: &str, peer: &str) -> Vec<crate::spans::Attribute> {
    vec![
        ("rpc.system.name", "lymph".into()),
        ("rpc.method", subject.to_owned().into()),
        ("network.peer.address", peer.to_owned().into()),
    ]
}
