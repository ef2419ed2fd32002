//! Probing of a watched service's instances: whenever its instance list
//! changes, every remote endpoint the transport has never reached is probed
//! (connect, handshake, `lymph.ping`), so a node whose endpoint never answers
//! is known dead, and a fresh instance verified, before calls need to choose.

use std::collections::HashSet;
use std::sync::Weak;

use tokio::sync::watch;

use super::Me;
use crate::registry::Instances;
use crate::rpc::{Liveness, Remote};

/// Endpoints probed per change of one service's list at most: a registry
/// flooded with nodes must not make the daemon open a connection per node at
/// once (the rest are probed when a call passes them over).
const MAX_PROBES_PER_CHANGE: usize = 64;

/// The task body, one per watched service: ends when the registry closes
/// the list, or the transport is gone (it holds no strong reference to it,
/// so it never keeps a stopped transport alive).
pub(super) fn follow(
    mut rx: watch::Receiver<Instances>,
    remote: Weak<dyn Remote>,
    me: &Me,
) -> impl Future<Output = ()> + Send + 'static {
    let own = me.endpoint.clone();
    async move {
        loop {
            let list = rx.borrow_and_update().clone();
            let Some(transport) = remote.upgrade() else {
                return;
            };
            let endpoints: HashSet<&str> = list
                .iter()
                .map(|i| i.endpoint.as_str())
                .filter(|e| *e != own)
                .collect();
            endpoints
                .into_iter()
                .filter(|e| transport.liveness(e) == Liveness::Unverified)
                .take(MAX_PROBES_PER_CHANGE)
                .for_each(|e| transport.probe(e));
            drop(transport);
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}
