//! The bound RPC port's receive side: ZMTP (`zmtp`) read straight off each
//! accepted TCP connection, the limits checked from each frame's header before
//! its bytes are buffered (zeromq 0.7 would reserve a frame's announced size
//! first), and every complete message handed to `inbound::handle` from the
//! connection's own task.
//! Peers (lymph's and lymphd's send sockets) never expect anything on these
//! connections but the handshake, so nothing else is written.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::inbound::{self, Heard};
use super::peers::Shared;
use super::zmtp::{self, Frame, Reader, anonymous, on_command};
use crate::rpc::IncomingRequest;
/// Bytes read per step when no frame asks for more.
const CHUNK: usize = 64 * 1024;
/// How long a connection may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
                let (shared, incoming) = (shared.clone(), incoming.clone());
                tokio::spawn(async move {
                    let served = tokio::select! {
                        _ = shared.cancel.cancelled() => Ok(()),
                        served = serve(&shared, stream, &incoming) => served,
                    };
                    if let Err(reason) = served {
                        warn!(%from, %reason, "zeromq connection cut");
                    }
                });
            }
            Err(error) => {
                debug!(%error, "zeromq accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    debug!(endpoint = %shared.endpoint, "rpc receive side stopped");
}

/// Serves one connection until it ends (`Ok`) or breaks the protocol or the
/// limits (`Err` with why).
async fn serve(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    incoming: &mpsc::Sender<IncomingRequest>,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(CHUNK);
    let handshake = zmtp::handshake(&mut stream, &shared.endpoint, &mut buf);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(reason),
        Err(_) => return Err("no ZMTP greeting in time".to_owned()),
    }
    let mut reader = Reader::new(shared.limits);
    let mut identity: Option<Bytes> = None;
    loop {
        // Peers heard from in this read: their liveness is noted once.
        let mut heard = Heard::default();
        while let Some(frame) = reader.next(&mut buf)? {
            match frame {
                Frame::Command(body) => {
                    on_command(&body, &mut identity)?;
                }
                Frame::Message(parts) => {
                    let from = identity.get_or_insert_with(anonymous).clone();
                    let mut frames = Vec::with_capacity(parts.len() + 1);
                    frames.push(from);
                    frames.extend(parts);
                    inbound::handle(shared, incoming, frames, &mut heard);
                }
            }
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
