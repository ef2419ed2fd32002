//! The `/metrics` port under hostile clients: past `metrics.max_connections`
//! a connection is closed at once; one that sends nothing, or never reads,
//! is cut after `metrics.timeout`; a huge request head is refused; the
//! daemon's descriptors stay bounded and it goes on answering scrapes.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{open_fds, settled_fds};
use crate::harness::{TestDaemon, wait_until};
use crate::prometheus::{metrics_listen, port_of};
use crate::web::get;

const CAP: usize = 2;

fn start() -> (TestDaemon, u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lymphd.yml");
    // A timeout of 3 s: the test must see the idle clients hold their slots
    // before it cuts them, even on a loaded machine.
    let yaml = format!("metrics:\n  max_connections: {CAP}\n  timeout: 3s\n");
    std::fs::write(&config, yaml).expect("write config");
    let daemon = TestDaemon::start_with(&["--config", config.to_str().expect("utf-8")]);
    let port = port_of(&metrics_listen(&daemon));
    (daemon, port)
}

/// How long until the peer closes `stream` (reading and dropping what it sends).
fn closed_within(mut stream: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(started.elapsed()),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn idle_clients_past_the_cap_are_closed_at_once_and_the_rest_after_the_timeout() {
    let (daemon, port) = start();
    let pid = daemon.proc.pid();
    // One scrape first: what serving it opens for good is in the baseline,
    // and the connections of the scrape and of `lymphctl status` are not.
    assert_eq!(get(port, "/metrics").status, 200);
    let before = settled_fds(pid);
    let idle: Vec<TcpStream> = (0..CAP)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    // Both slots taken: the next client is closed without an answer, at once.
    wait_until(
        "the idle clients to hold their slots",
        Duration::from_secs(10),
        || open_fds(pid) >= before + CAP,
    );
    let extra = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let refused = closed_within(extra, Duration::from_secs(5)).expect("closed");
    assert!(refused < Duration::from_secs(1), "refused in {refused:?}");
    // The idle ones go after metrics.timeout (3 s; wide margin for CI).
    for stream in idle {
        let cut = closed_within(stream, Duration::from_secs(15)).expect("cut");
        assert!(cut < Duration::from_secs(8), "cut after {cut:?}");
    }
    wait_until(
        "the descriptors to be given back",
        Duration::from_secs(10),
        || open_fds(pid) <= before,
    );
    assert_eq!(get(port, "/metrics").status, 200);
}

#[tokio::test]
async fn a_huge_request_head_is_refused() {
    let (_daemon, port) = start();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let head = format!(
        "GET /metrics HTTP/1.1\r\nx-pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    // The daemon may close before the whole head is written.
    let _ = stream.write_all(head.as_bytes());
    let mut raw = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = stream.read_to_end(&mut raw);
    let answer = String::from_utf8_lossy(&raw);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    assert_eq!(get(port, "/metrics").status, 200);
}
