//! The transport's shared state: peers (liveness, their connection task) and
//! the calls waiting for a reply. One `std` mutex, never held across an await.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::conn;
use super::idle::Conns;
use super::queue::{self, PeerTx};
use crate::rpc::frame::Limits;
use crate::rpc::{IncomingReply, Liveness, ReplyDone, RpcError, TransportConfig};

/// Queue in front of one peer's connection task, in messages (`queue` also
/// bounds it in bytes). Everyone `try_send`s into it: a call that finds it
/// full waits for room in a task of its own, within its deadline (a call that
/// finds its bytes full fails as overloaded at once); replies and heartbeats
/// are dropped instead, so the receive side never waits on a slow peer. Large
/// enough to hold the calls issued while a connect is in progress.
pub(super) const PEER_QUEUE: usize = 1024;

/// One message for a peer: frames 1..=5 as ZMTP puts them on the wire,
/// encoded once into one buffer (`Outgoing::encode`); frame 0, the routing
/// identity, is not sent (a ROUTER strips it).
#[derive(Debug)]
pub(super) struct Outgoing {
    pub wire: Bytes,
    /// Set for requests, so a failed delivery fails the waiting call at once.
    pub request_id: Option<String>,
}

/// A call waiting for its first reply: `done` runs once, with the reply, or
/// with `Timeout` from the deadline sweep, or when its peer is lost.
struct Pending {
    endpoint: String,
    done: ReplyDone,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl Pending {
    fn finish(self, result: Result<IncomingReply, RpcError>) {
        (self.done)(result);
    }
}

struct Peer {
    conn: Option<(u64, PeerTx)>,
    last_heard: Option<Instant>,
    /// When the peer was first tried (its entry made): a peer never heard
    /// from counts as dead once this is `unresponsive_after` old.
    tried_since: Instant,
    /// Last message to or from the peer (or its creation): for forgetting it.
    last_active: Instant,
    /// Whether pending calls were already failed for this silence.
    unresponsive: bool,
}

/// The tables are looked up per message: foldhash, randomly seeded per
/// table, costs a fraction of std's SipHash on these short keys.
type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct State {
    peers: Map<Peer>,
    pending: Map<Pending>,
    next_generation: u64,
}

pub(super) struct Shared {
    pub endpoint: String,
    pub config: TransportConfig,
    pub limits: Limits,
    pub cancel: CancellationToken,
    state: Mutex<State>,
    /// Wakes the deadline sweep when a call starts and none was waiting.
    pub sweep: Notify,
    /// The bound port's inbound connections (count and idle sweep).
    pub conns: Arc<Conns>,
    /// Replies dropped because their peer's queue was full.
    pub dropped_replies: AtomicU64,
}

impl Shared {
    pub fn new(endpoint: String, config: TransportConfig) -> Shared {
        let limits = Limits {
            max_frame_bytes: config.max_frame_bytes,
            max_message_bytes: config.max_message_bytes,
        };
        Shared {
            endpoint,
            conns: Arc::new(Conns::new(config.max_connections)),
            dropped_replies: AtomicU64::new(0),
            config,
            limits,
            cancel: CancellationToken::new(),
            state: Mutex::new(State::default()),
            sweep: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long a silent peer is remembered before its state and socket go.
    pub fn forget_after(&self) -> Duration {
        self.config.unresponsive_after.saturating_mul(10)
    }

    /// The queue of `endpoint`'s connection task, spawning one if needed.
    pub fn conn_for(self: &Arc<Self>, endpoint: &str) -> Result<PeerTx, RpcError> {
        if self.cancel.is_cancelled() {
            return Err(RpcError::Closed);
        }
        let now = Instant::now();
        let mut state = self.state();
        // The hot path (every request and reply): a known peer with its task.
        // Only peers that passed `is_endpoint` are in the table, and that
        // check (zeromq's endpoint parser, a regex) cost 17% of a daemon's
        // CPU when it ran per message; so it runs once, on insertion.
        match state.peers.get_mut(endpoint) {
            Some(peer) => {
                peer.last_active = now;
                if let Some((_, tx)) = &peer.conn {
                    return Ok(tx.clone());
                }
            }
            None => {
                if !is_endpoint(endpoint) {
                    return Err(RpcError::BadEndpoint(endpoint.to_owned()));
                }
                let peer = Peer {
                    conn: None,
                    last_heard: None,
                    tried_since: now,
                    last_active: now,
                    unresponsive: false,
                };
                state.peers.insert(endpoint.to_owned(), peer);
            }
        }
        let generation = state.next_generation;
        let (tx, rx) = queue::channel(self.config.peer_queue_bytes);
        if let Some(peer) = state.peers.get_mut(endpoint) {
            peer.conn = Some((generation, tx.clone()));
        }
        state.next_generation += 1;
        tokio::spawn(conn::run(self.clone(), endpoint.to_owned(), generation, rx));
        Ok(tx)
    }

    /// Called by a connection task as it ends; a newer task is left alone.
    pub fn conn_ended(&self, endpoint: &str, generation: u64) {
        let mut state = self.state();
        if let Some(peer) = state.peers.get_mut(endpoint)
            && peer.conn.as_ref().is_some_and(|(g, _)| *g == generation)
        {
            peer.conn = None;
        }
    }

    /// Any well-formed message from `endpoint`, or a completed handshake with
    /// it, proves it alive (verified).
    pub fn heard_from(&self, endpoint: &str) {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(peer) = state.peers.get_mut(endpoint) {
            peer.last_heard = Some(now);
            peer.last_active = now;
            peer.unresponsive = false;
        } else if is_endpoint(endpoint) {
            let peer = Peer {
                conn: None,
                last_heard: Some(now),
                tried_since: now,
                last_active: now,
                unresponsive: false,
            };
            state.peers.insert(endpoint.to_owned(), peer);
        }
    }

    /// What is known of `endpoint`: unknown peers are unverified.
    pub fn liveness(&self, endpoint: &str) -> Liveness {
        let state = self.state();
        match state.peers.get(endpoint) {
            Some(peer) => peer.liveness(Instant::now(), self.config.unresponsive_after),
            None => Liveness::Unverified,
        }
    }

    /// Peers known now, by liveness: verified, unverified, dead.
    pub fn peer_counts(&self) -> [u64; 3] {
        let (now, after) = (Instant::now(), self.config.unresponsive_after);
        let mut counts = [0; 3];
        for peer in self.state().peers.values() {
            let slot = match peer.liveness(now, after) {
                Liveness::Verified => 0,
                Liveness::Unverified => 1,
                Liveness::Dead => 2,
            };
            counts[slot] += 1;
        }
        counts
    }

    /// Whether `endpoint` has an entry (is being reached, or was lately).
    pub fn is_known(&self, endpoint: &str) -> bool {
        self.state().peers.contains_key(endpoint)
    }

    /// A call completed by `done`, failed by the sweep past `deadline`.
    pub fn add_pending(
        &self,
        id: String,
        endpoint: &str,
        done: ReplyDone,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) {
        let pending = Pending {
            endpoint: endpoint.to_owned(),
            done,
            deadline,
            timeout,
        };
        let first = {
            let mut state = self.state();
            state.pending.insert(id, pending);
            state.pending.len() == 1
        };
        if first {
            self.sweep.notify_one();
        }
    }

    /// Whether calls are waiting (the deadline sweep has work).
    pub fn has_pending(&self) -> bool {
        !self.state().pending.is_empty()
    }

    /// Completes the call `id` with its first reply or failure; later ones are dropped.
    pub fn resolve(&self, id: &str, result: Result<IncomingReply, RpcError>) -> bool {
        let pending = self.state().pending.remove(id);
        match pending {
            Some(pending) => {
                pending.finish(result);
                true
            }
            None => false,
        }
    }

    /// Fails the calls whose deadline passed with `Timeout`; returns how many.
    pub fn expire(&self, now: tokio::time::Instant) -> usize {
        let overdue: Vec<Pending> = {
            let mut state = self.state();
            let ids: Vec<String> = state
                .pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| state.pending.remove(id))
                .collect()
        };
        let count = overdue.len();
        for pending in overdue {
            let error = RpcError::Timeout {
                endpoint: pending.endpoint.clone(),
                timeout: pending.timeout,
            };
            pending.finish(Err(error));
        }
        count
    }

    /// Fails every call waiting on `endpoint` with `Unreachable`.
    pub fn fail_pending_to(&self, endpoint: &str, reason: &str) -> usize {
        let failed: Vec<Pending> = {
            let mut state = self.state();
            let ids: Vec<String> = state
                .pending
                .iter()
                .filter(|(_, p)| p.endpoint == endpoint)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| state.pending.remove(id))
                .collect()
        };
        let count = failed.len();
        for pending in failed {
            pending.finish(Err(unreachable(endpoint, reason)));
        }
        count
    }

    /// One heartbeat tick: returns the peers to ping (with their queue), the
    /// peers that just turned unresponsive, and forgets long-silent ones.
    pub fn tick(self: &Arc<Self>) -> (Vec<(String, PeerTx)>, Vec<String>) {
        let now = Instant::now();
        let mut newly_dead = Vec::new();
        let mut targets = Vec::new();
        {
            let mut state = self.state();
            let busy: HashSet<String> =
                state.pending.values().map(|p| p.endpoint.clone()).collect();
            let forget_after = self.forget_after();
            state.peers.retain(|endpoint, peer| {
                let silent_since = peer
                    .last_heard
                    .map_or(peer.last_active, |h| h.max(peer.last_active));
                now.duration_since(silent_since) < forget_after || busy.contains(endpoint)
            });
            for (endpoint, peer) in state.peers.iter_mut() {
                if !peer.unresponsive
                    && peer.liveness(now, self.config.unresponsive_after) == Liveness::Dead
                {
                    peer.unresponsive = true;
                    newly_dead.push(endpoint.clone());
                }
            }
            let endpoints: Vec<String> = state.peers.keys().cloned().collect();
            drop(state);
            for endpoint in endpoints {
                if let Ok(tx) = self.conn_for_ping(&endpoint) {
                    targets.push((endpoint, tx));
                }
            }
        }
        (targets, newly_dead)
    }

    /// Like `conn_for`, but a ping does not count as activity.
    fn conn_for_ping(self: &Arc<Self>, endpoint: &str) -> Result<PeerTx, RpcError> {
        let last_active = self.state().peers.get(endpoint).map(|p| p.last_active);
        let tx = self.conn_for(endpoint)?;
        if let (Some(at), Some(peer)) = (last_active, self.state().peers.get_mut(endpoint)) {
            peer.last_active = at;
        }
        Ok(tx)
    }

    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state();
        (state.peers.len(), state.pending.len())
    }
}

impl Peer {
    /// Verified while heard within `after`; never heard, unverified for
    /// `after` from its first try (a connect takes `connect_timeout` at most),
    /// then dead; dead once silent for `after`.
    fn liveness(&self, now: Instant, after: Duration) -> Liveness {
        match self.last_heard {
            Some(heard) if now.duration_since(heard) < after => Liveness::Verified,
            Some(_) => Liveness::Dead,
            None if now.duration_since(self.tried_since) < after => Liveness::Unverified,
            None => Liveness::Dead,
        }
    }
}

pub(super) fn unreachable(endpoint: &str, reason: &str) -> RpcError {
    RpcError::Unreachable {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    }
}

/// `tcp://HOST:PORT`: what lymph uses as both endpoint and identity.
pub(super) fn is_endpoint(endpoint: &str) -> bool {
    endpoint.starts_with("tcp://") && endpoint.parse::<zeromq::Endpoint>().is_ok()
}
