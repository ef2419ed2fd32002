//! An append-only list the harness fills from background tasks (recorded
//! events, calls a stub got) and tests read or wait on. Knows nothing about
//! what it holds.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use super::TestingError;

pub(crate) struct Log<T> {
    items: Mutex<Vec<T>>,
    /// How many items there are, for waiters.
    count: watch::Sender<usize>,
}

impl<T: Clone> Log<T> {
    pub(crate) fn new() -> Log<T> {
        Log {
            items: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        }
    }

    pub(crate) fn push(&self, item: T) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.push(item);
        self.count.send_replace(items.len());
    }

    pub(crate) fn snapshot(&self) -> Vec<T> {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The items once there are at least `n`; a timeout naming `what` (and
    /// how many came) after `within`.
    pub(crate) async fn wait_for(
        &self,
        n: usize,
        within: Duration,
        what: &str,
    ) -> Result<Vec<T>, TestingError> {
        let mut count = self.count.subscribe();
        let reached = tokio::time::timeout(within, count.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok());
        if reached {
            return Ok(self.snapshot());
        }
        Err(TestingError::Timeout(format!(
            "waited {within:?} for {n} {what}, got {}",
            *self.count.borrow()
        )))
    }
}
