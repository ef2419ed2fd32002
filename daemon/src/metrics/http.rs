//! One HTTP route's series: requests, 5xx answers, durations of all of them,
//! and (labelled histograms only) durations by status code, at most
//! `MAX_STATUSES` codes per route (later ones count under status 0, shown
//! as `_other`), so an app answering with many codes cannot grow memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::Timing;

/// Status codes one route keeps apart, at most.
const MAX_STATUSES: usize = 32;

#[derive(Default)]
pub struct HttpStats {
    pub calls: AtomicU64,
    /// Answers with a 5xx status.
    pub errors: AtomicU64,
    pub all: Timing,
    statuses: RwLock<Vec<(u16, Arc<Timing>)>>,
}

impl HttpStats {
    pub fn record(&self, status: u16, elapsed: Duration, by_status: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.all.record(elapsed);
        if by_status {
            self.status(status).record(elapsed);
        }
    }

    /// The timing of `status`, made on first use (status 0 past the cap).
    fn status(&self, status: u16) -> Arc<Timing> {
        let read = self.statuses.read().unwrap_or_else(|p| p.into_inner());
        if let Some((_, timing)) = read.iter().find(|(s, _)| *s == status) {
            return timing.clone();
        }
        drop(read);
        let mut write = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        let status = if write.len() >= MAX_STATUSES {
            0
        } else {
            status
        };
        if let Some((_, timing)) = write.iter().find(|(s, _)| *s == status) {
            return timing.clone();
        }
        let timing = Arc::new(Timing::default());
        write.push((status, timing.clone()));
        timing
    }

    /// Durations by status code (0: past the cap), sorted by code.
    pub fn by_status(&self) -> Vec<(u16, Arc<Timing>)> {
        let read = self.statuses.read().unwrap_or_else(|p| p.into_inner());
        let mut all = read.clone();
        all.sort_by_key(|(s, _)| *s);
        all
    }
}
