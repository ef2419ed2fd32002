//! Requests that arrive from other hosts (lymphd daemons or Python lymph
//! containers): routed to this daemon's `lymph` interface or to the next
//! local app serving the interface, and answered in lymph's terms.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

use super::{Dispatcher, builtin};
use crate::apps::{AppRequest, Deadline, LocalApp};
use crate::error::{CallError, ErrorKind};
use crate::metrics::{Metrics, Side};
use crate::rpc::{CANCEL_SUBJECT, IncomingRequest, NackReason, Responder, Response, frame};

/// Where an incoming request went: answered here, or handed to an app.
enum Routed {
    /// Answered by the daemon's `lymph` interface (version 0.15.0).
    Answered(Bytes),
    /// The app, the version of its interface that serves the request, and
    /// the request's interface and method.
    App {
        app: Arc<dyn LocalApp>,
        version: Option<String>,
        interface: String,
        method: String,
    },
}

/// Requests from lymphd callers that an app here is handling, so their
/// caller can cancel them (`lymphd.cancel`): by the caller's id for the
/// request (lymph's 32 hex digits, as a number). Bounded by the apps'
/// concurrency: an entry lives while its request does.
#[derive(Default)]
pub(super) struct Handling(Mutex<HashMap<u128, Place, foldhash::fast::RandomState>>);

/// Where a cancellable request is: its caller (only that endpoint may
/// cancel it), and the app with its id for the request (`None` while it
/// is handed over).
struct Place {
    from: String,
    app: Option<(Weak<dyn LocalApp>, u64)>,
}

impl Handling {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u128, Place, foldhash::fast::RandomState>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request id as the handling table keys it; `None` for an id not in
/// lymph's form (such a request cannot be cancelled).
pub(super) fn request_key(id: &str) -> Option<u128> {
    if id.len() != 32 {
        return None;
    }
    crate::hex::value(id.as_bytes(), &crate::hex::ANY)
}

/// The one response to an incoming request, with its metrics.
struct Answering {
    subject: String,
    started: std::time::Instant,
    metrics: Arc<Metrics>,
    responder: Responder,
    /// Its place among the requests apps are handling, once handed to one.
    handling: Option<(Arc<Handling>, u128)>,
    /// Its span (when spans are on and its trace sampled), and its caller.
    span: Option<Box<(crate::spans::Spans, crate::spans::Open, String)>>,
}

impl Answering {
    /// `served`: the version of the interface that took the request (the
    /// reply's `version` header, as lymph's), `None` when it was refused
    /// before an interface was chosen.
    fn finish(self, result: Result<Bytes, CallError>, served: Option<Option<String>>) {
        if let Some((handling, key)) = &self.handling {
            handling.map().remove(key);
        }
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.kind);
        if let Some(span) = self.span {
            let (spans, open, from) = *span;
            let attributes = super::start::rpc_attributes(&self.subject, &from);
            let error = outcome.err().map(crate::error::kind_name);
            let kind = crate::spans::Kind::Server;
            spans.record(open.end(self.subject.clone(), kind, attributes, error));
        }
        let elapsed = self.started.elapsed();
        self.metrics
            .rpc_done(Side::Server, &self.subject, elapsed, outcome);
        self.responder.respond(match (result, served) {
            (Ok(body), served) => Response::Rep {
                body,
                version: served.flatten(),
            },
            (Err(e), served) if e.kind == ErrorKind::RemoteError => Response::Error {
                error_type: e.error_type,
                message: e.message,
                version: served.flatten(),
            },
            (Err(e), Some(version)) => Response::NackFrom {
                reason: NackReason {
                    kind: e.kind,
                    message: e.message,
                },
                version,
            },
            (Err(e), None) => Response::Nack(NackReason {
                kind: e.kind,
                message: e.message,
            }),
        });
    }
}

impl Dispatcher {
    /// Serves one request from another host without waiting for it: the
    /// response goes out from wherever the answer arrives (the app's stream,
    /// the deadline sweep), so no task or timer is spent per request.
    pub fn serve_incoming(&self, request: IncomingRequest) {
        let IncomingRequest {
            from,
            id,
            subject,
            body,
            trace_id,
            version,
            identity,
            deadline,
            traceparent,
            responder,
        } = request;
        if subject == CANCEL_SUBJECT {
            return self.cancel_incoming(&from, &body, responder);
        }
        let routed = self.route_incoming(&subject, &body, version.as_deref(), identity.as_deref());
        let now = tokio::time::Instant::now();
        let open = self.spans.open(&trace_id, traceparent);
        // The app's handler runs under this span, else the caller's.
        let traceparent = crate::spans::passed_on(open.as_ref(), traceparent);
        let span = open.map(|open| Box::new((self.spans.clone(), open, from.clone())));
        let mut answering = Answering {
            subject,
            started: now.into_std(),
            metrics: self.metrics.clone(),
            responder,
            handling: None,
            span,
        };
        let (app, def_version, interface, method) = match routed {
            Ok(Routed::App {
                app,
                version,
                interface,
                method,
            }) => (app, version, interface, method),
            Ok(Routed::Answered(body)) => {
                let version = Some(builtin::BUILTIN_VERSION.to_owned());
                return answering.finish(Ok(body), Some(version));
            }
            // lymph's `lymph` interface was chosen before its method failed
            // (bad arguments, a failure inside): the NACK names its version.
            Err(e) if subject_is_builtin(&answering.subject) && chosen_then_failed(e.kind) => {
                let version = Some(builtin::BUILTIN_VERSION.to_owned());
                return answering.finish(Err(e), Some(version));
            }
            Err(e) => return answering.finish(Err(e), None),
        };
        let request = AppRequest {
            interface,
            method,
            body,
            trace_id,
            traceparent,
            deadline: Deadline::from(now, self.incoming_timeout(deadline)),
            now,
        };
        // Only a lymphd caller can cancel (it sends its deadline, and
        // `lymphd.cancel` goes only to lymphd peers). Placed before the app
        // has it: its answer may come at once, and then takes the place away.
        let key = deadline.and_then(|_| request_key(&id));
        if let Some(key) = key {
            let place = Place { from, app: None };
            self.handling.map().insert(key, place);
            answering.handling = Some((self.handling.clone(), key));
        }
        let done = Box::new(move |outcome: Result<Bytes, CallError>| {
            answering.finish(outcome, Some(def_version));
        });
        if let Some(app_id) = app.start_request(request, done)
            && let Some(key) = key
            && let Some(place) = self.handling.map().get_mut(&key)
        {
            place.app = Some((Arc::downgrade(&app), app_id));
        }
    }

    /// `lymphd.cancel` from a peer: the request it names, if an app here is
    /// still handling it, ends and its app is told (`Cancel`).
    fn cancel_incoming(&self, from: &str, body: &[u8], responder: Responder) {
        let place = frame::decode_cancel_body(body)
            .as_deref()
            .and_then(request_key)
            .and_then(|key| {
                let map = self.handling.map();
                let place = map.get(&key).filter(|p| p.from == from)?;
                place.app.clone()
            });
        if let Some((app, app_id)) = place
            && let Some(app) = app.upgrade()
        {
            app.cancel_request(app_id, "the caller cancelled the call");
        }
        responder.respond(Response::Rep {
            body: Bytes::from_static(frame::NIL),
            version: None,
        });
    }

    /// How long an app may take for a request from another host: the time
    /// a lymphd caller has left (bounded by `rpc.max_timeout`), else (Python
    /// lymph sends none) `rpc.default_timeout`.
    fn incoming_timeout(&self, caller_left: Option<std::time::Duration>) -> std::time::Duration {
        match caller_left {
            Some(left) => left.min(self.rpc.max_timeout),
            None => self.rpc.default_timeout,
        }
    }

    /// Answers `lymph.*` here, else picks the local app for the request.
    fn route_incoming(
        &self,
        subject: &str,
        body: &Bytes,
        version: Option<&str>,
        identity: Option<&str>,
    ) -> Result<Routed, CallError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(CallError::shutting_down());
        }
        let Some((interface, method)) = subject.rsplit_once('.') else {
            return Err(CallError::new(
                ErrorKind::Invalid,
                format!("invalid subject {subject:?}: expected Interface.method"),
            ));
        };
        if interface == "lymph" {
            // A peer addressing this daemon's endpoint means the whole
            // container (every local app's methods, for inspect), unless a
            // lymphd caller named one app by its identity.
            let apps = self.apps.ready_apps();
            let body = builtin::answer_for_container(
                method,
                body,
                &self.me,
                &apps,
                identity,
                &self.metrics,
            )?;
            return Ok(Routed::Answered(body));
        }
        let serving = self.apps.serving(interface, version);
        if serving.is_empty() {
            return Err(CallError::new(
                ErrorKind::UnknownMethod,
                match version {
                    Some(v) => format!("no app on this host serves {interface} version {v}"),
                    None => format!("no app on this host serves {interface}"),
                },
            ));
        }
        let start = self.local_next.fetch_add(1, Ordering::Relaxed);
        let (app, def_version) = &serving[start % serving.len()];
        let Some(def) = app
            .spec()
            .interfaces
            .iter()
            .find(|i| i.name == interface && i.version == *def_version)
        else {
            return Err(CallError::new(
                ErrorKind::Internal,
                "the app's interface vanished",
            ));
        };
        super::require_method(def, method)?;
        self.check_body(body.len())?;
        Ok(Routed::App {
            app: app.clone(),
            version: def_version.clone(),
            interface: interface.to_owned(),
            method: method.to_owned(),
        })
    }
}

/// Whether an error of the daemon's `lymph` interface came after lymph
/// would have chosen the interface (not an unknown method, a refusal).
fn chosen_then_failed(kind: ErrorKind) -> bool {
    !matches!(
        kind,
        ErrorKind::UnknownMethod
            | ErrorKind::UnknownService
            | ErrorKind::Invalid
            | ErrorKind::ShuttingDown
    )
}

/// Whether `subject` is a method of the built-in `lymph` interface.
fn subject_is_builtin(subject: &str) -> bool {
    subject
        .rsplit_once('.')
        .is_some_and(|(interface, _)| interface == "lymph")
}
