//! The bound RPC port's receive side: ZMTP (`zmtp`) read straight off each
//! accepted TCP connection, the limits checked from each frame's header before
//! its bytes are buffered (zeromq 0.7 would reserve a frame's announced size
//! first), and every complete message handed to `inbound::handle` from the
//! connection's own task.
//! A connection is admitted only from `allowed_peers`, under
//! `max_connections` (`idle`) and with a descriptor of the public ports'
//! budget (`crate::fds`); refused ones close at once. Its greeting must come
//! within min(`idle_timeout`, 10 s); afterwards the idle sweep closes it when
//! it completes no frame for `idle_timeout`.
//! Peers (lymph's and lymphd's send sockets) never expect anything on these
//! connections but the handshake, so nothing else is written.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::debug;

use super::guard;
use super::idle::{Registration, Watch};
use super::inbound::{self, Heard};
use super::peers::Shared;
use super::zmtp::{self, Frame, Reader, anonymous, on_command};
use crate::rpc::IncomingRequest;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// Bytes read per step when no frame asks for more.
const CHUNK: usize = 64 * 1024;
/// The longest a new connection may take to send its greeting: `idle_timeout`
/// when shorter (peers send theirs at once).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (out of descriptors: retrying at once would spin).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// One line per interval for each kind of trouble a peer can cause at will.
static ACCEPT_FAILED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static REFUSED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static CUT: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// Accepts on the public port until the transport closes; one task per connection.
pub(super) async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    incoming: mpsc::Sender<IncomingRequest>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, from)) => {
                // Refused connections close here, as `stream` drops.
                let Some(admitted) = admit(&shared, from) else {
                    continue;
                };
                let (shared, incoming) = (shared.clone(), incoming.clone());
                tokio::spawn(async move {
                    let (registration, _fd) = admitted;
                    let watch = &registration.watch;
                    let served = tokio::select! {
                        _ = watch.close.cancelled() => Ok(()),
                        served = serve(&shared, stream, &incoming, watch) => served,
                    };
                    if let Err(reason) = served {
                        warn_limited!(CUT, %from, %reason, "rpc connection cut");
                    } else if watch.close.is_cancelled() && !shared.cancel.is_cancelled() {
                        debug!(%from, "idle rpc connection closed");
                    }
                });
            }
            Err(error) => {
                warn_limited!(ACCEPT_FAILED, %error, "rpc port accept failed; pausing");
                tokio::time::sleep(ACCEPT_PAUSE).await;
            }
        }
    }
    debug!(endpoint = %shared.endpoint, "rpc receive side stopped");
}

/// Whether a new connection from `from` may stay: an allowed address, room
/// under `max_connections` and a descriptor of the ports' budget. Returns
/// what the connection holds while it is open.
fn admit(shared: &Arc<Shared>, from: SocketAddr) -> Option<(Registration, OwnedSemaphorePermit)> {
    guard::admit(
        from,
        &shared.config.allowed_peers,
        || shared.conns.register(shared.cancel.child_token()),
        "rpc.max_connections",
        |reason| warn_limited!(REFUSED, %from, reason, "rpc connection refused"),
    )
}

/// Serves one connection until it ends (`Ok`) or breaks the protocol or the
/// limits (`Err` with why).
async fn serve(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    incoming: &mpsc::Sender<IncomingRequest>,
    watch: &Watch,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(CHUNK);
    let handshake = zmtp::handshake(&mut stream, &shared.endpoint, &mut buf);
    let within = HANDSHAKE_TIMEOUT.min(shared.config.idle_timeout);
    match tokio::time::timeout(within, handshake).await {
        Ok(Ok(())) => watch.heard(),
        Ok(Err(reason)) => return Err(reason),
        Err(_) => return Err("no ZMTP greeting in time".to_owned()),
    }
    let mut reader = Reader::new(shared.limits);
    let mut identity: Option<Bytes> = None;
    loop {
        // Peers heard from in this read: their liveness is noted once.
        let mut heard = Heard::default();
        let mut framed = false;
        while let Some(frame) = reader.next(&mut buf)? {
            framed = true;
            match frame {
                Frame::Command(body) => {
                    on_command(&body, &mut identity)?;
                }
                Frame::Message(parts) => {
                    let from = identity.get_or_insert_with(anonymous).clone();
                    // Frame 0 is the sender, as a ROUTER delivers it (the
                    // reader left room for it).
                    let mut frames = parts;
                    frames.insert(0, from);
                    inbound::handle(shared, incoming, frames, &mut heard);
                }
            }
        }
        if framed {
            // Not idle: the sweep sees the flag (no timer per read).
            watch.heard();
        }
        // Room for the frame under way (already within the limits) or a chunk.
        buf.reserve(reader.wanted.saturating_sub(buf.len()).max(CHUNK));
        match stream.read_buf(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(error) => {
                debug!(%error, "zeromq connection read failed");
                return Ok(());
            }
        }
    }
}
