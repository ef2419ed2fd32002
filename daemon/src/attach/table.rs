//! The attached apps of this daemon, by identity, and the one deadline
//! sweep over their work in flight.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::in_flight::Sweep;
use super::session::AppSession;
use crate::apps::LocalApp;

/// How late past its deadline a request to an app may fail, at most.
const SWEEP_EVERY: Duration = Duration::from_millis(10);

#[derive(Default)]
pub struct SessionTable {
    sessions: RwLock<HashMap<String, Arc<AppSession>>>,
    sweep: Arc<Sweep>,
}

impl SessionTable {
    /// What each new session's in-flight table reports its deadlines to.
    pub(crate) fn sweep(&self) -> Arc<Sweep> {
        self.sweep.clone()
    }

    pub fn insert(&self, session: Arc<AppSession>) {
        self.write().insert(session.identity.clone(), session);
    }

    pub fn remove(&self, identity: &str) -> Option<Arc<AppSession>> {
        self.write().remove(identity)
    }

    pub fn get(&self, identity: &str) -> Option<Arc<AppSession>> {
        self.read().get(identity).cloned()
    }

    pub fn all(&self) -> Vec<Arc<AppSession>> {
        let mut all: Vec<Arc<AppSession>> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.spec.app_name.cmp(&b.spec.app_name));
        all
    }

    /// Work every app holds, requests and deliveries: what a drain waits for.
    pub fn holding(&self) -> usize {
        self.read().values().map(|s| s.holding()).sum()
    }

    /// Fails the requests past their deadline, in every session.
    fn expire(&self, now: tokio::time::Instant) {
        let sessions: Vec<Arc<AppSession>> = self.read().values().cloned().collect();
        for session in sessions {
            session.expire(now);
        }
    }

    /// The deadline sweep: while any request waits for an app, every
    /// `SWEEP_EVERY` the overdue ones fail; with none, it sleeps until one
    /// starts. Ends with `stop`.
    pub async fn run_sweep(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if !self.sweep.any() {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.sweep.wake.notified() => continue,
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(SWEEP_EVERY) => {}
            }
            self.expire(tokio::time::Instant::now());
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<AppSession>>> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<AppSession>>> {
        self.sessions.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl crate::apps::LocalApps for SessionTable {
    fn app(&self, identity: &str) -> Option<Arc<dyn LocalApp>> {
        // Only apps that said Ready take requests.
        self.get(identity)
            .filter(|s| s.is_ready())
            .map(|s| s as Arc<dyn LocalApp>)
    }

    fn ready_apps(&self) -> Vec<Arc<dyn LocalApp>> {
        self.all()
            .into_iter()
            .filter(|s| s.is_ready())
            .map(|s| s as Arc<dyn LocalApp>)
            .collect()
    }

    /// Per request from another host: one pass under the lock, one list of
    /// the apps that serve (sorted by name only when there are several, so
    /// turns go round in a stable order).
    fn serving(
        &self,
        interface: &str,
        version: Option<&str>,
    ) -> Vec<(Arc<dyn LocalApp>, Option<String>)> {
        let mut serving: Vec<(Arc<dyn LocalApp>, Option<String>)> = self
            .read()
            .values()
            .filter(|s| s.is_ready())
            .filter_map(|s| {
                let version = crate::apps::serving_version(&s.spec, interface, version)?;
                Some((s.clone() as Arc<dyn LocalApp>, version))
            })
            .collect();
        if serving.len() > 1 {
            serving.sort_by(|a, b| a.0.spec().app_name.cmp(&b.0.spec().app_name));
        }
        serving
    }
}
