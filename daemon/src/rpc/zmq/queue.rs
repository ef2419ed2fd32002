//! One peer's outgoing queue, bounded twice: in messages (the channel,
//! `PEER_QUEUE`) and in bytes (`rpc.peer_queue_bytes`, a counter shared with
//! the peer's connection task, which gives the bytes back once it has written
//! them). So a peer that reads nothing holds at most about that many bytes of
//! this daemon's memory, however many replies are addressed to it.
//!
//! Per message this costs one relaxed `fetch_add` on the sending side; the
//! connection task gives back a whole batch with one `fetch_sub`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::peers::{Outgoing, PEER_QUEUE};
use super::zmtp;
use crate::rpc::RpcError;
use crate::rpc::frame::{self, FrameError, Limits, Message};

/// Why a message was not queued.
#[derive(Debug)]
pub(super) enum Refused {
    /// The channel holds `PEER_QUEUE` messages; the message comes back (a
    /// call may wait for room).
    Full(Outgoing),
    /// The bytes queued for the peer (`queued`) leave no room for it.
    OverBytes { queued: usize },
    /// The connection task is gone.
    Closed,
}

/// The sending side, shared by everyone who queues for the peer (the peer's
/// table entry holds one; callers clone the `Arc`).
#[derive(Debug)]
pub(super) struct PeerQueue {
    tx: mpsc::Sender<Outgoing>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

pub(super) type PeerTx = Arc<PeerQueue>;

/// The connection task's side: what to write, and the counter to give the
/// written bytes back to.
pub(super) struct PeerRx {
    pub rx: mpsc::Receiver<Outgoing>,
    pub queued: Arc<AtomicUsize>,
}

impl PeerRx {
    /// Gives back the bytes of messages taken off the queue (written, failed
    /// or dropped).
    pub fn taken(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// A queue for one peer holding at most `limit` bytes.
pub(super) fn channel(limit: usize) -> (PeerTx, PeerRx) {
    let (tx, rx) = mpsc::channel(PEER_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let queue = PeerQueue {
        tx,
        queued: queued.clone(),
        limit,
    };
    (Arc::new(queue), PeerRx { rx, queued })
}

impl Outgoing {
    /// `message` for the wire, in one allocation (and one for its headers).
    pub fn encode(message: &Message, request_id: Option<String>) -> Outgoing {
        let headers = message.headers.encode();
        Outgoing::from_frames(&frames_of(message, &headers), request_id)
    }

    /// `encode` for a request, checked against `limits` first (the peer's
    /// limits are ours: a call too large for them fails here, not there).
    pub fn encode_within(
        message: &Message,
        request_id: Option<String>,
        limits: &Limits,
    ) -> Result<Outgoing, RpcError> {
        let headers = message.headers.encode();
        let frames = frames_of(message, &headers);
        if let Err(
            FrameError::FrameTooLarge { size, limit, .. }
            | FrameError::MessageTooLarge { size, limit },
        ) = frame::check_limits(frames, limits)
        {
            return Err(RpcError::TooLarge { size, limit });
        }
        Ok(Outgoing::from_frames(&frames, request_id))
    }

    fn from_frames(frames: &[&[u8]; 5], request_id: Option<String>) -> Outgoing {
        // Each frame: a flag byte and a length of 1 or 8 bytes.
        let size = frames.iter().map(|f| f.len() + 9).sum();
        let mut wire = bytes::BytesMut::with_capacity(size);
        zmtp::encode_message(frames, &mut wire);
        Outgoing {
            wire: wire.freeze(),
            request_id,
        }
    }

    /// The bytes this message holds on the wire.
    pub fn size(&self) -> usize {
        self.wire.len()
    }
}

/// Frames 1..=5 of `message` (lymph's id, type, subject, headers, body).
fn frames_of<'a>(message: &'a Message, headers: &'a [u8]) -> [&'a [u8]; 5] {
    [
        message.id.as_bytes(),
        message.kind.as_str().as_bytes(),
        message.subject.as_bytes(),
        headers,
        &message.body,
    ]
}

impl PeerQueue {
    /// Queues without waiting (replies, heartbeats, calls first).
    pub fn try_send(&self, outgoing: Outgoing) -> Result<(), Refused> {
        let size = outgoing.size();
        self.reserve(size)?;
        match self.tx.try_send(outgoing) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(outgoing)) => {
                self.release(size);
                Err(Refused::Full(outgoing))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.release(size);
                Err(Refused::Closed)
            }
        }
    }

    /// Waits for room in the channel (a call whose `try_send` found it full);
    /// its bytes count while it waits.
    pub async fn send(&self, outgoing: Outgoing) -> Result<(), Refused> {
        let size = outgoing.size();
        self.reserve(size)?;
        self.tx.send(outgoing).await.map_err(|_| {
            self.release(size);
            Refused::Closed
        })
    }

    /// Counts `size` more bytes, unless that passes the limit. An empty queue
    /// takes any message (one larger than the limit could never go out
    /// otherwise; the frame limits bound it).
    fn reserve(&self, size: usize) -> Result<(), Refused> {
        let before = self.queued.fetch_add(size, Ordering::Relaxed);
        if before > 0 && before.saturating_add(size) > self.limit {
            self.release(size);
            return Err(Refused::OverBytes { queued: before });
        }
        Ok(())
    }

    fn release(&self, size: usize) {
        self.queued.fetch_sub(size, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn message(size: usize) -> Outgoing {
        Outgoing {
            wire: Bytes::from(vec![0u8; size]),
            request_id: None,
        }
    }

    #[tokio::test]
    async fn bytes_are_bounded_and_given_back_when_taken() {
        let (tx, mut rx) = channel(1000);
        tx.try_send(message(600)).expect("an empty queue takes it");
        tx.try_send(message(400)).expect("exactly the limit");
        assert!(matches!(
            tx.try_send(message(1)),
            Err(Refused::OverBytes { queued: 1000 })
        ));
        let first = rx.rx.recv().await.expect("queued");
        rx.taken(first.size());
        tx.try_send(message(600)).expect("room again");
        assert!(matches!(
            tx.send(message(1)).await,
            Err(Refused::OverBytes { .. })
        ));
        // A message larger than the limit goes out alone.
        let (tx, _rx) = channel(10);
        tx.try_send(message(100)).expect("alone");
        assert!(matches!(
            tx.try_send(message(1)),
            Err(Refused::OverBytes { .. })
        ));
    }
}
