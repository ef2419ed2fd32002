//! The ZooKeeper session's life: opening one (with a clear error naming the
//! hosts), backoff, lymph's way of writing an instance node, and the supervisor
//! task that replaces an expired session and re-registers every node this
//! registry owns. Knows nothing of the per-service caches beyond publishing the
//! new session they re-arm on.

use std::sync::Arc;
use std::time::Duration;

use lymph_proto::backoff::Backoff;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::config::{Target, ZookeeperConfig};
use super::{Shared, ZookeeperError};

/// Instance nodes: ephemeral, not sequential, world ACL (`docs/wire.md` §2.2).
const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
/// Their parents: persistent, empty data, created on demand (kazoo's makepath).
const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

/// The backoff between reconnection attempts: 200 ms doubling to 5 s.
pub(crate) const BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
/// The pause between attempts of one operation while the connection is lost.
const CONNECTION_LOSS_PAUSE: Duration = Duration::from_millis(50);

/// Opens a new session, or says which hosts could not be reached in time.
pub(crate) async fn open_session(
    target: &Target,
    config: &ZookeeperConfig,
) -> Result<zk::Client, ZookeeperError> {
    let connector = zk::Client::connector().with_session_timeout(config.session_timeout);
    match tokio::time::timeout(config.connect_timeout, connector.connect(&target.servers)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(source)) => Err(ZookeeperError::Connect {
            servers: target.servers.clone(),
            source,
        }),
        Err(_) => Err(ZookeeperError::Unreachable {
            servers: target.servers.clone(),
            timeout: config.connect_timeout,
        }),
    }
}

/// Runs one ZooKeeper operation with a deadline, retrying while the
/// connection (not the session) is lost: the client reconnects by itself.
pub(crate) async fn with_retry<T, F, Fut>(
    what: &'static str,
    path: &str,
    deadline: Duration,
    op: F,
) -> Result<T, ZookeeperError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, zk::Error>>,
{
    let attempts = async {
        loop {
            match op().await {
                Err(zk::Error::ConnectionLoss) => tokio::time::sleep(CONNECTION_LOSS_PAUSE).await,
                other => return other,
            }
        }
    };
    match tokio::time::timeout(deadline, attempts).await {
        Ok(result) => result.map_err(|source| ZookeeperError::Op {
            op: what,
            path: path.to_owned(),
            source,
        }),
        Err(_) => Err(ZookeeperError::OpTimeout {
            op: what,
            path: path.to_owned(),
            timeout: deadline,
        }),
    }
}

/// lymph's registration: delete a stale node at the path (ignoring "no node"),
/// then create the ephemeral node, creating missing parents persistent.
pub(crate) async fn write_node(
    client: &zk::Client,
    path: &str,
    data: &[u8],
    deadline: Duration,
) -> Result<(), ZookeeperError> {
    let parent = path.rsplit_once('/').map_or("/", |(parent, _)| parent);
    with_retry("register", path, deadline, || async move {
        match client.delete(path, None).await {
            Ok(()) | Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e),
        }
        match client.create(path, data, &EPHEMERAL).await {
            Err(zk::Error::NoNode) => {
                client.mkdir(parent, &PERSISTENT).await?;
                client.create(path, data, &EPHEMERAL).await.map(drop)
            }
            other => other.map(drop),
        }
    })
    .await
}

/// Deletes a node; a missing one is fine.
pub(crate) async fn delete_node(
    client: &zk::Client,
    path: &str,
    deadline: Duration,
) -> Result<(), ZookeeperError> {
    with_retry("unregister", path, deadline, || async move {
        match client.delete(path, None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
}

/// The supervisor task: waits for the session to end (expiry, auth failure,
/// a close we did not ask for), then opens a new one with backoff and
/// re-registers every node. Ends when the registry is closed.
pub(crate) async fn supervise(shared: Arc<Shared>, mut state: zk::StateWatcher) {
    loop {
        let lost = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            lost = wait_terminal(&mut state) => lost,
        };
        if shared.cancel.is_cancelled() {
            return;
        }
        warn!(state = %lost, hosts = %shared.target.servers,
            "zookeeper session lost; opening a new one and re-registering");
        match reconnect(&shared).await {
            Some(next) => state = next,
            None => return,
        }
    }
}

/// Follows the session's states, logging them, until a terminal one.
async fn wait_terminal(state: &mut zk::StateWatcher) -> zk::SessionState {
    let mut current = state.peek_state();
    while !current.is_terminated() {
        current = state.changed().await;
        match current {
            zk::SessionState::Disconnected => {
                warn!("zookeeper connection lost; the client is reconnecting")
            }
            zk::SessionState::SyncConnected => info!("zookeeper connection re-established"),
            other => debug!(state = %other, "zookeeper session state"),
        }
    }
    current
}

/// Opens sessions until one works (or the registry closes: `None`), publishes
/// it, and re-creates every registered node under the registrations lock so no
/// concurrent `register` interleaves with the re-registration.
async fn reconnect(shared: &Shared) -> Option<zk::StateWatcher> {
    let mut backoff = BACKOFF;
    loop {
        let attempt = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return None,
            attempt = open_session(&shared.target, &shared.config) => attempt,
        };
        let client = match attempt {
            Ok(client) => client,
            Err(error) => {
                let delay = backoff.next_delay();
                warn!(hosts = %shared.target.servers, %error,
                    "cannot reach zookeeper at {}; retrying in {delay:?}", shared.target.servers);
                tokio::select! {
                    _ = shared.cancel.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let registrations = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return None,
            registrations = shared.registrations.lock() => registrations,
        };
        if shared.cancel.is_cancelled() {
            return None;
        }
        let state = client.state_watcher();
        // Watchers see the new session now and re-arm on it.
        shared.session.send_replace(Some(client.clone()));
        let mut failed = 0usize;
        for (path, data) in registrations.iter() {
            if let Err(error) = write_node(&client, path, data, shared.op_timeout()).await {
                warn!(%path, %error, "cannot re-register instance after the session loss");
                failed += 1;
            }
        }
        info!(session = %client.session_id(), nodes = registrations.len(), failed,
            "zookeeper session re-established; instances re-registered");
        return Some(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_seconds() {
        let mut b = BACKOFF;
        let ms: Vec<u128> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(200));
    }
}
