//! Routing of calls: subject → service instances (from the registry's cached
//! watch) → round-robin over the live ones → the local app, the daemon's own
//! `lymph.*` methods, or (in fleet mode) another daemon. Knows apps only through
//! the `LocalApps` trait, and nothing of the API.

mod builtin;
mod cancel;
mod choice;
mod incoming;
mod picked;
mod probe;
mod remote;
mod start;
mod version;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

pub use builtin::{BUILTIN_VERSION, MethodDesc, describe};
pub use cancel::CallHandle;
pub use picked::Picked;

pub use version::VersionReq;

use crate::apps::{LocalApp, LocalApps};
use crate::config::RpcConfig;
use crate::error::{CallError, ErrorKind};
use crate::metrics::Metrics;
use crate::registry::{Instance, Instances, Registry};
use crate::rpc::{Liveness, Remote};

/// This daemon as an instance of the built-in `lymph` interface.
#[derive(Debug, Clone)]
pub struct Me {
    pub identity: String,
    pub endpoint: String,
}

/// A call to route.
#[derive(Debug, Clone)]
pub struct Call {
    /// The service to look up (lymph's "address").
    pub service: String,
    /// The method, or a whole `Interface.method` subject to call on an
    /// instance of `service` (how `lymph.inspect` reaches a Greeting instance).
    pub method: String,
    pub body: Bytes,
    pub trace_id: String,
    pub timeout: Option<Duration>,
    /// A semver requirement on the instance, e.g. "1.2".
    pub version: Option<String>,
    /// The span the call is made under (the caller's handler's).
    pub parent: Option<crate::spans::TraceParent>,
}

/// A successful reply and who gave it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Bytes,
    /// The instance that answered.
    pub from: Picked,
}

impl Answer {
    /// The identity of the app (process) that answered.
    pub fn identity(&self) -> &str {
        &self.from.instance().identity
    }

    /// The version of the instance that answered, if it has one.
    pub fn version(&self) -> Option<&str> {
        self.from.instance().version.as_deref()
    }
}

/// Matching instances held inline (no allocation) by a call's choice.
const INLINE_CANDIDATES: usize = 8;

/// A call's candidates: index in the service's list, and liveness.
type Candidates = smallvec::SmallVec<[(usize, Liveness); INLINE_CANDIDATES]>;

struct Route {
    rx: watch::Receiver<Instances>,
    next: Arc<AtomicUsize>,
}

pub struct Dispatcher {
    registry: Arc<dyn Registry>,
    apps: Arc<dyn LocalApps>,
    me: Me,
    rpc: RpcConfig,
    metrics: Arc<Metrics>,
    routes: Mutex<HashMap<String, Route>>,
    draining: AtomicBool,
    /// Fleet mode: calls to other hosts. None on the embedded registry.
    remote: Option<Arc<dyn Remote>>,
    /// Round-robin over local apps for requests from other hosts.
    local_next: AtomicUsize,
    /// Where look-ups of services not watched yet run.
    tasks: tokio_util::task::TaskTracker,
    /// Requests from other hosts that apps here are handling.
    handling: Arc<incoming::Handling>,
    /// Spans of the calls routed and the requests served (off by default).
    spans: crate::spans::Spans,
}

/// What a call resolved to.
enum Target {
    Daemon,
    App(Arc<dyn LocalApp>),
    Remote,
}

impl Dispatcher {
    pub fn new(
        registry: Arc<dyn Registry>,
        apps: Arc<dyn LocalApps>,
        me: Me,
        rpc: RpcConfig,
        metrics: Arc<Metrics>,
        remote: Option<Arc<dyn Remote>>,
        tasks: tokio_util::task::TaskTracker,
    ) -> Self {
        Dispatcher {
            registry,
            apps,
            me,
            rpc,
            metrics,
            routes: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
            remote,
            local_next: AtomicUsize::new(0),
            tasks,
            handling: Arc::default(),
            spans: crate::spans::Spans::off(),
        }
    }

    /// Where spans of this daemon's hops go.
    pub fn spans(&self) -> &crate::spans::Spans {
        &self.spans
    }

    /// Records spans of its calls and requests with `spans`.
    pub fn with_spans(mut self, spans: crate::spans::Spans) -> Self {
        self.spans = spans;
        self
    }

    /// From now on every call fails with "shutting down".
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Refuses a request body over `rpc.max_body_bytes`.
    fn check_body(&self, len: usize) -> Result<(), CallError> {
        if len > self.rpc.max_body_bytes {
            return Err(CallError::new(
                ErrorKind::TooLarge,
                format!(
                    "request body is {len} bytes, the limit is {} (rpc.max_body_bytes)",
                    self.rpc.max_body_bytes
                ),
            ));
        }
        Ok(())
    }

    fn timeout(&self, asked: Option<Duration>) -> Duration {
        match asked {
            Some(t) if !t.is_zero() => t.min(self.rpc.max_timeout),
            _ => self.rpc.default_timeout,
        }
    }

    /// The next live instance of `service`, round-robin, and where it lives.
    async fn pick(
        &self,
        service: &str,
        version: Option<&str>,
    ) -> Result<(Picked, Target), CallError> {
        let requirement = requirement(version)?;
        let (list, next) = self.instances(service).await?;
        self.pick_in(&list, &next, service, version, requirement.as_ref())
    }

    /// `pick` over a known instance list. Per call: allocates nothing for
    /// up to `INLINE_CANDIDATES` matching instances, copies no instance.
    fn pick_in(
        &self,
        list: &Instances,
        next: &AtomicUsize,
        service: &str,
        version: Option<&str>,
        requirement: Option<&VersionReq>,
    ) -> Result<(Picked, Target), CallError> {
        let classed: Candidates = list
            .iter()
            .enumerate()
            .filter(|(_, i)| requirement.is_none_or(|r| r.matches(i.version.as_deref())))
            .map(|(index, i)| (index, self.liveness(i)))
            .collect();
        if classed.is_empty() {
            return Err(match (list.is_empty(), version) {
                (false, Some(v)) => CallError::new(
                    ErrorKind::UnknownService,
                    format!("no instance of service {service:?} matches version {v}"),
                ),
                _ => CallError::unknown_service(service),
            });
        }
        let turn = next.fetch_add(1, Ordering::Relaxed);
        for (index, liveness) in choice::order(&classed, turn) {
            let Some(instance) = list.get(index) else {
                continue;
            };
            if let Some(target) = self.target(instance)
                && let Some(picked) = Picked::new(list, index)
            {
                if liveness == Liveness::Verified {
                    self.probe_passed_over(list, &classed);
                }
                return Ok((picked, target));
            }
        }
        Err(CallError::new(
            ErrorKind::Unavailable,
            format!("no live instance of service {service:?} can take the call"),
        ))
    }

    /// Local instances are verified; remote ones as the transport knows them.
    fn liveness(&self, instance: &Instance) -> Liveness {
        if instance.endpoint == self.me.endpoint {
            return Liveness::Verified;
        }
        match &self.remote {
            Some(remote) => remote.liveness(&instance.endpoint),
            None => Liveness::Dead,
        }
    }

    /// Where a call to `instance` goes; `None` for a local app that is gone.
    fn target(&self, instance: &Instance) -> Option<Target> {
        if instance.endpoint != self.me.endpoint {
            return Some(Target::Remote);
        }
        if instance.identity == self.me.identity {
            return Some(Target::Daemon);
        }
        self.apps.app(&instance.identity).map(Target::App)
    }

    /// Probes the unverified instances a call passed over, so they become
    /// verified or dead without a call going there (a no-op for those being
    /// reached already; this re-probes one forgotten by the transport).
    fn probe_passed_over(&self, list: &[Instance], classed: &[(usize, Liveness)]) {
        let Some(remote) = &self.remote else {
            return;
        };
        for (index, liveness) in classed {
            if *liveness == Liveness::Unverified
                && let Some(instance) = list.get(*index)
            {
                remote.probe(&instance.endpoint);
            }
        }
    }

    /// The instance list of a service already watched, and its round-robin counter.
    fn cached_instances(&self, service: &str) -> Option<(Instances, Arc<AtomicUsize>)> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let route = routes.get(service)?;
        Some((route.rx.borrow().clone(), route.next.clone()))
    }

    /// The cached instance list of a service and its round-robin counter.
    async fn instances(&self, service: &str) -> Result<(Instances, Arc<AtomicUsize>), CallError> {
        if let Some(cached) = self.cached_instances(service) {
            return Ok(cached);
        }
        // Unknown names are not cached: a caller inventing names must not grow memory.
        let known = self
            .registry
            .services()
            .await
            .map_err(|e| CallError::new(ErrorKind::Internal, e.to_string()))?;
        if !known.iter().any(|s| s == service) {
            return Err(CallError::unknown_service(service));
        }
        let rx = self
            .registry
            .watch(service)
            .await
            .map_err(|e| CallError::new(ErrorKind::Internal, e.to_string()))?;
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let route = match routes.entry(service.to_owned()) {
            Entry::Occupied(route) => route.into_mut(),
            Entry::Vacant(vacant) => {
                if let Some(remote) = &self.remote {
                    let follow = probe::follow(rx.clone(), Arc::downgrade(remote), &self.me);
                    tokio::spawn(follow);
                }
                vacant.insert(Route {
                    rx,
                    next: Arc::new(AtomicUsize::new(0)),
                })
            }
        };
        Ok((route.rx.borrow().clone(), route.next.clone()))
    }

    /// Describes the methods of the next instance of `service`.
    pub async fn inspect(
        &self,
        service: &str,
        version: Option<&str>,
    ) -> Result<(String, Vec<MethodDesc>), CallError> {
        let (picked, target) = self.pick(service, version).await?;
        let instance = picked.instance();
        Ok(match target {
            Target::Daemon => (instance.identity.clone(), describe(None)),
            Target::App(app) => (instance.identity.clone(), describe(Some(app.spec()))),
            Target::Remote => {
                let Some(remote) = &self.remote else {
                    return Err(CallError::new(ErrorKind::Internal, "no transport"));
                };
                let methods =
                    builtin::inspect_remote(remote.as_ref(), instance, self.rpc.default_timeout)
                        .await?;
                (instance.identity.clone(), methods)
            }
        })
    }
}

/// The parsed version requirement of a call, if it has one.
fn requirement(version: Option<&str>) -> Result<Option<VersionReq>, CallError> {
    match version.filter(|v| !v.is_empty()) {
        Some(v) => Ok(Some(VersionReq::parse(v)?)),
        None => Ok(None),
    }
}

/// The method of an app's interface a call names, or `unknown_method`
/// listing the ones it has.
fn require_method(def: &crate::spec::InterfaceDef, method: &str) -> Result<(), CallError> {
    match def.method(method) {
        Some(_) => Ok(()),
        None => Err(CallError::new(
            ErrorKind::UnknownMethod,
            format!(
                "{} has no method {method:?} (it has: {})",
                def.name,
                def.method_names()
            ),
        )),
    }
}

/// Splits lymph's subject: `method` may be a whole `Interface.method` (split
/// at the last dot), else the interface is the service itself.
fn split_subject(service: &str, method: &str) -> Result<(String, String), CallError> {
    if service.is_empty() {
        return Err(CallError::new(
            ErrorKind::Invalid,
            "the service name is empty",
        ));
    }
    let (interface, method) = match method.rsplit_once('.') {
        Some((interface, method)) => (interface, method),
        None => (service, method),
    };
    if method.is_empty() || interface.is_empty() {
        return Err(CallError::new(
            ErrorKind::Invalid,
            format!("invalid subject {service:?} / {method:?}: write Service.method"),
        ));
    }
    Ok((interface.to_owned(), method.to_owned()))
}

#[cfg(test)]
mod tests;
