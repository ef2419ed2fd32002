//! The daemon's log port under abuse, with a real `lymphd` and raw ZMTP
//! subscribers: `rpc.allowed_peers` and `log.max_subscribers` close the
//! others at once; garbage and endless subscriptions are cut; idle
//! subscribers cost a bounded amount each.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::rpc_port::{Daemon, WAIT, closed_within, handshake, hello, zmtp_message};
use super::rss_bytes;

/// A subscriber from `source`: handshaken and subscribed to everything.
async fn subscribe(source: &str, endpoint: &str) -> Result<TcpStream, String> {
    let mut stream = handshake(source, endpoint, &hello("SUB", None)).await?;
    stream
        .write_all(&zmtp_message(&[&[1]]))
        .await
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

#[tokio::test]
async fn only_allowed_subscribers_up_to_the_maximum_are_served() {
    let env = [
        ("LYMPHD_RPC_ALLOWED_PEERS", "127.0.0.2"),
        ("LYMPHD_LOG_MAX_SUBSCRIBERS", "3"),
    ];
    let daemon = Daemon::start("", &env, None);
    let (_, endpoint) = daemon.own_endpoints().await;
    assert!(
        subscribe("127.0.0.1", &endpoint).await.is_err(),
        "127.0.0.1 is not allowed"
    );
    // Silent, without a greeting: its place is taken back (after 5 s).
    let silent = tokio::net::TcpSocket::new_v4().expect("socket");
    silent
        .bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind");
    let address = endpoint.trim_start_matches("tcp://").parse().expect("addr");
    let mut silent = silent.connect(address).await.expect("connects");
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(subscribe("127.0.0.2", &endpoint).await.expect("served"));
    }
    assert!(
        subscribe("127.0.0.2", &endpoint).await.is_err(),
        "past log.max_subscribers, closed at once"
    );
    for stream in &mut held {
        assert!(
            !closed_within(stream, Duration::from_millis(200)).await,
            "subscribers stay"
        );
    }
    assert!(
        daemon.proc.lines_with("log subscriber refused") >= 1,
        "refusals are warned:\n{}",
        daemon.proc.stderr_text()
    );
    assert!(
        closed_within(&mut silent, WAIT).await,
        "no greeting: closed"
    );
    let deadline = Instant::now() + WAIT;
    while subscribe("127.0.0.2", &endpoint).await.is_err() {
        assert!(Instant::now() < deadline, "room again after a close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn garbage_and_endless_subscriptions_are_cut_and_idle_subscribers_stay_small() {
    const IDLE: usize = 100;
    let daemon = Daemon::start("", &[("LYMPHD_LOG_MAX_SUBSCRIBERS", "128")], None);
    let (_, endpoint) = daemon.own_endpoints().await;
    let pid = daemon.proc.pid();
    // The first subscriber makes the PUB socket (its queue is preallocated).
    let first = subscribe("127.0.0.1", &endpoint).await.expect("served");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes(pid);

    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(subscribe("127.0.0.1", &endpoint).await.expect("served"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_subscriber = rss_bytes(pid).saturating_sub(before) / IDLE as u64;
    eprintln!("{} KiB per idle subscriber", per_subscriber >> 10);
    assert!(
        per_subscriber < 256 * 1024,
        "{per_subscriber} bytes per idle subscriber"
    );

    // Endless distinct subscriptions (each kept by the socket), then garbage.
    let before = rss_bytes(pid);
    let mut subscriptions = Vec::new();
    for i in 0..4000u32 {
        let mut topic = vec![1u8];
        topic.extend_from_slice(format!("topic-{i:08}-{}", "x".repeat(200)).as_bytes());
        subscriptions.extend(zmtp_message(&[&topic]));
    }
    for round in 0..20 {
        let mut stream = subscribe("127.0.0.1", &endpoint).await.expect("served");
        let sent = if round % 2 == 0 {
            stream.write_all(&subscriptions).await
        } else {
            stream.write_all(&[0xfe; 4096]).await
        };
        // The daemon may cut it before all is written.
        drop(sent);
        assert!(closed_within(&mut stream, WAIT).await, "round {round}: cut");
    }
    let grown = rss_bytes(pid).saturating_sub(before);
    eprintln!(
        "{} KiB grown after 20 abusive subscribers ({} KiB of subscriptions each)",
        grown >> 10,
        subscriptions.len() >> 10
    );
    assert!(
        grown < 16 * 1024 * 1024,
        "{grown} bytes grown for subscribers that were cut"
    );
    assert!(
        daemon.proc.lines_with("zeromq connection cut") >= 1,
        "cuts are warned:\n{}",
        daemon.proc.stderr_text()
    );
    drop((first, idle));
}
