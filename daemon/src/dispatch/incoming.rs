//! Requests that arrive from other hosts (lymphd daemons or Python lymph
//! containers): routed to this daemon's `lymph` interface or to the next
//! local app serving the interface, and answered in lymph's terms.

use std::sync::atomic::Ordering;

use super::{CallError, Dispatcher, ErrorKind, builtin};
use crate::rpc::{IncomingRequest, NackReason, Response};

impl Dispatcher {
    /// Serves one request from another host and sends its one response.
    pub async fn serve_incoming(&self, request: IncomingRequest) {
        let IncomingRequest {
            subject,
            body,
            trace_id,
            version,
            responder,
            ..
        } = request;
        let started = std::time::Instant::now();
        let result = self
            .answer_incoming(&subject, body, &trace_id, version.as_deref())
            .await;
        if !matches!(&result, Err(e) if matches!(e.kind, ErrorKind::UnknownMethod | ErrorKind::Invalid))
        {
            self.metrics
                .record(&subject, started.elapsed(), result.is_err());
        }
        responder.respond(match result {
            Ok((body, version)) => Response::Rep { body, version },
            Err(e) if e.kind == ErrorKind::RemoteError => Response::Error {
                error_type: e.error_type,
                message: e.message,
                version,
            },
            Err(e) => Response::Nack(NackReason {
                kind: e.kind.as_str().to_owned(),
                message: e.message,
            }),
        });
    }

    async fn answer_incoming(
        &self,
        subject: &str,
        body: bytes::Bytes,
        trace_id: &str,
        version: Option<&str>,
    ) -> Result<(bytes::Bytes, Option<String>), CallError> {
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
            let body =
                builtin::answer_for_container(method, &body, &self.me, &apps, &self.metrics)?;
            return Ok((body, Some(builtin::BUILTIN_VERSION.to_owned())));
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
        let timeout = self.rpc.default_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let reply = app
            .request(interface, method, body, trace_id, deadline, timeout)
            .await?;
        Ok((reply, def_version.clone()))
    }
}
