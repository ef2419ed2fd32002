//! The bound port's inbound connections: how many are open (at most
//! `rpc.max_connections`), and the sweep that closes those that completed no
//! frame within `rpc.idle_timeout` (lymph peers ping every second).
//! A connection only raises its `active` flag (one relaxed store per read that
//! completed a frame); the sweep, one task for the port, does the rest, so no
//! timer is armed per connection or per message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::peers::Shared;

/// Sweeps per `idle_timeout`: a connection is closed after this many sweeps
/// in a row found it idle, so between 1 and 1.25 idle timeouts after its last
/// frame.
const SWEEPS_PER_TIMEOUT: u32 = 4;

/// One connection's side: its activity flag and its close signal.
#[derive(Debug)]
pub(super) struct Watch {
    active: AtomicBool,
    /// Cancelled when the connection is to close (idle, or the transport closing).
    pub close: CancellationToken,
}

impl Watch {
    /// The connection completed a frame.
    pub fn heard(&self) {
        self.active.store(true, Ordering::Relaxed);
    }
}

struct Entry {
    watch: Arc<Watch>,
    idle_sweeps: u32,
}

#[derive(Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    next_id: u64,
}

/// The open inbound connections.
pub(super) struct Conns {
    table: Mutex<Table>,
    max: usize,
}

/// A connection's place in the table, left when dropped.
pub(super) struct Registration {
    conns: Arc<Conns>,
    id: u64,
    pub watch: Arc<Watch>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.conns.table().entries.remove(&self.id);
    }
}

impl Conns {
    pub fn new(max: usize) -> Conns {
        Conns {
            table: Mutex::new(Table::default()),
            max,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more connection, or `None` when `max` are open.
    /// `close` is cancelled with the transport (a child of its token).
    pub fn register(self: &Arc<Self>, close: CancellationToken) -> Option<Registration> {
        let mut table = self.table();
        if table.entries.len() >= self.max {
            return None;
        }
        let id = table.next_id;
        table.next_id += 1;
        let watch = Arc::new(Watch {
            active: AtomicBool::new(false),
            close,
        });
        let entry = Entry {
            watch: watch.clone(),
            idle_sweeps: 0,
        };
        table.entries.insert(id, entry);
        Some(Registration {
            conns: self.clone(),
            id,
            watch,
        })
    }

    /// One sweep: closes the connections idle for `SWEEPS_PER_TIMEOUT`
    /// sweeps in a row; returns how many.
    fn sweep(&self) -> usize {
        let mut closed = 0;
        for entry in self.table().entries.values_mut() {
            if entry.watch.active.swap(false, Ordering::Relaxed) {
                entry.idle_sweeps = 0;
                continue;
            }
            entry.idle_sweeps += 1;
            if entry.idle_sweeps == SWEEPS_PER_TIMEOUT {
                entry.watch.close.cancel();
                closed += 1;
            }
        }
        closed
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.table().entries.len()
    }
}

/// The sweep task, until the transport closes.
pub(super) async fn run(shared: Arc<Shared>) {
    let every = (shared.config.idle_timeout / SWEEPS_PER_TIMEOUT).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let closed = shared.conns.sweep();
        if closed > 0 {
            // Expected: libzmq peers keep idle connections and reconnect.
            debug!(
                closed,
                open = shared.conns.len(),
                "idle rpc connections closed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_table_refuses_and_idle_entries_close_after_four_sweeps() {
        let conns = Arc::new(Conns::new(2));
        let a = conns.register(CancellationToken::new()).expect("room");
        let b = conns.register(CancellationToken::new()).expect("room");
        assert!(conns.register(CancellationToken::new()).is_none(), "full");
        for _ in 0..3 {
            b.watch.heard();
            assert_eq!(conns.sweep(), 0);
        }
        assert!(!a.watch.close.is_cancelled());
        b.watch.heard();
        assert_eq!(conns.sweep(), 1, "a: four idle sweeps");
        assert!(a.watch.close.is_cancelled() && !b.watch.close.is_cancelled());
        drop(a);
        assert_eq!(conns.len(), 1);
        assert!(conns.register(CancellationToken::new()).is_some());
    }
}
