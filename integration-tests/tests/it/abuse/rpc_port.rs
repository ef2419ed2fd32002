//! The ZeroMQ RPC port under abuse, with real `lymphd` processes in fleet mode
//! and raw ZMTP clients: replies to peers that never read stay bounded in
//! bytes; idle handshaken connections past the descriptor budget neither
//! starve the local socket nor stay open; `rpc.max_connections` and
//! `rpc.allowed_peers`. Also the raw ZMTP helpers `log_port` uses.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lymph_proto::v1 as pb;
use lymphd::conformance::frame::{self, Headers, Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{open_fds, rss_bytes};
use crate::harness::{
    Proc, bin, fleet_config, require_zookeeper, run_bounded, text, wait_until, workspace_root,
    zookeeper_chroot,
};

pub(super) const WAIT: Duration = Duration::from_secs(10);

/// A `lymphd` started here (not by the harness), so that its environment and
/// descriptor limit are this file's to choose.
pub(super) struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub proc: Proc,
}

impl Daemon {
    /// Starts `lymphd` with `yaml` as its config (none when empty), `env`
    /// added, under `prlimit --nofile=N:N` when `nofile` is given.
    pub(super) fn start(yaml: &str, env: &[(&str, &str)], nofile: Option<u32>) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("lymphd.sock");
        let mut cmd = match nofile {
            Some(n) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={n}:{n}")).arg(bin("lymphd"));
                cmd
            }
            None => Command::new(bin("lymphd")),
        };
        cmd.arg("--socket").arg(&socket).env("LYMPHD_LOG", "info");
        if !yaml.is_empty() {
            let config = dir.path().join("lymphd.yml");
            std::fs::write(&config, yaml).expect("write config");
            cmd.arg("--config").arg(config);
        }
        cmd.envs(env.iter().copied());
        let proc = Proc::spawn("lymphd", cmd, dir.path());
        wait_until("lymphd to listen", Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        Daemon { dir, socket, proc }
    }

    /// A fleet daemon (ZooKeeper registry) with its RPC port on 127.0.0.1.
    pub(super) fn fleet(env: &[(&str, &str)], nofile: Option<u32>) -> Daemon {
        require_zookeeper();
        let yaml = fleet_config(&zookeeper_chroot(), "127.0.0.1", 0);
        Daemon::start(&yaml, env, nofile)
    }

    /// `lymphctl --socket <this daemon> args...`, killed past `within`.
    pub(super) fn ctl(&self, args: &[&str], within: Duration) -> Output {
        let mut cmd = Command::new(bin("lymphctl"));
        cmd.arg("--socket").arg(&self.socket).args(args);
        run_bounded(cmd, within)
    }

    /// The daemon's own instance (service `lymph`): (RPC endpoint, log endpoint).
    pub(super) async fn own_endpoints(&self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut client = lymph_proto::connect(&self.socket).await.expect("connect");
            let request = pb::DiscoverRequest {
                service: "lymph".to_owned(),
            };
            let reply = client
                .discover(request)
                .await
                .expect("discover")
                .into_inner();
            let own = reply
                .services
                .iter()
                .flat_map(|s| s.instances.iter())
                .find(|i| i.local);
            if let Some(own) = own {
                return (own.endpoint.clone(), own.log_endpoint.clone());
            }
            assert!(Instant::now() < deadline, "the daemon never registered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A ZMTP 3.0 greeting (NULL mechanism) and READY naming `socket_type` and,
/// when given, an identity.
pub(super) fn hello(socket_type: &str, identity: Option<&str>) -> Vec<u8> {
    let mut out = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
    out.extend_from_slice(b"NULL");
    out.resize(64, 0);
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    let mut properties = vec![("Socket-Type", socket_type.as_bytes())];
    properties.extend(identity.map(|id| ("Identity", id.as_bytes())));
    for (name, value) in properties {
        body.push(u8::try_from(name.len()).expect("short name"));
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&u32::try_from(value.len()).expect("short").to_be_bytes());
        body.extend_from_slice(value);
    }
    out.extend_from_slice(&[0x04, u8::try_from(body.len()).expect("short READY")]);
    out.extend_from_slice(&body);
    out
}

/// One ZMTP message: every part but the last marked MORE.
pub(super) fn zmtp_message(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let more = u8::from(i + 1 < parts.len());
        match u8::try_from(part.len()) {
            Ok(short) => out.extend_from_slice(&[more, short]),
            Err(_) => {
                out.push(more | 0x02);
                out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(part);
    }
    out
}

/// Connects from `source` (an address of 127.0.0.0/8) to `to` (`tcp://ip:port`
/// or `ip:port`), sends `hello` and reads the peer's greeting. `Err` when the
/// peer closed the connection first (refused).
pub(super) async fn handshake(source: &str, to: &str, hello: &[u8]) -> Result<TcpStream, String> {
    let to = to.strip_prefix("tcp://").unwrap_or(to);
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    let from = format!("{source}:0").parse().expect("source address");
    socket.bind(from).map_err(|e| e.to_string())?;
    let mut stream = socket
        .connect(to.parse().expect("address"))
        .await
        .map_err(|e| e.to_string())?;
    let exchange = async {
        stream.write_all(hello).await?;
        let mut greeting = [0u8; 64];
        stream.read_exact(&mut greeting).await?;
        Ok::<(), std::io::Error>(())
    };
    match timeout(WAIT, exchange).await {
        Ok(Ok(())) => Ok(stream),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no greeting in time".to_owned()),
    }
}

/// Whether the peer closes `stream` within `within` (what it sends is skipped).
pub(super) async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 4096];
    let closed = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(within, closed).await.is_ok()
}

/// A `lymph.ping` request as lymph sends it (frames after the routing one),
/// its payload `payload` bytes of binary.
fn ping(payload: usize) -> Vec<u8> {
    let mut body = vec![0x81, 0xa7];
    body.extend_from_slice(b"payload");
    body.push(0xc6);
    body.extend_from_slice(&u32::try_from(payload).expect("fits").to_be_bytes());
    body.resize(body.len() + payload, b'x');
    let message = Message {
        id: frame::new_message_id(),
        kind: MessageType::Req,
        subject: "lymph.ping".to_owned(),
        headers: Headers {
            trace_id: Some("abuse".to_owned()),
            ..Headers::default()
        },
        body: body.into(),
    };
    let frames = frame::encode("", &message);
    let parts: Vec<&[u8]> = frames.iter().skip(1).map(|f| f.as_ref()).collect();
    zmtp_message(&parts)
}

/// A peer endpoint the daemon replies to: it completes the ZMTP handshake on
/// every connection; with `replies`, it reads them and reports each message
/// carrying a REP, without, it never reads a byte.
async fn peer(replies: Option<mpsc::UnboundedSender<()>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("tcp://{}", listener.local_addr().expect("addr"));
    let identity = endpoint.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let hello = hello("ROUTER", Some(&identity));
            if stream.write_all(&hello).await.is_err() {
                continue;
            }
            match &replies {
                Some(replies) => {
                    tokio::spawn(read_replies(stream, replies.clone()));
                }
                // Held open, never read: what the daemon writes piles up.
                None => held.push(stream),
            }
        }
    });
    endpoint
}

/// Reads ZMTP frames off `stream` (after its greeting); a message with a
/// `REP` part is reported.
async fn read_replies(mut stream: TcpStream, replies: mpsc::UnboundedSender<()>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let (mut pos, mut is_rep) = (64usize, false);
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(&flags) = buf.get(pos) {
            let long = flags & 0x02 != 0;
            let header = if long { 9 } else { 2 };
            if buf.len() < pos + header {
                break;
            }
            let len = if long {
                let bytes: [u8; 8] = buf[pos + 1..pos + 9].try_into().expect("8 bytes");
                usize::try_from(u64::from_be_bytes(bytes)).expect("fits")
            } else {
                usize::from(buf[pos + 1])
            };
            if buf.len() < pos + header + len {
                break;
            }
            let body = &buf[pos + header..pos + header + len];
            is_rep |= flags & 0x04 == 0 && body == b"REP";
            if flags & 0x05 == 0 {
                if is_rep {
                    let _ = replies.send(());
                }
                is_rep = false;
            }
            pos += header + len;
        }
    }
}

/// A ping from `source` whose reply the daemon sends to a reading peer: `Ok`
/// when the REP arrives.
async fn answers_a_ping(source: &str, endpoint: &str) -> Result<(), String> {
    let (tx, mut replies) = mpsc::unbounded_channel();
    let peer = peer(Some(tx)).await;
    let mut client = handshake(source, endpoint, &hello("ROUTER", Some(&peer))).await?;
    client
        .write_all(&ping(16))
        .await
        .map_err(|e| e.to_string())?;
    match timeout(WAIT, replies.recv()).await {
        Ok(Some(())) => Ok(()),
        _ => Err("no REP in time".to_owned()),
    }
}

#[tokio::test]
async fn pings_whose_replies_go_to_peers_that_never_read_grow_the_daemon_by_the_queue_bound() {
    const QUEUE_BYTES: usize = 1024 * 1024;
    const PAYLOAD: usize = 256 * 1024;
    const PINGS: usize = 400;
    let queue = QUEUE_BYTES.to_string();
    let daemon = Daemon::fleet(&[("LYMPHD_RPC_PEER_QUEUE_BYTES", &queue)], None);
    let (endpoint, _) = daemon.own_endpoints().await;
    let pid = daemon.proc.pid();
    let before = rss_bytes(pid);
    // Three connections, each naming a peer that accepts and never reads: the
    // daemon's replies (each echoing the payload) queue for those peers.
    let message = ping(PAYLOAD);
    let mut floods = Vec::new();
    for _ in 0..3 {
        let silent = peer(None).await;
        let mut client = handshake("127.0.0.1", &endpoint, &hello("ROUTER", Some(&silent)))
            .await
            .expect("handshake");
        let message = message.clone();
        floods.push(tokio::spawn(async move {
            for _ in 0..PINGS {
                client.write_all(&message).await.expect("write a ping");
            }
            client
        }));
    }
    let started = Instant::now();
    let mut clients = Vec::new();
    for flood in floods {
        let sent = timeout(Duration::from_secs(30), flood).await;
        clients.push(sent.expect("sent in time").expect("flood task"));
    }
    // What is still in the socket buffers gets read meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let grown = rss_bytes(pid).saturating_sub(before);
    let sent = 3 * PINGS * message.len();
    eprintln!(
        "sent {} MB of pings in {:?}; the daemon grew by {} MB",
        sent >> 20,
        started.elapsed(),
        grown >> 20
    );
    // Unbounded, every reply stays queued: growth ~ what was sent (~350 MB
    // measured with a 1 GB bound). Bounded: per peer the queue's bytes, the
    // batch being written and the read buffers (~9 MB measured).
    assert!(
        grown < (sent / 10) as u64,
        "grew {grown} bytes for {sent} bytes of pings to peers that never read"
    );
    assert!(
        daemon.proc.lines_with("reply dropped") >= 1,
        "dropped replies are warned:\n{}",
        daemon.proc.stderr_text()
    );
    answers_a_ping("127.0.0.1", &endpoint)
        .await
        .expect("a normal ping is still answered");
    drop(clients);
}

#[tokio::test]
async fn idle_handshaken_connections_past_the_fd_limit_leave_the_local_socket_working_and_close() {
    const CONNECTIONS: usize = 700;
    // 512 descriptors, 256 kept back (runtime.fd_reserve): the ports get 256.
    let env = [("LYMPHD_RPC_IDLE_TIMEOUT", "2s")];
    let daemon = Daemon::fleet(&env, Some(512));
    let (endpoint, _) = daemon.own_endpoints().await;
    let mut app = Command::new(bin("greeting"));
    app.args(["--config", "conf/greeting.yml"])
        .current_dir(workspace_root())
        .env("LYMPH_SOCKET", &daemon.socket);
    let _app = Proc::spawn("greeting", app, daemon.dir.path());
    let request = [
        "request",
        "--timeout",
        "2",
        "Greeting.greet",
        r#"{"name": "Joe"}"#,
    ];
    wait_until(
        "the greeting app to answer",
        Duration::from_secs(20),
        || daemon.ctl(&request, WAIT).status.success(),
    );
    let pid = daemon.proc.pid();
    let fds_before = open_fds(pid);

    // A peer that sends a valid greeting, then stalls in the middle of a frame.
    let mut stalled = handshake("127.0.0.1", &endpoint, &hello("ROUTER", None))
        .await
        .expect("handshake");
    stalled
        .write_all(&[0x00, 100, 1, 2, 3])
        .await
        .expect("part of a frame");
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..CONNECTIONS {
        match handshake("127.0.0.1", &endpoint, &hello("ROUTER", None)).await {
            Ok(stream) => held.push(stream),
            Err(_) => refused += 1,
        }
    }
    eprintln!("{} handshaken and idle, {refused} refused", held.len());
    assert!(held.len() >= 100, "the port took its share: {}", held.len());
    assert!(
        refused >= CONNECTIONS - 256,
        "past the budget: {refused} refused"
    );

    // The issue's measurement: at the limit `status` timed out and `request
    // --timeout 2` hung over 30 s. Killed past 5 s here (2 s asked, a margin
    // for a loaded machine); ~70 ms measured.
    for args in [&["status"][..], &request[..]] {
        let started = Instant::now();
        let out = daemon.ctl(args, Duration::from_secs(5));
        eprintln!("lymphctl {args:?} answered in {:?}", started.elapsed());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    assert!(
        daemon.proc.lines_with("rpc connection refused") >= 1,
        "refusals are warned:\n{}",
        daemon.proc.stderr_text()
    );

    // Idle past 2 s: closed (the sweep's granularity adds at most 0.5 s).
    let deadline = Instant::now() + WAIT;
    assert!(
        closed_within(&mut stalled, WAIT).await,
        "a connection stalled mid-frame is cut"
    );
    for stream in &mut held {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(closed_within(stream, left).await, "idle connections close");
    }
    drop(held);
    wait_until("the daemon's descriptors back", WAIT, || {
        open_fds(pid) <= fds_before + 16
    });
    answers_a_ping("127.0.0.1", &endpoint)
        .await
        .expect("served again once the idle ones are gone");
}

#[tokio::test]
async fn only_allowed_peers_up_to_max_connections_are_served() {
    let env = [
        ("LYMPHD_RPC_ALLOWED_PEERS", "127.0.0.2"),
        ("LYMPHD_RPC_MAX_CONNECTIONS", "3"),
    ];
    let daemon = Daemon::fleet(&env, None);
    let (endpoint, _) = daemon.own_endpoints().await;
    let idle = hello("ROUTER", None);
    let refused = handshake("127.0.0.1", &endpoint, &idle).await;
    assert!(refused.is_err(), "127.0.0.1 is not allowed");
    answers_a_ping("127.0.0.2", &endpoint)
        .await
        .expect("127.0.0.2 is served");

    // The ping's connection may still be open: fill up to the maximum.
    let mut held = Vec::new();
    let deadline = Instant::now() + WAIT;
    while held.len() < 3 {
        match handshake("127.0.0.2", &endpoint, &idle).await {
            Ok(stream) => held.push(stream),
            Err(_) => assert!(Instant::now() < deadline, "room for 3"),
        }
    }
    // Three held (the ping's connection is gone then): a fourth is closed at once.
    let fourth = handshake("127.0.0.2", &endpoint, &idle).await;
    assert!(fourth.is_err(), "past max_connections, closed at once");
    assert!(
        daemon.proc.lines_with("rpc connection refused") >= 1,
        "refusals are warned:\n{}",
        daemon.proc.stderr_text()
    );
    // One closed: room again.
    held.pop();
    let deadline = Instant::now() + WAIT;
    while handshake("127.0.0.2", &endpoint, &idle).await.is_err() {
        assert!(Instant::now() < deadline, "room again after a close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
