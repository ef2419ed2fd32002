//! Requests that arrive from other hosts (lymphd daemons or Python lymph
//! containers): routed to this daemon's `lymph` interface or to the next
//! local app serving the interface, and answered in lymph's terms.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Dispatcher, builtin};
use crate::apps::{AppRequest, Deadline, LocalApp};
use crate::error::{CallError, ErrorKind};
use crate::metrics::{Metrics, Side};
use crate::rpc::{IncomingRequest, NackReason, Responder, Response};

/// Where an incoming request went: answered here, or handed to an app.
enum Routed {
    Answered(Bytes, Option<String>),
    /// The app, the version of its interface that serves the request, and
    /// the request's interface and method.
    App {
        app: Arc<dyn LocalApp>,
        version: Option<String>,
        interface: String,
        method: String,
    },
}

/// The one response to an incoming request, with its metrics.
struct Answering {
    subject: String,
    started: std::time::Instant,
    metrics: Arc<Metrics>,
    /// The `version` header the caller sent, echoed on a typed ERROR.
    version: Option<String>,
    responder: Responder,
}

impl Answering {
    fn finish(self, result: Result<(Bytes, Option<String>), CallError>) {
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.kind);
        let elapsed = self.started.elapsed();
        self.metrics
            .rpc_done(Side::Server, &self.subject, elapsed, outcome);
        self.responder.respond(match result {
            Ok((body, version)) => Response::Rep { body, version },
            Err(e) if e.kind == ErrorKind::RemoteError => Response::Error {
                error_type: e.error_type,
                message: e.message,
                version: self.version,
            },
            Err(e) => Response::Nack(NackReason {
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
            subject,
            body,
            trace_id,
            version,
            responder,
            ..
        } = request;
        let routed = self.route_incoming(&subject, &body, version.as_deref());
        let answering = Answering {
            subject,
            started: std::time::Instant::now(),
            metrics: self.metrics.clone(),
            version,
            responder,
        };
        let (app, def_version, interface, method) = match routed {
            Ok(Routed::App {
                app,
                version,
                interface,
                method,
            }) => (app, version, interface, method),
            Ok(Routed::Answered(body, version)) => return answering.finish(Ok((body, version))),
            Err(e) => return answering.finish(Err(e)),
        };
        let request = AppRequest {
            interface,
            method,
            body,
            trace_id,
            deadline: Deadline::after(self.rpc.default_timeout),
        };
        let done = Box::new(move |outcome: Result<Bytes, CallError>| {
            answering.finish(outcome.map(|reply| (reply, def_version)));
        });
        app.start_request(request, done);
    }

    /// Answers `lymph.*` here, else picks the local app for the request.
    fn route_incoming(
        &self,
        subject: &str,
        body: &Bytes,
        version: Option<&str>,
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
            // container: every local app's methods, for inspect.
            let apps = self.apps.ready_apps();
            let body = builtin::answer_for_container(method, body, &self.me, &apps, &self.metrics)?;
            return Ok(Routed::Answered(
                body,
                Some(builtin::BUILTIN_VERSION.to_owned()),
            ));
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
        if def.method(method).is_none() {
            return Err(CallError::new(
                ErrorKind::UnknownMethod,
                format!(
                    "{interface} has no method {method:?} (it has: {})",
                    def.method_names()
                ),
            ));
        }
        self.check_body(body.len())?;
        Ok(Routed::App {
            app: app.clone(),
            version: def_version.clone(),
            interface: interface.to_owned(),
            method: method.to_owned(),
        })
    }
}
