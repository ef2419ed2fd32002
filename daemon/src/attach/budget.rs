//! An app's concurrency budget (`docs/ARCHITECTURE.md`, "Flow control"):
//! one pool of `max_concurrency` permits for its RPC requests, HTTP requests
//! and event deliveries together. Deliveries also take a permit of the
//! delivery share (half the budget, rounded up, at least 1) and of their
//! handler's limit, when it has one; requests take one of their method's.
//! A request that finds no permit fails `overloaded` at once; a delivery
//! waits for its permits. The permits live in the work's in-flight entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{CallError, ErrorKind};
use crate::spec::AppSpec;

/// Deliveries held at once, at most, by an app whose budget is `max`: half
/// of it, rounded up, at least 1. Requests may use all of it.
pub(crate) fn delivery_share(max: u32) -> u32 {
    max.div_ceil(2).max(1)
}

/// A limit of its own (a method's, a handler's) and its permits.
struct Limit {
    max: u32,
    permits: Arc<Semaphore>,
}

impl Limit {
    fn new(max: u32) -> Limit {
        Limit {
            max,
            permits: Arc::new(Semaphore::new(max as usize)),
        }
    }
}

/// The permits one piece of work holds; dropping them (with its in-flight
/// entry) gives them back.
#[derive(Default)]
pub(crate) struct Permits {
    _budget: Option<OwnedSemaphorePermit>,
    _share: Option<OwnedSemaphorePermit>,
    _own: Option<OwnedSemaphorePermit>,
    _counted: Option<Counted>,
}

/// One delivery in a subscription's count of deliveries held.
struct Counted(Arc<AtomicU32>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What one subscription's deliveries take beside the budget: its handler's
/// limit (shared by the subscriptions of one handler), and its count of
/// deliveries held now (for status).
#[derive(Clone)]
pub(crate) struct Gate {
    handler: Option<Arc<Semaphore>>,
    held: Arc<AtomicU32>,
}

impl Gate {
    /// Deliveries of this subscription the app holds now.
    pub(crate) fn held(&self) -> u32 {
        self.held.load(Ordering::Acquire)
    }
}

pub(crate) struct Budget {
    app_name: String,
    max: u32,
    all: Arc<Semaphore>,
    share: Arc<Semaphore>,
    /// Methods with a limit of their own: interface → method → limit. The
    /// interface is the one requests to its name reach (`AppSpec::interface`).
    methods: HashMap<String, HashMap<String, Limit>>,
    /// Handlers with a limit of their own: (interface, handler) → limit.
    handlers: HashMap<(String, String), Limit>,
}

impl Budget {
    pub(crate) fn new(spec: &AppSpec, max: u32) -> Budget {
        let mut methods: HashMap<String, HashMap<String, Limit>> = HashMap::new();
        for iface in &spec.interfaces {
            if methods.contains_key(&iface.name) {
                continue;
            }
            let Some(served) = spec.interface(&iface.name) else {
                continue;
            };
            let limited: HashMap<String, Limit> = served
                .methods
                .iter()
                .filter(|m| m.concurrency > 0)
                .map(|m| (m.name.clone(), Limit::new(m.concurrency)))
                .collect();
            if !limited.is_empty() {
                methods.insert(iface.name.clone(), limited);
            }
        }
        let handlers = handler_limits(spec)
            .into_iter()
            .map(|(key, max)| (key, Limit::new(max)))
            .collect();
        Budget {
            app_name: spec.app_name.clone(),
            max,
            all: Arc::new(Semaphore::new(max as usize)),
            share: Arc::new(Semaphore::new(delivery_share(max) as usize)),
            methods,
            handlers,
        }
    }

    /// Permits for a request to `interface.method` (HTTP requests: `None`),
    /// or `overloaded` at once, naming the limit it is over.
    pub(crate) fn request(&self, method: Option<(&str, &str)>) -> Result<Permits, CallError> {
        let own = match method.and_then(|(i, m)| Some((i, m, self.methods.get(i)?.get(m)?))) {
            None => None,
            Some((interface, method, limit)) => {
                let permit = limit.permits.clone().try_acquire_owned().map_err(|_| {
                    CallError::new(
                        ErrorKind::Overloaded,
                        format!(
                            "{interface}.{method} of {} is at its concurrency limit ({} at once)",
                            self.app_name, limit.max
                        ),
                    )
                })?;
                Some(permit)
            }
        };
        let budget = self.all.clone().try_acquire_owned().map_err(|_| {
            CallError::new(
                ErrorKind::Overloaded,
                format!(
                    "{} is at its concurrency limit ({} in flight)",
                    self.app_name,
                    crate::plural::count(
                        u64::from(self.max),
                        "request or delivery",
                        "requests and deliveries"
                    )
                ),
            )
        })?;
        Ok(Permits {
            _budget: Some(budget),
            _own: own,
            ..Permits::default()
        })
    }

    /// The gate of a subscription of `interface` handled by `handler`, and
    /// the deliveries its consumer may hold unsettled at once (its prefetch):
    /// the handler's limit when it has one, never more than the share.
    pub(crate) fn gate(&self, interface: &str, handler: &str) -> (Gate, u32) {
        let key = (interface.to_owned(), handler.to_owned());
        let limit = self.handlers.get(&key);
        let share = delivery_share(self.max);
        let prefetch = limit.map_or(share, |l| l.max.min(share));
        let gate = Gate {
            handler: limit.map(|l| l.permits.clone()),
            held: Arc::default(),
        };
        (gate, prefetch)
    }

    /// Waits for a delivery's permits: its handler's, the delivery share's,
    /// the budget's (in that order, so it holds none of the wider ones while
    /// it waits for a narrower one). `None` only if the budget was closed.
    pub(crate) async fn delivery(&self, gate: &Gate) -> Option<Permits> {
        let own = match &gate.handler {
            Some(handler) => Some(handler.clone().acquire_owned().await.ok()?),
            None => None,
        };
        let share = self.share.clone().acquire_owned().await.ok()?;
        let budget = self.all.clone().acquire_owned().await.ok()?;
        gate.held.fetch_add(1, Ordering::AcqRel);
        Some(Permits {
            _budget: Some(budget),
            _share: Some(share),
            _own: own,
            _counted: Some(Counted(gate.held.clone())),
        })
    }
}

/// Each handler's own limit, by (interface, handler): the smallest one its
/// subscriptions declare (one handler may subscribe to several event types;
/// they share its queue and its limit). Handlers without one are left out.
fn handler_limits(spec: &AppSpec) -> HashMap<(String, String), u32> {
    let mut limits: HashMap<(String, String), u32> = HashMap::new();
    for iface in &spec.interfaces {
        for sub in iface.subscriptions.iter().filter(|s| s.concurrency > 0) {
            let key = (iface.name.clone(), sub.handler.clone());
            let limit = limits.entry(key).or_insert(sub.concurrency);
            *limit = (*limit).min(sub.concurrency);
        }
    }
    limits
}

#[cfg(test)]
mod tests;
