//! The keeper: a data watch on every node this registry owns (the daemon's
//! `lymph` instance, every attached app's instances, web instances),
//! re-creating one that someone else deleted or rewrote, with a warning naming
//! its path.
//! Re-arms on every new session (the supervisor re-registers after a session
//! loss) and whenever the set of owned nodes changes. Knows nothing of the
//! per-service caches.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::Shared;
use super::session::{BACKOFF, write_node};

/// What arming the watches found.
enum Armed {
    /// Every owned node is as written; the watches fire on its deletion or change.
    Watching(Vec<zk::OneshotWatcher>),
    /// These owned nodes are gone or hold other data: write them, then arm again.
    Missing(Vec<String>),
    /// The session is gone: wait for the supervisor's next one.
    SessionLost,
    /// ZooKeeper failed or did not answer in time: try again after a pause.
    Failed(String),
}

/// The task body; ends when the registry closes.
pub(crate) async fn keep(shared: Arc<Shared>) {
    let mut sessions = shared.session.subscribe();
    let mut backoff = BACKOFF;
    loop {
        let Some(client) = sessions.borrow_and_update().clone() else {
            return;
        };
        let armed = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            armed = arm(&shared, &client) => armed,
        };
        // Never hold a client clone while waiting (it keeps a closed session alive).
        drop(client);
        let watchers = match armed {
            Armed::Watching(watchers) => {
                backoff.reset();
                watchers
            }
            Armed::Missing(paths) => {
                if restore(&shared, paths).await {
                    continue;
                }
                // A write failed: pause before looking again, never spin.
                tokio::select! {
                    _ = shared.cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => continue,
                }
            }
            Armed::SessionLost => {
                tokio::select! {
                    _ = shared.cancel.cancelled() => return,
                    changed = sessions.changed() => if changed.is_err() { return },
                }
                continue;
            }
            Armed::Failed(error) => {
                let delay = backoff.next_delay();
                warn!(%error, "cannot watch this daemon's instance nodes; retrying in {delay:?}");
                tokio::select! {
                    _ = shared.cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let mut fired: FuturesUnordered<_> = watchers.into_iter().map(|w| w.changed()).collect();
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            // A register or unregister: arm over the new set.
            _ = shared.owned_changed.notified() => {}
            changed = sessions.changed() => if changed.is_err() { return },
            Some(event) = fired.next() => {
                debug!(path = %event.path, event = ?event.event_type, "own instance node watch fired");
            }
        }
    }
}

/// Arms a data watch on every owned node, checking its data (a few hundred
/// bytes each). The registrations lock is held only to copy them: a
/// `register` in progress finishes first, so its delete-and-create is never
/// mistaken for a deletion by someone else.
async fn arm(shared: &Shared, client: &zk::Client) -> Armed {
    let owned: Vec<(String, Vec<u8>)> = shared
        .registrations
        .lock()
        .await
        .iter()
        .map(|(path, data)| (path.clone(), data.clone()))
        .collect();
    let checks = join_all(
        owned
            .iter()
            .map(|(path, _)| client.get_and_watch_data(path)),
    );
    let Ok(answers) = tokio::time::timeout(shared.op_timeout(), checks).await else {
        return Armed::Failed(format!("no answer within {:?}", shared.op_timeout()));
    };
    let mut watchers = Vec::with_capacity(owned.len());
    let mut missing = Vec::new();
    for ((path, ours), answer) in owned.into_iter().zip(answers) {
        match answer {
            Ok((data, _, watcher)) if data == ours => watchers.push(watcher),
            Ok(_) | Err(zk::Error::NoNode) => missing.push(path),
            Err(zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::SessionMoved) => {
                return Armed::SessionLost;
            }
            Err(e) => return Armed::Failed(e.to_string()),
        }
    }
    if missing.is_empty() {
        Armed::Watching(watchers)
    } else {
        Armed::Missing(missing)
    }
}

/// Writes again the owned nodes found missing or changed, under the
/// registrations lock (no `register`, `unregister` or re-registration
/// interleaves): a node unregistered meanwhile, or as written by then, is left
/// alone. False when a write failed.
async fn restore(shared: &Shared, paths: Vec<String>) -> bool {
    let registrations = tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => return true,
        registrations = shared.registrations.lock() => registrations,
    };
    let Ok(client) = shared.client() else {
        return true;
    };
    let mut restored = true;
    for path in paths {
        let Some(data) = registrations.get(&path) else {
            continue;
        };
        match client.get_data(&path).await {
            Err(zk::Error::NoNode) => {
                warn!(%path, "this daemon's instance node was deleted by someone else; re-creating it")
            }
            Ok((now, _)) if now != *data => {
                warn!(%path, "this daemon's instance node was rewritten by someone else; restoring it")
            }
            // As written, or ZooKeeper failing: the next arming looks again.
            _ => continue,
        }
        match write_node(&client, &path, data, shared.op_timeout()).await {
            Ok(()) => info!(%path, "instance node re-created"),
            Err(error) => {
                warn!(%path, %error, "cannot re-create the instance node; retrying");
                restored = false;
            }
        }
    }
    restored
}
