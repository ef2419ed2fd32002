//! The local socket under abuse: thousands of idle `Attach` streams (capped by
//! `apps.max_connections`, bounded memory each, the rest refused), connections
//! past the cap (closed at once), and connections that never send the HTTP/2
//! preface or make no call (closed within `apps.hello_timeout`), while a normal
//! app and `lymphctl` keep working.

use std::io::Read as _;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use lymph_proto::v1 as pb;
use lymph_proto::v1::lymph_client::LymphClient;
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::{open_fds, rss_bytes};
use crate::harness::{Proc, TestDaemon, text, wait_until};

/// A daemon whose config file (in its own temp dir) holds `yaml`.
fn daemon_with(yaml: &str) -> (TestDaemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lymphd.yml");
    std::fs::write(&config, yaml).expect("write config");
    let daemon = TestDaemon::start_with(&["--config", config.to_str().expect("utf-8 path")]);
    (daemon, dir)
}

async fn with_greeting(daemon: &TestDaemon) -> Proc {
    let app = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    daemon.wait_for_instances("Greeting", 1).await;
    app
}

fn tool_hello(n: usize) -> pb::AppMessage {
    pb::AppMessage {
        kind: Some(pb::app_message::Kind::Hello(pb::Hello {
            app_name: format!("idle-{n}"),
            sdk: "abuse-test".to_owned(),
            pid: std::process::id(),
            ..Default::default()
        })),
    }
}

/// An attached tool that said `Hello` and then nothing: dropping it ends its
/// half of the stream, which detaches it.
struct Idle {
    _tx: mpsc::Sender<pb::AppMessage>,
    _inbound: tonic::Streaming<pb::DaemonMessage>,
}

/// Opens an `Attach` stream that says `Hello` and then nothing. `Ok` once
/// welcomed; `Err` with the status when refused.
async fn idle_attach(mut client: LymphClient<Channel>, n: usize) -> Result<Idle, tonic::Status> {
    let (tx, rx) = mpsc::channel(1);
    tx.send(tool_hello(n)).await.expect("queue Hello");
    let mut inbound = client.attach(ReceiverStream::new(rx)).await?.into_inner();
    match inbound.message().await? {
        Some(pb::DaemonMessage {
            kind: Some(pb::daemon_message::Kind::Welcome(_)),
        }) => Ok(Idle {
            _tx: tx,
            _inbound: inbound,
        }),
        other => panic!("Attach answered {other:?}"),
    }
}

/// Reads until EOF or an error; `true` if the server closed the connection
/// within `within` (after at most its HTTP/2 SETTINGS).
fn closed_by_server(stream: &mut UnixStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

async fn attached(daemon: &TestDaemon) -> usize {
    let status = daemon.client().await.status(pb::StatusRequest {}).await;
    status.expect("status").into_inner().apps.len()
}

fn connect_raw(socket: &Path) -> UnixStream {
    UnixStream::connect(socket).expect("connect to the local socket")
}

const CAP: usize = 400;
const CHANNELS: usize = 20;
const STREAMS_PER_CHANNEL: usize = 100;

#[tokio::test]
async fn idle_attach_streams_are_capped_and_cost_bounded_memory() {
    let (daemon, _config) = daemon_with(&format!("apps:\n  max_connections: {CAP}\n"));
    let app = with_greeting(&daemon).await;
    let pid = daemon.proc.pid();
    let rss_before = rss_bytes(pid);

    // 2,000 attempts over 20 connections; the greeting app holds one slot.
    let mut clients = Vec::new();
    for _ in 0..CHANNELS {
        clients.push(daemon.client().await);
    }
    let mut attempts = tokio::task::JoinSet::new();
    for n in 0..CHANNELS * STREAMS_PER_CHANNEL {
        attempts.spawn(idle_attach(clients[n % CHANNELS].clone(), n));
    }
    let mut idle = Vec::new();
    let mut refused = 0;
    let deadline = Duration::from_secs(30);
    while let Some(done) = tokio::time::timeout(deadline, attempts.join_next())
        .await
        .expect("every Attach is answered")
    {
        match done.expect("attempt task") {
            Ok(stream) => idle.push(stream),
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("apps.max_connections"),
                    "{status:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(idle.len(), CAP - 1, "Attach streams up to the cap");
    assert_eq!(refused, CHANNELS * STREAMS_PER_CHANNEL - (CAP - 1));

    let rss_after = rss_bytes(pid);
    let per_stream = rss_after.saturating_sub(rss_before) / idle.len() as u64;
    eprintln!(
        "{} idle Attach streams ({refused} refused): RSS {} -> {} kB, {} bytes per stream",
        idle.len(),
        rss_before / 1024,
        rss_after / 1024,
        per_stream
    );
    // Measured ~19 kB per stream on the debug build: bounded, wide margin.
    assert!(per_stream < 96 * 1024, "{per_stream} bytes per idle stream");

    // Connections past the cap are closed at once. The daemon holds the
    // app's and our 20; open enough raw ones to go 10 past the cap.
    let fds_before = open_fds(pid);
    let raw_count = CAP - CHANNELS - 1 + 10;
    let mut raw: Vec<UnixStream> = (0..raw_count)
        .map(|_| connect_raw(&daemon.socket))
        .collect();
    let closed = raw
        .iter_mut()
        .filter_map(|s| closed_by_server(s, Duration::from_millis(300)).then_some(()))
        .count();
    assert!(closed >= 10, "{closed} of {raw_count} closed past the cap");
    let fds_at_cap = open_fds(pid);
    assert!(
        fds_at_cap <= fds_before + (CAP - CHANNELS - 1) + 5,
        "fds {fds_before} -> {fds_at_cap}"
    );

    // With the raw connections gone, tools and the app are served again;
    // the Attach cap still holds.
    drop(raw);
    wait_until("raw connections to close", Duration::from_secs(10), || {
        open_fds(pid) <= fds_before + 5
    });
    let out = daemon.ctl(&["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("apps:      {CAP}\n")));
    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Joe"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"Hi, Joe!\"\n");
    let out = daemon.ctl(&["request", "-N", "1", "lymph.ping", "{}"]);
    assert!(
        !out.status.success(),
        "a tool's Attach is refused at the cap"
    );
    assert!(text(&out.stderr).contains("apps.max_connections"));

    // Slots freed are slots for the next apps.
    drop(idle);
    drop(clients);
    // Awaited, not polled with a blocking wait: our runtime must run for the
    // ends of the streams to reach the daemon.
    let deadline = Instant::now() + Duration::from_secs(10);
    while attached(&daemon).await > 1 {
        assert!(Instant::now() < deadline, "idle apps still attached");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = daemon.ctl(&["request", "-N", "1", "lymph.ping", "{}"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        app.lines_with("reconnecting"),
        0,
        "the app kept its connection"
    );
}

const SILENT: usize = 200;

#[tokio::test]
async fn connections_that_never_arrive_are_closed_within_hello_timeout() {
    let (daemon, _config) = daemon_with("apps:\n  hello_timeout: 1s\n");
    let app = with_greeting(&daemon).await;
    let pid = daemon.proc.pid();
    // A tool's connection: one call, then idle past the hello timeout.
    let mut tool = daemon.client().await;
    tool.status(pb::StatusRequest {}).await.expect("status");
    let fds_before = open_fds(pid);

    // Connections that never send the HTTP/2 preface, and one that sends
    // it (a connected channel) but makes no call.
    let opened = Instant::now();
    let mut silent: Vec<UnixStream> = (0..SILENT).map(|_| connect_raw(&daemon.socket)).collect();
    let mut no_call = daemon.client().await;
    wait_until("the daemon to hold them", Duration::from_secs(5), || {
        open_fds(pid) >= fds_before + SILENT
    });
    // Meanwhile a normal client is served.
    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Joe"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // 1 s hello timeout, wide margin for a loaded machine.
    let margin = Duration::from_secs(5);
    for stream in &mut silent {
        let left = (Duration::from_secs(1) + margin).saturating_sub(opened.elapsed());
        assert!(
            closed_by_server(stream, left),
            "a silent connection stayed open"
        );
    }
    eprintln!(
        "{SILENT} silent connections closed {:?} after they were opened (hello_timeout 1s)",
        opened.elapsed()
    );
    wait_until(
        "the daemon to close them all",
        Duration::from_secs(1) + margin,
        || open_fds(pid) <= fds_before,
    );
    let log = daemon.proc.stderr_text();
    assert!(
        log.contains("no call and sent no Hello within apps.hello_timeout"),
        "{log}"
    );
    assert!(
        log.matches("no call and sent no Hello").count() <= 2,
        "warnings about them are rate-limited: {log}"
    );

    // What arrived in time stays: the tool's connection (the daemon closed
    // exactly the silent ones: fds are back to what they were, its included)
    // and the app's stream.
    assert_eq!(
        open_fds(pid),
        fds_before,
        "the tool's connection is still open"
    );
    tool.status(pb::StatusRequest {})
        .await
        .expect("status on the same channel");
    let out = daemon.ctl(&["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Ann"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        app.lines_with("reconnecting"),
        0,
        "the app kept its connection"
    );
    // The channel whose connection was closed for making no call connects
    // again by itself on its first call.
    no_call
        .status(pb::StatusRequest {})
        .await
        .expect("a channel reconnects after its idle connection was closed");
}
