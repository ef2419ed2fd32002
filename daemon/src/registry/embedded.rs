//! The embedded registry: one in-memory table per daemon, shared by sessions.
//! A `std::sync::Mutex` guards it: every critical section is a few map
//! operations and never awaits.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Instance, Instances, Registry, RegistryError};

/// The shared table. Cheap to clone; each `session()` is one registry client.
#[derive(Clone, Default)]
pub struct EmbeddedStore {
    inner: Arc<Mutex<Table>>,
    next_session: Arc<AtomicU64>,
}

#[derive(Default)]
struct Table {
    services: HashMap<String, ServiceEntry>,
}

struct ServiceEntry {
    /// id -> (owning session, instance); ordered so every reader sees one order.
    instances: BTreeMap<String, (u64, Instance)>,
    tx: watch::Sender<Instances>,
}

impl ServiceEntry {
    fn new() -> Self {
        ServiceEntry {
            instances: BTreeMap::new(),
            tx: watch::Sender::new(Arc::new(Vec::new())),
        }
    }

    fn publish(&self) {
        let list: Vec<Instance> = self.instances.values().map(|(_, i)| i.clone()).collect();
        self.tx.send_replace(Arc::new(list));
    }
}

impl EmbeddedStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a session on the table.
    pub fn session(&self) -> EmbeddedRegistry {
        EmbeddedRegistry {
            store: self.clone(),
            session: self.next_session.fetch_add(1, Ordering::Relaxed),
            closed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves plain maps behind; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remove_session(&self, session: u64) {
        let mut table = self.lock();
        for entry in table.services.values_mut() {
            let before = entry.instances.len();
            entry.instances.retain(|_, (owner, _)| *owner != session);
            if entry.instances.len() != before {
                entry.publish();
            }
        }
    }
}

/// One session of the embedded registry. Dropping the last clone closes it.
#[derive(Clone)]
pub struct EmbeddedRegistry {
    store: EmbeddedStore,
    session: u64,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl EmbeddedRegistry {
    fn check_open(&self) -> Result<(), RegistryError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RegistryError::Closed);
        }
        Ok(())
    }
}

#[async_trait]
impl Registry for EmbeddedRegistry {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn register(&self, instance: Instance) -> Result<(), RegistryError> {
        self.check_open()?;
        let mut table = self.store.lock();
        let entry = table
            .services
            .entry(instance.service.clone())
            .or_insert_with(ServiceEntry::new);
        entry
            .instances
            .insert(instance.id.clone(), (self.session, instance));
        entry.publish();
        Ok(())
    }

    async fn unregister(&self, service: &str, id: &str) -> Result<(), RegistryError> {
        self.check_open()?;
        let mut table = self.store.lock();
        if let Some(entry) = table.services.get_mut(service)
            && entry
                .instances
                .get(id)
                .is_some_and(|(owner, _)| *owner == self.session)
        {
            entry.instances.remove(id);
            entry.publish();
        }
        Ok(())
    }

    async fn services(&self) -> Result<Vec<String>, RegistryError> {
        self.check_open()?;
        let table = self.store.lock();
        let mut names: Vec<String> = table
            .services
            .iter()
            .filter(|(_, e)| !e.instances.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn watch(&self, service: &str) -> Result<watch::Receiver<Instances>, RegistryError> {
        self.check_open()?;
        let mut table = self.store.lock();
        let entry = table
            .services
            .entry(service.to_owned())
            .or_insert_with(ServiceEntry::new);
        Ok(entry.tx.subscribe())
    }

    async fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.store.remove_session(self.session);
        }
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        // The last clone of a session closes it, as a dropped ZooKeeper client does.
        if Arc::strong_count(&self.closed) == 1 && !self.closed.swap(true, Ordering::AcqRel) {
            self.store.remove_session(self.session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::conformance;

    fn factory(store: &EmbeddedStore) -> impl Fn() -> Arc<dyn Registry> + '_ {
        move || Arc::new(store.session()) as Arc<dyn Registry>
    }

    #[tokio::test]
    async fn conformance_register_lookup_unregister() {
        let store = EmbeddedStore::new();
        conformance::register_lookup_unregister(factory(&store)).await;
    }

    #[tokio::test]
    async fn conformance_sessions_see_each_other() {
        let store = EmbeddedStore::new();
        conformance::sessions_see_each_other(factory(&store)).await;
    }

    #[tokio::test]
    async fn conformance_closed_session_loses_its_instances() {
        let store = EmbeddedStore::new();
        conformance::closed_session_loses_its_instances(factory(&store)).await;
    }

    #[tokio::test]
    async fn conformance_watch_follows_changes() {
        let store = EmbeddedStore::new();
        conformance::watch_follows_changes(factory(&store)).await;
    }

    #[tokio::test]
    async fn conformance_reregister_replaces() {
        let store = EmbeddedStore::new();
        conformance::reregister_replaces(factory(&store)).await;
    }

    #[tokio::test]
    async fn dropping_the_last_handle_closes_the_session() {
        let store = EmbeddedStore::new();
        let observer = store.session();
        {
            let session = store.session();
            session
                .register(conformance::instance("Drop", "d1", "i1"))
                .await
                .expect("register");
            assert_eq!(observer.services().await.expect("services"), vec!["Drop"]);
        }
        assert!(observer.services().await.expect("services").is_empty());
    }
}
