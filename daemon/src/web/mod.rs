//! The HTTP gateway: apps declare routes and their service's port; the daemon
//! listens there while at least one instance is attached, forwards each request
//! to one ready instance (round-robin) and sets `X-Trace-Id`. Reaches apps only
//! through the `apps` seam, as the dispatcher does; knows nothing of sessions,
//! the registry or RPC routing.
//!
//! Every port is bounded: `web.max_connections` connections (and a permit of
//! the process's descriptor budget each; past either a client is answered 503
//! and closed), `web.header_timeout` and 64 KiB for a request's head (and the
//! timeout for an idle keep-alive connection's next request too),
//! `web.body_timeout` and `rpc.max_body_bytes` for its body, copied as it
//! arrives into one buffer (`body`); a client that reads nothing of its
//! response for `web.body_timeout` is cut (`stall`).

mod body;
mod forward;
pub mod http1;
mod listener;
pub mod routes;
mod stall;

use stall::WriteStall;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use routes::{RouteError, RouteTable};

use crate::apps::LocalApp;
use crate::config::WebConfig;
use crate::metrics::Metrics;
use crate::spec::AppSpec;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {ip}:{port} (the app's http_port)")]
    Bind {
        ip: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("http_port {port} is already served by {owner}")]
    Taken { port: u16, owner: String },
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// Checks an app's routes at `Hello`, before it is accepted.
pub fn check_routes(spec: &AppSpec) -> Result<(), RouteError> {
    RouteTable::from_spec(spec).map(|_| ())
}

/// One open port: its routes and the instances sharing it.
pub(crate) struct Port {
    port: u16,
    /// The interfaces with routes, e.g. "Web": instances must agree on it.
    owner: String,
    routes: RouteTable,
    members: RwLock<Vec<Arc<dyn LocalApp>>>,
    next: AtomicUsize,
    stop: CancellationToken,
    timeout: Duration,
    max_body: usize,
    limits: Limits,
    metrics: Arc<Metrics>,
    spans: crate::spans::Spans,
}

/// What one port's clients may hold: connections, and time to send a
/// request's headers and its body (`web.*` settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    max_connections: usize,
    header_timeout: Duration,
    body_timeout: Duration,
}

impl Limits {
    fn of(config: &WebConfig) -> Limits {
        Limits {
            max_connections: config.max_connections,
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
        }
    }
}

impl Port {
    /// The next ready instance, round-robin; `None` when none is ready.
    fn pick(&self) -> Option<Arc<dyn LocalApp>> {
        let members = self.members.read().unwrap_or_else(|p| p.into_inner());
        let ready: Vec<&Arc<dyn LocalApp>> = members.iter().filter(|s| s.is_ready()).collect();
        if ready.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        ready.get(n % ready.len()).map(|s| Arc::clone(s))
    }

    fn any_ready(&self) -> bool {
        let members = self.members.read().unwrap_or_else(|p| p.into_inner());
        members.iter().any(|s| s.is_ready())
    }
}

/// Every port the gateway has open. A plain mutex: joins and leaves are rare
/// and never hold it across an await.
pub struct Gateway {
    config: WebConfig,
    metrics: Arc<Metrics>,
    spans: crate::spans::Spans,
    max_body: usize,
    ports: Mutex<HashMap<u16, Arc<Port>>>,
    tasks: TaskTracker,
}

fn owner_of(spec: &AppSpec) -> String {
    let names: Vec<&str> = spec
        .interfaces
        .iter()
        .filter(|i| !i.routes.is_empty())
        .map(|i| i.name.as_str())
        .collect();
    names.join(",")
}

impl Gateway {
    pub fn new(
        config: WebConfig,
        max_body: usize,
        tasks: TaskTracker,
        metrics: Arc<Metrics>,
    ) -> Gateway {
        Gateway {
            config,
            metrics,
            spans: crate::spans::Spans::off(),
            max_body,
            ports: Mutex::new(HashMap::new()),
            tasks,
        }
    }

    /// Records a SERVER span of each HTTP request with `spans`.
    pub fn with_spans(mut self, spans: crate::spans::Spans) -> Gateway {
        self.spans = spans;
        self
    }

    fn ports(&self) -> std::sync::MutexGuard<'_, HashMap<u16, Arc<Port>>> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a ready app to its port, opening the port for the first instance.
    /// Apps without `http_port` or without routes have nothing to join.
    pub async fn join(&self, app: Arc<dyn LocalApp>) -> Result<(), WebError> {
        let port = app.spec().http_port;
        let routes = RouteTable::from_spec(app.spec())?;
        if port == 0 || routes.is_empty() {
            return Ok(());
        }
        let owner = owner_of(app.spec());
        // A port closed a moment ago may still be held by its accept loop
        // (it stops asynchronously): retry the bind briefly, bounded.
        let mut attempts = 0;
        loop {
            if self.add_member(port, &owner, &app)? {
                return Ok(());
            }
            let addr = format!("{}:{port}", self.config.ip);
            let bound = std::net::TcpListener::bind(&addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(tokio::net::TcpListener::from_std);
            let listener = match bound {
                Ok(listener) => listener,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts < 10 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(source) => {
                    return Err(WebError::Bind {
                        ip: self.config.ip.clone(),
                        port,
                        source,
                    });
                }
            };
            let entry = Arc::new(Port {
                port,
                owner: owner.clone(),
                routes: routes.clone(),
                members: RwLock::new(vec![app.clone()]),
                next: AtomicUsize::new(0),
                stop: CancellationToken::new(),
                timeout: self.config.timeout,
                max_body: self.max_body,
                limits: Limits::of(&self.config),
                metrics: self.metrics.clone(),
                spans: self.spans.clone(),
            });
            {
                let mut ports = self.ports();
                if ports.contains_key(&port) {
                    // Another instance opened it meanwhile; ours is dropped.
                    drop(ports);
                    continue;
                }
                ports.insert(port, entry.clone());
            }
            info!(port, ip = %self.config.ip, service = %owner, "web port open");
            self.tasks
                .spawn(listener::run(listener, entry, self.tasks.clone()));
            return Ok(());
        }
    }

    /// `Ok(true)` when the port was open and the session joined it.
    fn add_member(
        &self,
        port: u16,
        owner: &str,
        app: &Arc<dyn LocalApp>,
    ) -> Result<bool, WebError> {
        let ports = self.ports();
        let Some(entry) = ports.get(&port) else {
            return Ok(false);
        };
        if entry.owner != owner {
            return Err(WebError::Taken {
                port,
                owner: entry.owner.clone(),
            });
        }
        entry
            .members
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(app.clone());
        Ok(true)
    }

    /// Removes a session; the port closes when its last instance left.
    pub fn leave(&self, identity: &str) {
        let mut ports = self.ports();
        let mut closed = Vec::new();
        for (port, entry) in ports.iter() {
            let mut members = entry.members.write().unwrap_or_else(|p| p.into_inner());
            members.retain(|s| s.identity() != identity);
            if members.is_empty() {
                entry.stop.cancel();
                closed.push(*port);
            }
        }
        for port in closed {
            ports.remove(&port);
            info!(port, "web port closed: no instance left");
        }
    }

    /// Stops accepting on every port (shutdown); requests in flight finish.
    pub fn close_all(&self) {
        for (_, entry) in self.ports().drain() {
            entry.stop.cancel();
        }
    }
}
