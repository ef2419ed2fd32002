//! Attached apps as the routing parts see them (the dispatcher for RPC, the
//! gateway for HTTP): one start path per kind of request, answered through a
//! callback, and nothing of how sessions work. `attach` implements it.

use bytes::Bytes;
use lymph_proto::v1 as pb;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::CallError;
use crate::spec::AppSpec;

/// What runs once when an RPC request handed to an app ends: with the app's
/// reply, or with the failure (refused at once, past its deadline, the app gone).
pub type Completion = Box<dyn FnOnce(Result<Bytes, CallError>) + Send>;

/// What runs once when an HTTP request handed to an app ends.
pub type HttpCompletion = Box<dyn FnOnce(Result<pb::HttpResponse, CallError>) + Send>;

pub use crate::deadline::Deadline;

/// One RPC request for an app.
#[derive(Debug, Clone)]
pub struct AppRequest {
    pub interface: String,
    pub method: String,
    pub body: Bytes,
    pub trace_id: String,
    /// The span the app's handler runs under (`Request.traceparent`).
    pub traceparent: Option<crate::spans::TraceParent>,
    pub deadline: Deadline,
    /// The clock read its starter made last (the deadline's checks on the
    /// way to the app reuse it rather than read the clock again).
    pub now: Instant,
}

pub trait LocalApp: Send + Sync {
    fn identity(&self) -> &str;
    fn spec(&self) -> &AppSpec;
    /// Said Ready and not Goodbye: takes requests.
    fn is_ready(&self) -> bool;

    /// Hands an RPC request to the app without waiting: `done` runs once.
    /// Returns the request's id while it waits for the app (`None`: `done`
    /// ran already).
    fn start_request(&self, request: AppRequest, done: Completion) -> Option<u64>;

    /// Ends a waiting request because its caller gave up: the app is told
    /// (`Cancel`) and the request ends `cancelled`. `false` when it was not
    /// waiting any more.
    fn cancel_request(&self, id: u64, reason: &str) -> bool;

    /// Hands an HTTP request to the app without waiting (its `id` is set
    /// here): `done` runs once.
    fn start_http(&self, request: pb::HttpRequest, deadline: Deadline, done: HttpCompletion);
}

/// `start_http`, waiting for the outcome.
pub async fn http(
    app: &dyn LocalApp,
    request: pb::HttpRequest,
    deadline: Deadline,
) -> Result<pb::HttpResponse, CallError> {
    let (tx, rx) = oneshot::channel();
    app.start_http(
        request,
        deadline,
        Box::new(move |outcome| {
            let _ = tx.send(outcome);
        }),
    );
    rx.await.unwrap_or_else(|_| Err(CallError::app_gone()))
}

pub trait LocalApps: Send + Sync {
    /// The attached, ready app with this identity.
    fn app(&self, identity: &str) -> Option<Arc<dyn LocalApp>>;

    /// Every attached, ready app.
    fn ready_apps(&self) -> Vec<Arc<dyn LocalApp>>;

    /// Ready apps serving `interface`, each with the version that would
    /// serve: exactly `version` when given, else the app's default (its
    /// unversioned interface, else its highest version).
    fn serving(
        &self,
        interface: &str,
        version: Option<&str>,
    ) -> Vec<(Arc<dyn LocalApp>, Option<String>)> {
        self.ready_apps()
            .into_iter()
            .filter_map(|app| {
                let version = serving_version(app.spec(), interface, version)?;
                Some((app, version))
            })
            .collect()
    }
}

/// The version of `interface` an app with `spec` serves a request with:
/// exactly `version` when given, else its default (its unversioned
/// interface, else its highest version). `None`: it does not serve it.
pub fn serving_version(
    spec: &AppSpec,
    interface: &str,
    version: Option<&str>,
) -> Option<Option<String>> {
    match version {
        Some(v) => spec
            .interfaces
            .iter()
            .find(|i| i.name == interface && i.version.as_deref() == Some(v))
            .map(|i| i.version.clone()),
        None => spec.interface(interface).map(|i| i.version.clone()),
    }
}
