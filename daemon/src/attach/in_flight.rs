//! An app's one table of work in flight: RPC requests, HTTP requests and
//! event deliveries it holds, under one id space (so one `Cancel` id names
//! one of them), each with its concurrency permits (`budget`) and, for
//! requests, a deadline the daemon's one sweep enforces (`Sweep`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::budget::Permits;
use crate::apps::{Completion, Deadline, HttpCompletion};
use crate::events::Settle;

/// What the app holds: how the work ends when the app answers.
pub(crate) enum Held {
    Rpc(Completion),
    Http(HttpCompletion),
    /// A delivery: the ack or fail goes to its consumer as `tag`.
    Delivery {
        settle: mpsc::UnboundedSender<Settle>,
        tag: u64,
        event_type: String,
        /// Its handler's last try: a fail drops the event.
        last_try: bool,
        /// When it was handed to the app (`messaging.process.duration`).
        handed: Instant,
        /// Its CONSUMER span, when spans are on and its trace sampled
        /// (boxed: most entries have none, and every entry is this size).
        span: Option<Box<crate::spans::Open>>,
    },
}

/// The kinds of `Held`, to take an entry only by an answer of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Rpc,
    Http,
    Delivery,
}

impl Held {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Held::Rpc(_) => Kind::Rpc,
            Held::Http(_) => Kind::Http,
            Held::Delivery { .. } => Kind::Delivery,
        }
    }
}

/// One entry: the work, its deadline (requests), its permits (given back
/// when the entry is dropped).
pub(crate) struct Entry {
    pub held: Held,
    pub deadline: Option<Deadline>,
    _permits: Permits,
}

/// Looked up per request: foldhash rather than SipHash for the ids.
type Entries = HashMap<u64, Entry, foldhash::fast::RandomState>;

/// The daemon-wide count of entries with a deadline, which wakes the sweep
/// when the first one starts (`attach::table` runs it).
#[derive(Default)]
pub(crate) struct Sweep {
    due: AtomicUsize,
    pub(crate) wake: Notify,
}

impl Sweep {
    /// Whether any entry anywhere has a deadline to watch.
    pub(crate) fn any(&self) -> bool {
        self.due.load(Ordering::Acquire) > 0
    }

    fn started(&self) {
        if self.due.fetch_add(1, Ordering::AcqRel) == 0 {
            self.wake.notify_one();
        }
    }

    fn ended(&self, n: usize) {
        if n > 0 {
            self.due.fetch_sub(n, Ordering::AcqRel);
        }
    }
}

pub(crate) struct InFlight {
    /// `None` once closed: new work is refused.
    entries: Mutex<Option<Entries>>,
    next_id: AtomicU64,
    /// Work answered by the app (replies, HTTP responses, acks and fails).
    handled: AtomicU64,
    sweep: Arc<Sweep>,
}

impl InFlight {
    pub(crate) fn new(sweep: Arc<Sweep>) -> InFlight {
        InFlight {
            entries: Mutex::new(Some(Entries::default())),
            next_id: AtomicU64::new(1),
            handled: AtomicU64::new(0),
            sweep,
        }
    }

    fn entries(&self) -> MutexGuard<'_, Option<Entries>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds work; returns its id, or gives the work back when closed.
    pub(crate) fn insert(
        &self,
        held: Held,
        deadline: Option<Deadline>,
        permits: Permits,
    ) -> Result<u64, Held> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries();
        let Some(entries) = entries.as_mut() else {
            return Err(held);
        };
        if deadline.is_some() {
            self.sweep.started();
        }
        entries.insert(
            id,
            Entry {
                held,
                deadline,
                _permits: permits,
            },
        );
        Ok(id)
    }

    /// Takes the entry `id` if it is work of `kind` (an answer of another
    /// kind, late or confused, leaves it in place).
    pub(crate) fn take(&self, id: u64, kind: Kind) -> Option<Entry> {
        let taken = {
            let mut entries = self.entries();
            let entries = entries.as_mut()?;
            match entries.get(&id) {
                Some(entry) if entry.held.kind() == kind => entries.remove(&id),
                _ => None,
            }
        };
        if let Some(entry) = &taken {
            self.sweep.ended(usize::from(entry.deadline.is_some()));
        }
        taken
    }

    /// Takes an entry the app answered, and counts it handled.
    pub(crate) fn answered(&self, id: u64, kind: Kind) -> Option<Entry> {
        let entry = self.take(id, kind)?;
        self.handled.fetch_add(1, Ordering::Relaxed);
        Some(entry)
    }

    /// Takes every entry whose deadline is at or before `now`.
    pub(crate) fn overdue(&self, now: Instant) -> Vec<(u64, Entry)> {
        let overdue: Vec<(u64, Entry)> = {
            let mut entries = self.entries();
            let Some(entries) = entries.as_mut() else {
                return Vec::new();
            };
            let ids: Vec<u64> = entries
                .iter()
                .filter(|(_, e)| e.deadline.is_some_and(|d| d.at <= now))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| entries.remove(&id).map(|e| (id, e)))
                .collect()
        };
        self.sweep.ended(overdue.len());
        overdue
    }

    /// Closes the table: takes every entry and refuses new ones.
    pub(crate) fn close(&self) -> Vec<Entry> {
        let closed: Vec<Entry> = self
            .entries()
            .take()
            .map(|entries| entries.into_values().collect())
            .unwrap_or_default();
        let due = closed.iter().filter(|e| e.deadline.is_some()).count();
        self.sweep.ended(due);
        closed
    }

    /// Requests (RPC and HTTP) in flight.
    pub(crate) fn requests(&self) -> usize {
        self.entries().as_ref().map_or(0, |e| {
            e.values()
                .filter(|e| e.held.kind() != Kind::Delivery)
                .count()
        })
    }

    /// All the work in flight, deliveries too: what a drain waits for.
    pub(crate) fn len(&self) -> usize {
        self.entries().as_ref().map_or(0, HashMap::len)
    }

    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }
}
