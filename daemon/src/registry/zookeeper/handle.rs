//! `trait Registry` for `ZookeeperRegistry`: writes go to ZooKeeper under the
//! registrations lock; lookups are answered from the per-service caches;
//! `close` ends the session so its ephemeral nodes vanish at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use tokio::sync::watch;
use tracing::{debug, warn};
use zookeeper_client as zk;

use super::session::{delete_node, with_retry, write_node};
use super::{ServiceCache, ZookeeperError, ZookeeperRegistry, cache, node};
use crate::registry::{HttpInstance, Instance, Instances, Registry, RegistryError};

/// How long `close` waits for the cache tasks and for the server to confirm
/// the session's end before returning anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[async_trait]
impl Registry for ZookeeperRegistry {
    fn backend(&self) -> &'static str {
        "zookeeper"
    }

    fn connected(&self) -> bool {
        self.shared
            .session
            .borrow()
            .as_ref()
            .is_some_and(|client| client.state() == zk::SessionState::SyncConnected)
    }

    async fn register(&self, instance: Instance) -> Result<(), RegistryError> {
        self.check_open()?;
        let path = self.path_of(&instance.service, &instance.id)?;
        if let Some(version) = &instance.version
            && !node::is_strict_semver(version)
        {
            return Err(ZookeeperError::InvalidInstance(format!(
                "version {version:?} of {} is not strict semver (X.Y.Z[-pre]); Python lymph could not look it up",
                instance.service
            ))
            .into());
        }
        let data = node::encode(&instance);
        self.put(path, data).await
    }

    async fn unregister(&self, service: &str, id: &str) -> Result<(), RegistryError> {
        self.check_open()?;
        let path = self.path_of(service, id)?;
        self.remove(path).await
    }

    async fn register_http(&self, instance: HttpInstance) -> Result<(), RegistryError> {
        self.check_open()?;
        self.path_of(&instance.service, &instance.id)?;
        let path = self
            .shared
            .target
            .http_path(&instance.service, &instance.id);
        self.put(path, node::encode_http(&instance)).await
    }

    async fn unregister_http(&self, service: &str, id: &str) -> Result<(), RegistryError> {
        self.check_open()?;
        self.path_of(service, id)?;
        self.remove(self.shared.target.http_path(service, id)).await
    }

    async fn services(&self) -> Result<Vec<String>, RegistryError> {
        self.check_open()?;
        let shared = &self.shared;
        let client = shared.client()?;
        let root = shared.target.services_path();
        let names = match with_retry("list", &root, shared.op_timeout(), || {
            client.list_children(&root)
        })
        .await
        {
            Ok(names) => names,
            Err(ZookeeperError::Op {
                source: zk::Error::NoNode,
                ..
            }) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        // lymph's parents outlive their instances: keep names with children.
        // The stat requests are all sent before any answer is awaited.
        let stats = names
            .iter()
            .map(|name| client.check_stat(&shared.target.service_path(name)));
        let stats = tokio::time::timeout(shared.op_timeout(), join_all(stats))
            .await
            .map_err(|_| ZookeeperError::OpTimeout {
                op: "stat",
                path: root.clone(),
                timeout: shared.op_timeout(),
            })?;
        let mut live = Vec::new();
        for (name, stat) in names.into_iter().zip(stats) {
            match stat {
                Ok(Some(stat)) if stat.num_children > 0 => live.push(name),
                Ok(_) | Err(zk::Error::NoNode) => {}
                Err(source) => {
                    let path = shared.target.service_path(&name);
                    return Err(ZookeeperError::Op {
                        op: "stat",
                        path,
                        source,
                    }
                    .into());
                }
            }
        }
        live.sort();
        Ok(live)
    }

    async fn watch(&self, service: &str) -> Result<watch::Receiver<Instances>, RegistryError> {
        self.check_open()?;
        self.path_of(service, "watch")?;
        let shared = &self.shared;
        let (rx, mut loaded) = {
            let mut caches = shared.caches();
            match caches.get(service) {
                Some(cache) => (cache.tx.subscribe(), cache.loaded.clone()),
                None => {
                    let tx = Arc::new(watch::Sender::new(Arc::new(Vec::new())));
                    let (loaded_tx, loaded) = watch::channel(false);
                    let task =
                        cache::follow(shared.clone(), service.to_owned(), tx.clone(), loaded_tx);
                    shared.tasks.spawn(task);
                    let rx = tx.subscribe();
                    caches.insert(
                        service.to_owned(),
                        ServiceCache {
                            tx,
                            loaded: loaded.clone(),
                        },
                    );
                    (rx, loaded)
                }
            }
        };
        // The first answer comes from ZooKeeper; later ones from the cache at once.
        let wait = shared.config.connect_timeout;
        match tokio::time::timeout(wait, loaded.wait_for(|done| *done)).await {
            Ok(Ok(_)) => Ok(rx),
            Ok(Err(_)) => Err(RegistryError::Closed),
            Err(_) => Err(RegistryError::Backend(format!(
                "zookeeper did not answer the lookup of {service} within {wait:?}"
            ))),
        }
    }

    async fn close(&self) {
        let shared = &self.shared;
        if shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Order: stop the tasks, let an in-flight write finish, then drop the
        // last client so the session (and its ephemeral nodes) ends.
        shared.cancel.cancel();
        shared.registrations.lock().await.clear();
        shared.caches().clear();
        shared.tasks.close();
        if tokio::time::timeout(CLOSE_GRACE, shared.tasks.wait())
            .await
            .is_err()
        {
            warn!("zookeeper registry tasks did not stop within {CLOSE_GRACE:?}");
        }
        let Some(client) = shared.session.send_replace(None) else {
            return;
        };
        let session = client.session_id();
        let mut state = client.state_watcher();
        drop(client);
        let ended = async {
            while !state.peek_state().is_terminated() {
                state.changed().await;
            }
        };
        match tokio::time::timeout(CLOSE_GRACE, ended).await {
            Ok(()) => debug!(%session, "zookeeper session closed"),
            Err(_) => {
                warn!(%session, "zookeeper did not confirm the session's close within {CLOSE_GRACE:?}")
            }
        }
    }
}

impl ZookeeperRegistry {
    /// Writes an ephemeral node and remembers it, so the supervisor writes it
    /// again into the next session.
    async fn put(&self, path: String, data: Vec<u8>) -> Result<(), RegistryError> {
        let shared = &self.shared;
        let mut registrations = shared.registrations.lock().await;
        self.check_open()?;
        let client = shared.client()?;
        registrations.insert(path.clone(), data.clone());
        shared.owned_changed.notify_one();
        match write_node(&client, &path, &data, shared.op_timeout()).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_session_lost() => {
                // Kept in `registrations`: the supervisor writes it into the next session.
                warn!(%path, %error, "zookeeper session lost; the instance is registered when a new session opens");
                Ok(())
            }
            Err(error) => {
                registrations.remove(&path);
                Err(error.into())
            }
        }
    }

    /// Deletes a node this session wrote and forgets it.
    async fn remove(&self, path: String) -> Result<(), RegistryError> {
        let shared = &self.shared;
        let mut registrations = shared.registrations.lock().await;
        if registrations.remove(&path).is_none() {
            return Ok(());
        }
        shared.owned_changed.notify_one();
        let client = shared.client()?;
        match delete_node(&client, &path, shared.op_timeout()).await {
            // A lost session took the node with it; it is no longer re-registered.
            Err(error) if !error.is_session_lost() => Err(error.into()),
            _ => Ok(()),
        }
    }
}

impl Drop for ZookeeperRegistry {
    fn drop(&mut self) {
        // Without awaiting: the tasks stop, and the session ends when the last
        // in-flight clone of the client drops.
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            self.shared.cancel.cancel();
            self.shared.caches().clear();
            self.shared.session.send_replace(None);
        }
    }
}
