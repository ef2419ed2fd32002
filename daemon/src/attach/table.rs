//! The attached apps of this daemon, by identity.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::session::AppSession;

#[derive(Default)]
pub struct SessionTable {
    sessions: RwLock<HashMap<String, Arc<AppSession>>>,
}

impl SessionTable {
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

    pub fn in_flight(&self) -> u32 {
        self.read().values().map(|s| s.in_flight()).sum()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<AppSession>>> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<AppSession>>> {
        self.sessions.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl crate::dispatch::LocalApps for SessionTable {
    fn expire_overdue(&self, now: tokio::time::Instant) {
        let sessions: Vec<Arc<AppSession>> = self.read().values().cloned().collect();
        for session in sessions {
            session.expire(now);
        }
    }

    fn app(&self, identity: &str) -> Option<Arc<dyn crate::dispatch::LocalApp>> {
        // Only apps that said Ready take requests.
        self.get(identity)
            .filter(|s| s.is_ready())
            .map(|s| s as Arc<dyn crate::dispatch::LocalApp>)
    }

    fn ready_apps(&self) -> Vec<Arc<dyn crate::dispatch::LocalApp>> {
        self.all()
            .into_iter()
            .filter(|s| s.is_ready())
            .map(|s| s as Arc<dyn crate::dispatch::LocalApp>)
            .collect()
    }
}
