//! A started call's cancel handle: once the call is on its way it knows
//! where (the local app's request id, or the peer and the transport's
//! request id); cancelling tells that side, and a call cancelled before it
//! got there is not started.

use std::sync::{Arc, Mutex, Weak};

use super::Picked;
use crate::apps::LocalApp;
use crate::rpc::Remote;

/// Why the handling app is told to stop.
const REASON: &str = "the caller cancelled the call";

/// Cancels the call it came from (a no-op once the call ended).
#[derive(Clone, Default)]
pub struct CallHandle(Arc<Mutex<Where>>);

#[derive(Default)]
enum Where {
    /// Not handed to anyone yet.
    #[default]
    Starting,
    Cancelled,
    Local {
        app: Weak<dyn LocalApp>,
        id: u64,
    },
    Remote {
        remote: Weak<dyn Remote>,
        /// The instance (its endpoint) the request went to.
        picked: Picked,
        id: String,
        /// The peer is a lymphd (it understands `lymphd.cancel`).
        lymphd: bool,
    },
}

impl CallHandle {
    fn place(&self) -> std::sync::MutexGuard<'_, Where> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels the call: the side handling it is told, the call ends
    /// `cancelled` (its callback runs as for any other outcome).
    pub fn cancel(&self) {
        let place = std::mem::replace(&mut *self.place(), Where::Cancelled);
        match place {
            Where::Local { app, id } => {
                if let Some(app) = app.upgrade() {
                    app.cancel_request(id, REASON);
                }
            }
            Where::Remote {
                remote,
                picked,
                id,
                lymphd,
            } => {
                if let Some(remote) = remote.upgrade() {
                    remote.cancel_request(&picked.instance().endpoint, &id, lymphd);
                }
            }
            Where::Starting | Where::Cancelled => {}
        }
    }

    /// Whether the call was cancelled before it was handed to anyone.
    pub(super) fn cancelled(&self) -> bool {
        matches!(*self.place(), Where::Cancelled)
    }

    /// The call is waiting for a local app's reply to request `id`.
    pub(super) fn at_app(&self, app: &Arc<dyn LocalApp>, id: u64) {
        self.settle(Where::Local {
            app: Arc::downgrade(app),
            id,
        });
    }

    /// The call is waiting for a peer's reply to the transport's request `id`.
    pub(super) fn at_peer(
        &self,
        remote: &Arc<dyn Remote>,
        picked: Picked,
        id: String,
        lymphd: bool,
    ) {
        self.settle(Where::Remote {
            remote: Arc::downgrade(remote),
            picked,
            id,
            lymphd,
        });
    }

    /// Records where the call went; a cancel that came meanwhile is passed on.
    fn settle(&self, place: Where) {
        let mut current = self.place();
        if matches!(*current, Where::Cancelled) {
            drop(current);
            *self.place() = place;
            self.cancel();
            return;
        }
        *current = place;
    }
}
