//! One peer's outgoing connection: a task owning a ROUTER socket whose
//! identity is our endpoint, connected to that one peer (lymph's "send
//! socket", split per peer so a slow connect never delays other peers).
//! Reconnects once when a send fails, notices a closed connection at once and
//! fails the calls waiting on that peer.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use zeromq::util::PeerIdentity;
use zeromq::{
    RouterRecvHalf, RouterSendHalf, RouterSocket, Socket, SocketEvent, SocketOptions, SocketRecv,
    SocketSend, ZmqMessage,
};

use super::peers::{Outgoing, Shared, unreachable};

/// Messages taken from the queue at once: one wake-up of this task sends up
/// to this many (under load the queue holds many), rather than one select
/// per message.
const BATCH: usize = 64;

/// The task body: serves `rx` until it closes, the transport closes, or a
/// connect fails (then every queued message fails and the task ends; the next
/// use of the peer starts a new task and connects again).
pub(super) async fn run(
    shared: Arc<Shared>,
    endpoint: String,
    generation: u64,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let mut link: Option<Link> = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let closed = link.as_ref().map(|open| open.closed.clone());
        let received = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            received = rx.recv_many(&mut batch, BATCH) => received,
            () = closed_or_never(closed) => {
                debug!(peer = %endpoint, "connection to peer closed");
                link = None;
                shared.fail_pending_to(&endpoint, "connection closed");
                continue;
            }
        };
        if received == 0 {
            break;
        }
        let mut failed: Option<String> = None;
        for outgoing in batch.drain(..) {
            if let Some(reason) = &failed {
                fail(&shared, &endpoint, outgoing.request_id.as_deref(), reason);
                continue;
            }
            if let Err(reason) = deliver(&shared, &endpoint, &mut link, outgoing).await {
                failed = Some(reason);
            }
        }
        if let Some(reason) = failed {
            // Leave the table first so no new message is queued here, then
            // fail what is already queued.
            shared.conn_ended(&endpoint, generation);
            rx.close();
            while let Ok(outgoing) = rx.try_recv() {
                fail(&shared, &endpoint, outgoing.request_id.as_deref(), &reason);
            }
            return;
        }
    }
    shared.conn_ended(&endpoint, generation);
}

async fn closed_or_never(closed: Option<CancellationToken>) {
    match closed {
        Some(closed) => closed.cancelled_owned().await,
        None => std::future::pending().await,
    }
}

/// Sends one message, connecting first if needed and reconnecting once if the
/// send fails (the crate forgets a peer whose connection broke). `Err` only
/// when connecting failed: the peer is unreachable for now.
async fn deliver(
    shared: &Shared,
    endpoint: &str,
    link: &mut Option<Link>,
    outgoing: Outgoing,
) -> Result<(), String> {
    let Outgoing {
        mut frames,
        request_id,
    } = outgoing;
    for attempt in 0..2 {
        let open = match link {
            Some(open) => open,
            None => match Link::connect(shared, endpoint).await {
                Ok(open) => link.insert(open),
                Err(reason) => {
                    debug!(peer = %endpoint, %reason, "cannot connect to peer");
                    fail(shared, endpoint, request_id.as_deref(), &reason);
                    return Err(reason);
                }
            },
        };
        if let Some(first) = frames.first_mut() {
            *first = open.peer_id.clone();
        }
        let message = match ZmqMessage::try_from(frames.clone()) {
            Ok(message) => message,
            Err(_) => return Ok(()),
        };
        match open.send.send(message).await {
            Ok(()) => return Ok(()),
            Err(error) => {
                debug!(peer = %endpoint, %error, attempt, "send to peer failed");
                *link = None;
                if attempt == 1 {
                    let reason = format!("send failed: {error}");
                    fail(shared, endpoint, request_id.as_deref(), &reason);
                }
            }
        }
    }
    Ok(())
}

fn fail(shared: &Shared, endpoint: &str, request_id: Option<&str>, reason: &str) {
    if let Some(id) = request_id {
        shared.resolve(id, Err(unreachable(endpoint, reason)));
    }
}

/// An open connection to one peer.
struct Link {
    /// The identity the peer announced (lymph: its endpoint): frame 0 of every send.
    peer_id: Bytes,
    send: RouterSendHalf,
    /// Cancelled by the watcher task when the connection is gone.
    closed: CancellationToken,
    /// The watcher, stopped with the link.
    watcher: AbortHandle,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Link {
    /// Connects and completes the ZMTP handshake, bounded by `connect_timeout`
    /// (the crate's own retry loop would otherwise run for 30 s).
    async fn connect(shared: &Shared, endpoint: &str) -> Result<Link, String> {
        let identity = PeerIdentity::try_from(shared.endpoint.as_bytes())
            .map_err(|e| format!("bad own identity: {e}"))?;
        let timeout = shared.config.connect_timeout;
        let mut options = SocketOptions::default();
        options.peer_identity(identity).connect_timeout(timeout);
        let mut socket = RouterSocket::with_options(options);
        let mut events = socket.monitor();
        // The crate applies `timeout` itself; the outer one is a safety net.
        match tokio::time::timeout(timeout * 2, socket.connect(endpoint)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(format!("connect failed: {error}")),
            Err(_) => return Err(format!("connect timed out after {timeout:?}")),
        }
        let peer_id = match events.try_recv() {
            Ok(SocketEvent::Connected(_, peer_id)) => Bytes::from(peer_id),
            _ => Bytes::copy_from_slice(endpoint.as_bytes()),
        };
        let (send, recv) = socket.split();
        let closed = CancellationToken::new();
        let watcher = tokio::spawn(watch(recv, events, closed.clone())).abort_handle();
        Ok(Link {
            peer_id,
            send,
            closed,
            watcher,
        })
    }
}

/// Cancels `closed` when the connection is gone. Polling the receive half is
/// what makes the crate notice the peer's EOF; lymph never sends on this
/// connection, so anything that arrives is dropped. A task of its own, so the
/// send loop waits on one token instead of re-arming these two futures for
/// every batch it sends.
async fn watch(
    mut recv: RouterRecvHalf,
    mut events: futures::channel::mpsc::Receiver<SocketEvent>,
    closed: CancellationToken,
) {
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(SocketEvent::Disconnected(_)) | None => break,
                Some(_) => {}
            },
            received = recv.recv() => {
                if received.is_err() {
                    break;
                }
            }
        }
    }
    closed.cancel();
}
