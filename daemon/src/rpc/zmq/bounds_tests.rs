//! The transport's bounds over real sockets on 127.0.0.1: a peer that reads
//! nothing (calls to it fail as overloaded, then it is disconnected), and the
//! port's idle sweep and `max_connections`. Every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::tests::{call, config, transport};
use super::zmtp::{greeting, ready};
use crate::rpc::{RpcError, TransportConfig};

const WAIT: Duration = Duration::from_secs(10);

/// A peer that completes the ZMTP handshake on every connection and never
/// reads; returns its endpoint and how many connections it accepted.
async fn silent_peer() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("tcp://{}", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (identity, count) = (endpoint.clone(), accepted.clone());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut hello = greeting();
            hello.extend_from_slice(&ready(&identity));
            let _ = stream.write_all(&hello).await;
            held.push(stream);
        }
    });
    (endpoint, accepted)
}

#[tokio::test]
async fn calls_to_a_peer_that_reads_nothing_fail_as_overloaded_and_it_is_cut() {
    let (a, _a_rx) = transport(TransportConfig {
        peer_queue_bytes: 256 * 1024,
        peer_write_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let (peer, accepted) = silent_peer().await;
    let body = vec![0xc4; 60 * 1024];
    // The socket buffers take some megabytes first; then the queue's bound.
    let mut overloaded = None;
    for _ in 0..2000 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = Box::new(move |result| {
            let _ = tx.send(result);
        });
        a.start_request(&peer, call("T.echo", &body, WAIT), done);
        if let Ok(Ok(Err(e @ RpcError::Overloaded { .. }))) =
            timeout(Duration::from_millis(1), rx).await
        {
            overloaded = Some(e);
            break;
        }
    }
    let error = overloaded.expect("calls fail as overloaded once the queue is full");
    assert!(error.to_string().contains("is not reading"), "{error}");
    // Past peer_write_timeout the connection is dropped; the heartbeat's
    // next ping connects again.
    timeout(WAIT, async {
        while accepted.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stalled connection is cut and a new one made");
}

/// Connects to `endpoint`, sends our greeting and READY, reads its greeting.
async fn handshaken(endpoint: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(endpoint.trim_start_matches("tcp://"))
        .await
        .ok()?;
    let mut hello = greeting();
    hello.extend_from_slice(&ready("tcp://127.0.0.1:1"));
    stream.write_all(&hello).await.ok()?;
    let mut theirs = [0u8; 64];
    timeout(WAIT, stream.read_exact(&mut theirs))
        .await
        .ok()?
        .ok()?;
    Some(stream)
}

/// Whether the other side closes `stream` within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    timeout(within, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn idle_connections_close_and_max_connections_refuses_more() {
    let (b, _b_rx) = transport(TransportConfig {
        idle_timeout: Duration::from_millis(400),
        max_connections: 2,
        ..config()
    })
    .await;
    let mut first = handshaken(b.endpoint()).await.expect("room");
    let mut second = handshaken(b.endpoint()).await.expect("room");
    assert!(
        handshaken(b.endpoint()).await.is_none(),
        "a third is refused"
    );
    // A frame under way, never finished: idle all the same.
    second.write_all(&[0x00, 50, 1, 2]).await.expect("writes");
    assert!(closed_within(&mut first, WAIT).await, "idle: closed");
    assert!(closed_within(&mut second, WAIT).await, "stalled: closed");
    let again = timeout(WAIT, async {
        loop {
            if let Some(stream) = handshaken(b.endpoint()).await {
                return stream;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(again.is_ok(), "room again once they closed");
}
