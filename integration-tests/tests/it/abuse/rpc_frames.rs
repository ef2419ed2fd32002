//! The RPC port's ZMTP reader against a message of endless empty frames,
//! with a real fleet `lymphd`: each such frame costs the peer 2 bytes and
//! counts 0 against `rpc.max_message_bytes`, so before the frame-count bound
//! the daemon kept a slot per frame (16 bytes of memory per byte sent,
//! without end). Found by the parsers' fuzzing (`lymph-fuzz`).

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

use super::rpc_port::{Daemon, WAIT, closed_within, handshake, hello};
use super::rss_bytes;

#[tokio::test]
async fn a_message_of_endless_empty_frames_is_cut_and_the_daemon_stays_small() {
    const SENT: usize = 64 * 1024 * 1024;
    let daemon = Daemon::fleet(&[], None);
    let (endpoint, _) = daemon.own_endpoints().await;
    let pid = daemon.proc.pid();
    let before = rss_bytes(pid);
    let mut client = handshake("127.0.0.1", &endpoint, &hello("ROUTER", None))
        .await
        .expect("handshake");
    // Empty frames, each flagged MORE: one message that never ends. Written
    // until the daemon cuts the connection (a write fails) or all is sent.
    let chunk = [0x01u8, 0x00].repeat(512 * 1024);
    let started = Instant::now();
    let mut written = 0;
    let flood = async {
        while written < SENT {
            if client.write_all(&chunk).await.is_err() {
                break;
            }
            written += chunk.len();
        }
    };
    timeout(Duration::from_secs(30), flood)
        .await
        .expect("the flood ends in time");
    assert!(
        closed_within(&mut client, WAIT).await,
        "the connection is cut"
    );
    let grown = rss_bytes(pid).saturating_sub(before);
    eprintln!(
        "wrote {} MB of empty frames in {:?} before the cut; the daemon grew by {} MB",
        written >> 20,
        started.elapsed(),
        grown >> 20
    );
    // Unbounded: 16 bytes per byte sent (a gigabyte for 64 MB). Bounded:
    // the connection's read buffer at most.
    assert!(grown < 16 * 1024 * 1024, "grew {grown} bytes");
    // The daemon logs the cut just after closing: the client may see the
    // close first (seen failing in CI).
    let logged = Instant::now() + WAIT;
    while daemon.proc.lines_with("more than 16 frames") == 0 && Instant::now() < logged {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        daemon.proc.lines_with("more than 16 frames") >= 1,
        "the cut is logged with its reason:\n{}",
        daemon.proc.stderr_text()
    );
    handshake("127.0.0.1", &endpoint, &hello("ROUTER", None))
        .await
        .expect("the port still takes connections");
}
