//! One peer's outgoing connection: a task owning a TCP connection that speaks
//! ZMTP (`zmtp`) as a ROUTER whose identity is our endpoint, connected to that
//! one peer (lymph's "send socket", split per peer so a slow connect never
//! delays other peers). Writes every queued message in one write, notices a
//! closed connection at once and fails the calls waiting on that peer.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::peers::{Outgoing, Shared, unreachable};
use super::queue::PeerRx;
use super::zmtp::{self, Frame, Reader};
use crate::rpc::frame::Limits;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// One line per interval about peers cut for reading nothing.
static STALLED: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// Messages taken from the queue at once: one wake-up of this task sends up
/// to this many (under load the queue holds many), rather than one select
/// per message.
const BATCH: usize = 64;

/// The task body: serves `rx` until it closes, the transport closes, or a
/// connect fails (then every queued message fails and the task ends; the next
/// use of the peer starts a new task and connects again).
pub(super) async fn run(shared: Arc<Shared>, endpoint: String, generation: u64, mut queue: PeerRx) {
    let mut link: Option<Link> = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let closed = link.as_ref().map(|open| open.closed.clone());
        // Biased: a connection known to be closed is dropped before the next
        // batch is written, so the batch goes out on a new one.
        let received = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break,
            () = closed_or_never(closed) => {
                debug!(peer = %endpoint, "connection to peer closed");
                link = None;
                shared.fail_pending_to(&endpoint, "connection closed");
                continue;
            }
            received = queue.rx.recv_many(&mut batch, BATCH) => received,
        };
        if received == 0 {
            break;
        }
        let bytes: usize = batch.iter().map(Outgoing::size).sum();
        let delivered = deliver(&shared, &endpoint, &mut link, &mut batch).await;
        // Written (or failed): the batch no longer counts against the peer.
        queue.taken(bytes);
        if let Err(reason) = delivered {
            // Leave the table first so no new message is queued here, then
            // fail what is already queued.
            shared.conn_ended(&endpoint, generation);
            queue.rx.close();
            while let Ok(outgoing) = queue.rx.try_recv() {
                queue.taken(outgoing.size());
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

/// Sends a batch in one write, connecting first if needed. `Err` only when
/// connecting failed: the peer is unreachable for now, and the batch's calls
/// have failed. A failed write, or one the peer takes nothing of for
/// `peer_write_timeout`, drops the connection and fails the calls waiting on
/// the peer (they may or may not have been sent); the next message connects
/// again.
async fn deliver(
    shared: &Shared,
    endpoint: &str,
    link: &mut Option<Link>,
    batch: &mut Vec<Outgoing>,
) -> Result<(), String> {
    let open = match link {
        Some(open) => open,
        None => match Link::connect(shared, endpoint).await {
            Ok(open) => link.insert(open),
            Err(reason) => {
                debug!(peer = %endpoint, %reason, "cannot connect to peer");
                for outgoing in batch.drain(..) {
                    fail(shared, endpoint, outgoing.request_id.as_deref(), &reason);
                }
                return Err(reason);
            }
        },
    };
    open.out.clear();
    for outgoing in batch.drain(..) {
        open.out.extend_from_slice(&outgoing.wire);
    }
    let stall = shared.config.peer_write_timeout;
    if let Err(failed) = write_within(&open.write, &open.out, stall).await {
        match &failed {
            WriteFailed::Stalled => {
                warn_limited!(STALLED, peer = %endpoint, timeout = ?stall,
                    "peer reads nothing; disconnected");
            }
            WriteFailed::Io(error) => debug!(peer = %endpoint, %error, "send to peer failed"),
        }
        *link = None;
        shared.fail_pending_to(endpoint, &format!("send failed: {failed}"));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum WriteFailed {
    #[error("the peer read nothing in time")]
    Stalled,
    #[error("{0}")]
    Io(std::io::Error),
}

/// Writes `out` whole, as `write_all`, but gives up when the peer takes none
/// of it for `stall`. The timer is armed only while the socket's buffer is
/// full (a peer not keeping up), never on a write that goes through.
async fn write_within(
    write: &OwnedWriteHalf,
    mut out: &[u8],
    stall: Duration,
) -> Result<(), WriteFailed> {
    while !out.is_empty() {
        match write.try_write(out) {
            Ok(0) => return Err(WriteFailed::Io(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => out = &out[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                match tokio::time::timeout(stall, write.writable()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(WriteFailed::Io(e)),
                    Err(_) => return Err(WriteFailed::Stalled),
                }
            }
            Err(e) => return Err(WriteFailed::Io(e)),
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
    write: OwnedWriteHalf,
    /// The batch being written, kept for its capacity.
    out: BytesMut,
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

/// The most a peer may send on our connection: its READY (a ROUTER sends
/// nothing else on it).
const PEER_LIMITS: Limits = Limits {
    max_frame_bytes: 64 * 1024,
    max_message_bytes: 64 * 1024,
};

impl Link {
    /// Connects and completes the ZMTP handshake (greetings, the peer's
    /// READY), bounded by `connect_timeout`.
    async fn connect(shared: &Shared, endpoint: &str) -> Result<Link, String> {
        let address = endpoint.strip_prefix("tcp://").unwrap_or(endpoint);
        let timeout = shared.config.connect_timeout;
        let opened = async {
            let mut stream = connect_retrying(address).await?;
            let _ = stream.set_nodelay(true);
            let mut buf = BytesMut::with_capacity(1024);
            zmtp::handshake(&mut stream, &shared.endpoint, &mut buf).await?;
            let mut reader = Reader::new(PEER_LIMITS);
            loop {
                if let Some(frame) = reader.next(&mut buf)? {
                    if let Frame::Command(body) = frame
                        && zmtp::on_command(&body, &mut None)?
                    {
                        break;
                    }
                    continue;
                }
                if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                    return Err("closed during the handshake".to_owned());
                }
            }
            Ok::<TcpStream, String>(stream)
        };
        let stream = match tokio::time::timeout(timeout, opened).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(reason)) => return Err(reason),
            Err(_) => {
                return Err(format!(
                    "connect timed out after {timeout:?} (refused or no handshake)"
                ));
            }
        };
        shared.heard_from(endpoint); // the handshake completed: the peer is verified
        let (read, write) = stream.into_split();
        let closed = CancellationToken::new();
        let watcher = tokio::spawn(watch(read, closed.clone())).abort_handle();
        Ok(Link {
            write,
            out: BytesMut::new(),
            closed,
            watcher,
        })
    }
}

/// Connects, trying again while the peer refuses (it may be restarting),
/// until the caller's timeout cuts it short, as ZeroMQ's connect does.
async fn connect_retrying(address: &str) -> Result<TcpStream, String> {
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(format!("connect failed: {e}")),
        }
    }
}

/// Cancels `closed` when the connection is gone (EOF or an error on its
/// read half). lymph never sends on this connection after the handshake, so
/// anything that arrives is dropped. A task of its own, so the send loop
/// waits on one token instead of re-arming a read for every batch.
async fn watch(mut read: OwnedReadHalf, closed: CancellationToken) {
    let mut sink = [0u8; 1024];
    while let Ok(n) = read.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
    closed.cancel();
}
