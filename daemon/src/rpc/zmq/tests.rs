//! Transport tests over real sockets on 127.0.0.1; every wait is bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::timeout;
use zeromq::{DealerSocket, Socket, SocketSend, ZmqMessage};

use super::start;
use crate::rpc::frame::decode_error_body;
use crate::rpc::{
    IncomingRequest, NackReason, OutgoingRequest, Remote, ReplyKind, Response, RpcError,
    TransportConfig,
};

const WAIT: Duration = Duration::from_secs(10);

pub(super) fn config() -> TransportConfig {
    TransportConfig {
        ip: "127.0.0.1".to_owned(),
        port: 0,
        connect_timeout: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(100),
        unresponsive_after: Duration::from_millis(400),
        max_frame_bytes: 64 * 1024,
        max_message_bytes: 128 * 1024,
        incoming_queue: 64,
        peer_queue_bytes: 8 * 1024 * 1024,
        peer_write_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 4096,
        allowed_peers: Vec::new(),
    }
}

pub(super) async fn transport(
    config: TransportConfig,
) -> (Arc<dyn Remote>, mpsc::Receiver<IncomingRequest>) {
    timeout(WAIT, start(config))
        .await
        .expect("start in time")
        .expect("starts")
}

pub(super) fn call(subject: &str, body: &[u8], wait: Duration) -> OutgoingRequest {
    OutgoingRequest {
        subject: subject.to_owned(),
        body: Bytes::copy_from_slice(body),
        trace_id: "trace-1".to_owned(),
        version: Some("1.2.3".to_owned()),
        identity: None,
        deadline: crate::deadline::Deadline::after(wait),
        traceparent: None,
    }
}

/// Serves requests: `T.echo` → REP of the body, `T.fail` → ERROR, `T.nack` →
/// NACK with a reason, `T.hang` → held unanswered until the transport closes.
/// Reports every request's (trace_id, version) on the returned channel.
fn serve(
    mut rx: mpsc::Receiver<IncomingRequest>,
) -> mpsc::UnboundedReceiver<(String, Option<String>)> {
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(request) = rx.recv().await {
            let _ = seen_tx.send((request.trace_id.clone(), request.version.clone()));
            let response = match request.subject.as_str() {
                "T.echo" => Response::Rep {
                    body: request.body.clone(),
                    version: Some("1.2.3".to_owned()),
                },
                "T.fail" => Response::Error {
                    error_type: "ProbeError".to_owned(),
                    message: "bad input".to_owned(),
                    version: None,
                },
                "T.nack" => Response::Nack(NackReason {
                    kind: crate::error::ErrorKind::UnknownMethod,
                    message: "no T.nack".to_owned(),
                }),
                _ => {
                    held.push(request);
                    continue;
                }
            };
            request.responder.respond(response);
        }
    });
    seen_rx
}

#[tokio::test]
async fn request_reply_round_trip_keeps_body_and_headers() {
    let (a, _a_rx) = transport(config()).await;
    let (b, b_rx) = transport(config()).await;
    let mut seen = serve(b_rx);
    // A body with every awkward byte: bin32-free but not UTF-8, nested.
    let body = [
        0x92, 0xc4, 0x03, 0xff, 0x00, 0xfe, 0x81, 0xa1, b'k', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
    ];
    let reply = timeout(WAIT, a.request(b.endpoint(), call("T.echo", &body, WAIT)))
        .await
        .expect("in time")
        .expect("replies");
    assert_eq!(reply.kind, ReplyKind::Rep);
    assert_eq!(reply.body.as_ref(), &body);
    assert_eq!(reply.trace_id.as_deref(), Some("trace-1"));
    let (trace_id, version) = timeout(WAIT, seen.recv())
        .await
        .expect("in time")
        .expect("seen");
    assert_eq!(
        (trace_id.as_str(), version.as_deref()),
        ("trace-1", Some("1.2.3"))
    );
    assert!(a.is_alive(b.endpoint()));
    assert!(b.is_alive(a.endpoint()));
}

#[tokio::test]
async fn error_and_nack_with_reason_round_trip() {
    let (a, _a_rx) = transport(config()).await;
    let (b, b_rx) = transport(config()).await;
    let _seen = serve(b_rx);
    let reply = timeout(WAIT, a.request(b.endpoint(), call("T.fail", &[0x80], WAIT)))
        .await
        .expect("in time")
        .expect("replies");
    assert_eq!(reply.kind, ReplyKind::Error);
    assert_eq!(
        decode_error_body(&reply.body),
        ("ProbeError".to_owned(), "bad input".to_owned())
    );
    let reply = timeout(WAIT, a.request(b.endpoint(), call("T.nack", &[0x80], WAIT)))
        .await
        .expect("in time")
        .expect("replies");
    assert_eq!(reply.kind, ReplyKind::Nack);
    assert_eq!(reply.body.as_ref(), &[0xc0]);
    let reason = reply.reason.expect("a reason");
    assert_eq!(
        (reason.kind, reason.message.as_str()),
        (crate::error::ErrorKind::UnknownMethod, "no T.nack")
    );
}

#[tokio::test]
async fn ping_is_answered_without_the_daemon_and_a_full_queue_nacks() {
    let (a, _a_rx) = transport(config()).await;
    let (b, _b_rx_never_read) = transport(TransportConfig {
        incoming_queue: 1,
        ..config()
    })
    .await;
    let ping = [
        0x81, 0xa7, b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0xa1, b'x',
    ];
    let reply = timeout(
        WAIT,
        a.request(b.endpoint(), call("lymph.ping", &ping, WAIT)),
    )
    .await
    .expect("in time")
    .expect("pong");
    assert_eq!(
        (reply.kind, reply.body.as_ref()),
        (ReplyKind::Rep, [0xa1, b'x'].as_slice())
    );
    // The first request fills the queue of one; the second is refused at once.
    let short = Duration::from_millis(300);
    let first = a.request(b.endpoint(), call("T.echo", &[0xc0], short));
    let second = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.request(b.endpoint(), call("T.echo", &[0xc0], WAIT)).await
    };
    let (first, second) = timeout(WAIT, async { tokio::join!(first, second) })
        .await
        .expect("in time");
    assert!(matches!(first, Err(RpcError::Timeout { .. })), "{first:?}");
    let second = second.expect("a nack");
    assert_eq!(second.kind, ReplyKind::Nack);
    assert_eq!(
        second.reason.map(|r| r.kind),
        Some(crate::error::ErrorKind::Overloaded)
    );
}

/// `start_request` as a future: the callback's result through a oneshot.
async fn started(
    remote: &dyn Remote,
    endpoint: &str,
    request: OutgoingRequest,
) -> Result<crate::rpc::IncomingReply, RpcError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    remote.start_request(
        endpoint,
        request,
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    timeout(WAIT, rx)
        .await
        .expect("the callback runs in time")
        .expect("the callback runs")
}

#[tokio::test]
async fn started_requests_complete_from_the_reply_or_fail_at_their_deadline() {
    let (a, _a_rx) = transport(config()).await;
    let (b, b_rx) = transport(config()).await;
    let _seen = serve(b_rx);
    let reply = started(a.as_ref(), b.endpoint(), call("T.echo", b"\xa2hi", WAIT))
        .await
        .expect("replies");
    assert_eq!(
        (reply.kind, reply.body.as_ref()),
        (ReplyKind::Rep, b"\xa2hi".as_slice())
    );
    let short = Duration::from_millis(200);
    let sent = Instant::now();
    let held = started(a.as_ref(), b.endpoint(), call("T.hang", &[0x80], short)).await;
    let waited = sent.elapsed();
    assert!(matches!(held, Err(RpcError::Timeout { .. })), "{held:?}");
    assert!(waited >= short, "not before its deadline: {waited:?}");
    assert!(waited < short * 10, "soon after its deadline: {waited:?}");
    let nowhere = started(a.as_ref(), "nonsense", call("T.echo", &[0x80], WAIT)).await;
    assert!(
        matches!(nowhere, Err(RpcError::BadEndpoint(_))),
        "{nowhere:?}"
    );
}

#[tokio::test]
async fn a_peer_dying_mid_call_fails_the_call_fast_and_is_then_unresponsive() {
    let (a, _a_rx) = transport(config()).await;
    let (b, b_rx) = transport(config()).await;
    let _seen = serve(b_rx);
    let b_endpoint = b.endpoint().to_owned();
    timeout(WAIT, a.request(&b_endpoint, call("T.echo", &[0xc0], WAIT)))
        .await
        .expect("in time")
        .expect("warm-up");
    let started = Instant::now();
    let hanging = a.request(
        &b_endpoint,
        call("T.hang", &[0xc0], Duration::from_secs(30)),
    );
    let killer = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(b);
    };
    let (result, ()) = timeout(WAIT, async { tokio::join!(hanging, killer) })
        .await
        .expect("in time");
    assert!(
        matches!(result, Err(RpcError::Unreachable { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + WAIT;
    while a.is_alive(&b_endpoint) {
        assert!(Instant::now() < deadline, "never marked unresponsive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_restarted_peer_on_the_same_port_is_reached_again() {
    let (a, _a_rx) = transport(config()).await;
    let (b, b_rx) = transport(config()).await;
    let _seen = serve(b_rx);
    let b_endpoint = b.endpoint().to_owned();
    let port: u16 = b_endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    timeout(WAIT, a.request(&b_endpoint, call("T.echo", &[0x01], WAIT)))
        .await
        .expect("in time")
        .expect("first life");
    drop(b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (b2, b2_rx) = transport(TransportConfig { port, ..config() }).await;
    let _seen2 = serve(b2_rx);
    let reply = timeout(
        WAIT,
        a.request(&b_endpoint, call("T.echo", &[0x02], Duration::from_secs(2))),
    )
    .await
    .expect("in time");
    assert_eq!(reply.expect("second life").body.as_ref(), &[0x02]);
    drop(b2);
}

#[tokio::test]
async fn a_dead_port_fails_within_the_connect_timeout_without_stalling_live_peers() {
    let (a, _a_rx) = transport(config()).await;
    let (b, b_rx) = transport(config()).await;
    let _seen = serve(b_rx);
    // Bind and drop a listener to find a port where nothing listens.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dead = format!("tcp://127.0.0.1:{dead_port}");
    let started = Instant::now();
    let dead_call = async {
        let result = a.request(&dead, call("T.echo", &[0xc0], WAIT)).await;
        (result, started.elapsed())
    };
    let live_calls = async {
        let mut slowest = Duration::ZERO;
        for i in 0..20u8 {
            let at = Instant::now();
            let reply = a
                .request(b.endpoint(), call("T.echo", &[i], WAIT))
                .await
                .expect("live peer answers");
            assert_eq!(reply.body.as_ref(), &[i]);
            slowest = slowest.max(at.elapsed());
        }
        slowest
    };
    let ((dead_result, dead_took), slowest) =
        timeout(WAIT, async { tokio::join!(dead_call, live_calls) })
            .await
            .expect("in time");
    assert!(
        matches!(dead_result, Err(RpcError::Unreachable { .. })),
        "{dead_result:?}"
    );
    assert!(
        dead_took < Duration::from_millis(1500),
        "dead peer took {dead_took:?}"
    );
    assert!(
        slowest < Duration::from_millis(400),
        "a live call took {slowest:?}"
    );
    assert!(
        !a.is_alive(&dead),
        "never heard from past unresponsive_after: known dead"
    );
}

#[tokio::test]
async fn garbage_from_a_raw_socket_is_dropped_and_service_goes_on() {
    let (a, _a_rx) = transport(config()).await;
    let (b, b_rx) = transport(config()).await;
    let _seen = serve(b_rx);
    let mut raw = DealerSocket::new();
    timeout(WAIT, raw.connect(b.endpoint()))
        .await
        .expect("in time")
        .expect("connects");
    let frames = |parts: Vec<Vec<u8>>| {
        ZmqMessage::try_from(parts.into_iter().map(Bytes::from).collect::<Vec<_>>())
            .expect("frames")
    };
    let id = b"0123456789abcdef0123456789abcdef".to_vec();
    let garbage = vec![
        frames(vec![b"one".to_vec(), b"two".to_vec()]),
        frames(vec![
            vec![0xff, 0xfe],
            b"REQ".to_vec(),
            b"T.echo".to_vec(),
            vec![0x80],
            vec![0xc0],
        ]),
        frames(vec![
            id.clone(),
            b"PUSH".to_vec(),
            b"T.echo".to_vec(),
            vec![0x80],
            vec![0xc0],
        ]),
        frames(vec![
            id.clone(),
            b"REQ".to_vec(),
            b"T.echo".to_vec(),
            vec![0xa5],
            vec![0xc0],
        ]),
        frames(vec![
            id.clone(),
            b"REQ".to_vec(),
            b"T.echo".to_vec(),
            vec![0x80],
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        ]),
        frames(vec![
            id.clone(),
            b"REQ".to_vec(),
            b"T.echo".to_vec(),
            vec![0x80],
            vec![0xc4; 1 << 20],
        ]),
        frames(vec![
            id.clone(),
            b"REP".to_vec(),
            id.clone(),
            vec![0x80],
            vec![0xc0],
        ]),
    ];
    for message in garbage {
        timeout(WAIT, raw.send(message))
            .await
            .expect("in time")
            .expect("sent");
    }
    for i in 0..3u8 {
        let reply = timeout(WAIT, a.request(b.endpoint(), call("T.echo", &[i], WAIT)))
            .await
            .expect("in time");
        assert_eq!(reply.expect("still serving").body.as_ref(), &[i]);
    }
}

#[tokio::test]
async fn oversize_requests_are_refused_before_sending() {
    let (a, _a_rx) = transport(config()).await;
    let body = vec![0xc0; 0]
        .into_iter()
        .chain([0xc6, 0, 1, 0, 0])
        .chain(vec![0; 65536])
        .collect::<Vec<u8>>();
    let result = a
        .request("tcp://127.0.0.1:1", call("T.echo", &body, WAIT))
        .await;
    assert!(
        matches!(result, Err(RpcError::TooLarge { .. })),
        "{result:?}"
    );
    let result = a
        .request("not-an-endpoint", call("T.echo", &[0xc0], WAIT))
        .await;
    assert!(
        matches!(result, Err(RpcError::BadEndpoint(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn silent_peers_are_forgotten_and_tasks_end_on_drop() {
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let cfg = TransportConfig {
        unresponsive_after: Duration::from_millis(100),
        ..config()
    };
    let (a, a_rx) = timeout(WAIT, super::RpcClient::start(cfg.clone()))
        .await
        .expect("in time")
        .expect("starts");
    let (b, b_rx) = transport(cfg).await;
    let _seen = serve(b_rx);
    timeout(WAIT, a.request(b.endpoint(), call("T.echo", &[0xc0], WAIT)))
        .await
        .expect("in time")
        .expect("replies");
    drop(b);
    // forget_after = 10 × unresponsive_after = 1 s.
    assert_eq!(a.shared.counts(), (1, 0));
    let deadline = Instant::now() + WAIT;
    while a.shared.counts() != (0, 0) {
        assert!(Instant::now() < deadline, "peer never forgotten");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((a, a_rx));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if alive <= baseline {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{alive} tasks still alive, {baseline} before"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A ZMTP peer that announces one frame of `len` bytes and never sends it.
pub(crate) async fn announce_huge_frame(endpoint: &str, len: u64) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = endpoint.trim_start_matches("tcp://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connects");
    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
    greeting.extend(b"NULL");
    greeting.resize(64, 0);
    let mut ready = vec![5];
    ready.extend(b"READY");
    ready.push(11);
    ready.extend(b"Socket-Type");
    ready.extend(6u32.to_be_bytes());
    ready.extend(b"DEALER");
    let mut bytes = greeting;
    bytes.extend([0x04, u8::try_from(ready.len()).expect("short")]);
    bytes.extend(ready);
    bytes.push(0x02);
    bytes.extend(len.to_be_bytes());
    stream.write_all(&bytes).await.expect("writes");
    stream
}

/// Without the guard, zeromq 0.7 reserves the announced size and a 1 TB
/// announcement aborts the process.
#[tokio::test]
async fn a_huge_announced_frame_cuts_the_connection_not_the_daemon() {
    use tokio::io::AsyncReadExt;
    let (a, _a_rx) = transport(config()).await;
    let (b, b_rx) = transport(config()).await;
    let _seen = serve(b_rx);
    let mut stream = announce_huge_frame(b.endpoint(), 1 << 40).await;
    let mut sink = Vec::new();
    let read = timeout(WAIT, stream.read_to_end(&mut sink))
        .await
        .expect("connection cut in time");
    assert!(read.is_ok() || read.is_err(), "closed either way");
    let reply = timeout(WAIT, a.request(b.endpoint(), call("T.echo", &[0x01], WAIT)))
        .await
        .expect("in time");
    assert_eq!(reply.expect("still serving").body.as_ref(), &[0x01]);
}
