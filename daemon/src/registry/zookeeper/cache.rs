//! The per-service cache: one task per watched service keeps a
//! `watch::Sender<Instances>` fresh from ZooKeeper watches, so lookups never
//! query ZooKeeper. Child watch on `/services/<service>` (exists-watch while it
//! does not exist yet); every change re-lists the children and reads those new
//! or changed (`read`). Knows nothing of registrations.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{debug, warn};
use zookeeper_client as zk;

use super::Shared;
use super::read::Known;
use super::session::BACKOFF;
use crate::registry::{Instance, Instances};

/// What one pass over the service found.
enum Pass {
    /// The instances now, and the one-shot watch that fires on the next change.
    Watching(zk::OneshotWatcher, Vec<Instance>),
    /// The parent appeared between "no node" and the exists-watch: list again.
    Again,
}

/// The cache task body. Publishes only when the list changed; marks `loaded`
/// after the first successful pass (so `watch()` can wait for it). Ends when
/// the registry closes, dropping the sender: receivers then see a closed channel.
pub(crate) async fn follow(
    shared: Arc<Shared>,
    service: String,
    tx: Arc<watch::Sender<Instances>>,
    loaded: watch::Sender<bool>,
) {
    let path = shared.target.service_path(&service);
    let mut sessions = shared.session.subscribe();
    let mut backoff = BACKOFF;
    // Kept across passes and sessions: an unchanged node is not read again.
    let mut known = Known::default();
    loop {
        let Some(client) = sessions.borrow_and_update().clone() else {
            return;
        };
        let pass = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            pass = tokio::time::timeout(shared.op_timeout(), one_pass(&client, &service, &path, &mut known)) => pass,
        };
        // Never hold a client clone while waiting: a held clone keeps a closed
        // registry's session (and its ephemeral nodes) alive.
        drop(client);
        let watcher = match pass {
            Ok(Ok(Pass::Watching(watcher, list))) => {
                publish(&tx, list);
                loaded.send_replace(true);
                backoff.reset();
                watcher
            }
            Ok(Ok(Pass::Again)) => continue,
            Ok(Err(
                zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::SessionMoved,
            )) => {
                debug!(%service, "zookeeper session gone; waiting for the next one");
                if !next_session(&shared, &mut sessions).await {
                    return;
                }
                continue;
            }
            failed => {
                let delay = backoff.next_delay();
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {:?}", shared.op_timeout()),
                };
                warn!(%service, %error, "cannot look up service in zookeeper; retrying in {delay:?}");
                tokio::select! {
                    _ = shared.cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let event = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            event = watcher.changed() => event,
        };
        debug!(%service, event = ?event.event_type, "zookeeper watch fired");
        if event.event_type == zk::EventType::Session
            && event.session_state.is_terminated()
            && !next_session(&shared, &mut sessions).await
        {
            return;
        }
        // Any node event (watches are one-shot): list again, which re-arms.
    }
}

/// Waits until the supervisor publishes another session; false once closed.
async fn next_session(shared: &Shared, sessions: &mut watch::Receiver<Option<zk::Client>>) -> bool {
    tokio::select! {
        _ = shared.cancel.cancelled() => false,
        changed = sessions.changed() => changed.is_ok(),
    }
}

/// Lists the children with a child watch (or arms an exists-watch when the
/// service's node does not exist yet) and reads the new or changed children.
async fn one_pass(
    client: &zk::Client,
    service: &str,
    path: &str,
    known: &mut Known,
) -> Result<Pass, zk::Error> {
    match client.list_and_watch_children(path).await {
        Ok((children, watcher)) => {
            let list = known.read(client, service, path, children).await?;
            Ok(Pass::Watching(watcher, list))
        }
        Err(zk::Error::NoNode) => match client.check_and_watch_stat(path).await? {
            (None, watcher) => Ok(Pass::Watching(watcher, Vec::new())),
            (Some(_), _) => Ok(Pass::Again),
        },
        Err(e) => Err(e),
    }
}

fn publish(tx: &watch::Sender<Instances>, list: Vec<Instance>) {
    tx.send_if_modified(|current| {
        if **current == list {
            return false;
        }
        *current = Arc::new(list);
        true
    });
}
