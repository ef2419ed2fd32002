//! Connections on the local socket: at most `apps.max_connections` open at
//! once (past it a new one is closed at once), and each must get from its
//! accept to its first call or its app's `Hello` within `apps.hello_timeout`,
//! else it is closed. Each carries its peer's credentials, taken at accept (a
//! connection whose credentials cannot be read is closed). Knows nothing of
//! gRPC beyond the [`LocalPeer`] tonic puts in each request's extensions.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::transport::server::Connected;

use crate::access::PeerCred;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// After a failed accept (EMFILE and the like), before the next try: long
/// enough not to spin on a descriptor shortage, short enough to be unnoticed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Streams one connection may have open at once (HTTP/2 SETTINGS). An app
/// needs one (`Attach`) and a tool a few; past it a client's HTTP/2 library
/// holds new streams until one ends, and a client that opens more anyway has
/// them refused (RST_STREAM), so a connection's streams cost bounded memory.
pub const STREAMS_PER_CONNECTION: u32 = 128;

/// How often an HTTP/2 ping checks an open connection's peer, and how long
/// the peer has to answer before the connection is closed. Connections that
/// made their first call may stay open and idle (an app's `Attach`, a tool's
/// reused channel): that is what they are for, and the connection cap bounds
/// how many. The ping only finds peers that stopped reading (stopped, hung or
/// hostile); a peer that dies closes its end of the socket at once anyway.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The API server with the HTTP/2 bounds of the local socket.
pub fn server_builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

static REFUSED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static ACCEPT_FAILED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static NO_HELLO: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static NO_CREDENTIALS: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// What a request knows of the connection it came on (its `ConnectInfo`):
/// who opened it and whether it arrived.
#[derive(Debug, Clone)]
pub struct LocalPeer {
    pub cred: PeerCred,
    pub arrival: Arrival,
}

impl LocalPeer {
    /// The connection `request` came on (tonic put it in the extensions).
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&LocalPeer> {
        request.extensions().get::<LocalPeer>()
    }
}

/// Set on a connection once it made a call or its app said `Hello`; from then
/// on the hello deadline no longer applies to it.
#[derive(Debug, Clone, Default)]
pub struct Arrival(Arc<AtomicBool>);

impl Arrival {
    /// Marks the connection `request` came on (its [`LocalPeer`] is in the
    /// request's extensions, put there by tonic from [`Connected`]).
    pub fn mark<T>(request: &tonic::Request<T>) {
        if let Some(peer) = LocalPeer::of(request) {
            peer.arrival.set();
        }
    }

    pub fn set(&self) {
        // Set by the request's task, read by the connection's: Release/Acquire
        // so the connection sees it as soon as the request was handled.
        self.0.store(true, Ordering::Release);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The bounds of the local socket's connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub hello_timeout: Duration,
}

/// Accepts connections for the API server: over the cap a new connection is
/// closed at once; accept errors are logged (rate-limited) and retried after
/// a pause. Never yields an error, so the server never stops on one.
pub fn incoming(
    listener: UnixListener,
    limits: Limits,
) -> impl Stream<Item = Result<LocalConn, Infallible>> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    futures::stream::unfold(listener, move |listener| {
        let permits = permits.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok((io, _)) => match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            // Without credentials the access rules cannot be
                            // applied: such a connection is not served.
                            let cred = match PeerCred::of(&io) {
                                Ok(cred) => cred,
                                Err(e) => {
                                    warn_limited!(NO_CREDENTIALS, error = %e,
                                        "closed a local connection whose peer credentials cannot be read");
                                    continue;
                                }
                            };
                            let conn = LocalConn::new(io, cred, permit, limits.hello_timeout);
                            return Some((Ok(conn), listener));
                        }
                        Err(_) => {
                            warn_limited!(
                                REFUSED,
                                max_connections = limits.max_connections,
                                "local socket at apps.max_connections; closed a new connection"
                            );
                            refuse(io, limits.max_connections);
                        }
                    },
                    Err(e) => {
                        warn_limited!(ACCEPT_FAILED, error = %e, "cannot accept on the local socket");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        }
    })
}

/// Closes a connection past the cap at once, first telling its client why in
/// an HTTP/2 GOAWAY (ENHANCE_YOUR_CALM, the reason as its text) if the socket
/// takes it without waiting. Best effort: a gRPC client shows that text when
/// it reads the GOAWAY before its own writes fail on the closed socket.
fn refuse(io: UnixStream, max_connections: usize) {
    let reason = format!(
        "lymphd has {} open, its limit (apps.max_connections)",
        crate::plural::count(max_connections as u64, "connection", "connections")
    );
    let _ = io.try_write(&goaway(reason.as_bytes()));
}

/// An empty SETTINGS frame (the server's preface) then a GOAWAY frame with
/// no stream processed, error ENHANCE_YOUR_CALM and `debug` as its text.
fn goaway(debug: &[u8]) -> Vec<u8> {
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const ENHANCE_YOUR_CALM: u32 = 0xb;
    let header = |length: usize, kind: u8| {
        let length = u32::try_from(length).unwrap_or(0).to_be_bytes();
        // 24-bit length, type, flags 0, stream 0.
        [length[1], length[2], length[3], kind, 0, 0, 0, 0, 0]
    };
    let mut bytes = Vec::with_capacity(9 + 9 + 8 + debug.len());
    bytes.extend_from_slice(&header(0, SETTINGS));
    bytes.extend_from_slice(&header(8 + debug.len(), GOAWAY));
    bytes.extend_from_slice(&0u32.to_be_bytes());
    bytes.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
    bytes.extend_from_slice(debug);
    bytes
}

/// One accepted connection: the socket, its slot under the cap (freed when
/// the server drops the connection) and its hello deadline. Reads and writes
/// fail once the deadline passes with no [`Arrival`], which makes the server
/// drop the connection.
pub struct LocalConn {
    io: UnixStream,
    peer: LocalPeer,
    /// Until the connection's arrival; `None` after it.
    deadline: Option<Pin<Box<Sleep>>>,
    expired: bool,
    _slot: OwnedSemaphorePermit,
}

impl LocalConn {
    fn new(
        io: UnixStream,
        cred: PeerCred,
        slot: OwnedSemaphorePermit,
        hello_timeout: Duration,
    ) -> LocalConn {
        LocalConn {
            io,
            peer: LocalPeer {
                cred,
                arrival: Arrival::default(),
            },
            deadline: Some(Box::pin(tokio::time::sleep(hello_timeout))),
            expired: false,
            _slot: slot,
        }
    }

    /// An error once the hello deadline passed with no arrival. Polling the
    /// timer here registers the connection's task to wake at the deadline,
    /// so a connection that sends nothing at all is closed then too.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = self.deadline.as_mut() else {
            return Ok(());
        };
        if self.peer.arrival.is_set() {
            self.deadline = None;
            return Ok(());
        }
        if deadline.as_mut().poll(cx).is_pending() {
            return Ok(());
        }
        if !self.expired {
            self.expired = true;
            warn_limited!(
                NO_HELLO,
                "closed a local connection that made no call and sent no Hello within apps.hello_timeout"
            );
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no call and no Hello within apps.hello_timeout",
        ))
    }
}

impl Connected for LocalConn {
    type ConnectInfo = LocalPeer;

    fn connect_info(&self) -> LocalPeer {
        self.peer.clone()
    }
}

impl AsyncRead for LocalConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_deadline(cx)?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for LocalConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_deadline(cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_deadline(cx)?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::io::AsyncReadExt;

    fn listener(dir: &tempfile::TempDir) -> (UnixListener, std::path::PathBuf) {
        let path = dir.path().join("s.sock");
        (UnixListener::bind(&path).expect("bind"), path)
    }

    #[tokio::test]
    async fn past_the_cap_new_connections_are_closed_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (listener, path) = listener(&dir);
        let limits = Limits {
            max_connections: 2,
            hello_timeout: Duration::from_secs(60),
        };
        let accepted = incoming(listener, limits);
        tokio::pin!(accepted);
        let mut clients = Vec::new();
        let mut held = Vec::new();
        for _ in 0..2 {
            clients.push(UnixStream::connect(&path).await.expect("connect"));
            held.push(accepted.next().await.expect("accepted"));
        }
        let mut third = UnixStream::connect(&path).await.expect("connect");
        // The stream keeps accepting (and closing) while the cap is full.
        let next = tokio::time::timeout(Duration::from_millis(200), accepted.next()).await;
        assert!(
            next.is_err(),
            "nothing past the cap is handed to the server"
        );
        let mut told = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut told)).await;
        assert!(matches!(read, Ok(Ok(_))), "closed: {read:?}");
        let reason = String::from_utf8_lossy(&told);
        assert!(
            reason.contains("(apps.max_connections)"),
            "told why: {reason}"
        );
        // A slot freed is a slot for the next connection.
        held.pop();
        let _fourth = UnixStream::connect(&path).await.expect("connect");
        let next = tokio::time::timeout(Duration::from_secs(5), accepted.next()).await;
        assert!(matches!(next, Ok(Some(Ok(_)))));
    }

    #[tokio::test]
    async fn each_connection_carries_its_peers_credentials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (listener, path) = listener(&dir);
        let limits = Limits {
            max_connections: 2,
            hello_timeout: Duration::from_secs(60),
        };
        let accepted = incoming(listener, limits);
        tokio::pin!(accepted);
        let _client = UnixStream::connect(&path).await.expect("connect");
        let Some(Ok(conn)) = accepted.next().await else {
            panic!("accepted");
        };
        let cred = conn.connect_info().cred;
        assert_eq!(cred.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(cred.gid, nix::unistd::getegid().as_raw());
        assert_eq!(cred.pid, Some(std::process::id()), "this process connected");
    }

    #[test]
    fn the_goaway_is_a_settings_then_a_goaway_frame() {
        let bytes = goaway(b"why");
        assert_eq!(&bytes[..9], &[0, 0, 0, 4, 0, 0, 0, 0, 0], "empty SETTINGS");
        assert_eq!(
            &bytes[9..18],
            &[0, 0, 11, 7, 0, 0, 0, 0, 0],
            "GOAWAY of 11 bytes"
        );
        assert_eq!(&bytes[18..26], &[0, 0, 0, 0, 0, 0, 0, 0xb]);
        assert_eq!(&bytes[26..], b"why");
    }

    #[tokio::test]
    async fn the_deadline_closes_until_arrival_and_never_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (listener, path) = listener(&dir);
        let limits = Limits {
            max_connections: 8,
            hello_timeout: Duration::from_millis(100),
        };
        let accepted = incoming(listener, limits);
        tokio::pin!(accepted);
        let _silent_client = UnixStream::connect(&path).await.expect("connect");
        let Some(Ok(mut silent)) = accepted.next().await else {
            panic!("accepted");
        };
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
        let err = read
            .expect("fails within the deadline")
            .expect_err("timed out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let _greeted_client = UnixStream::connect(&path).await.expect("connect");
        let Some(Ok(mut greeted)) = accepted.next().await else {
            panic!("accepted");
        };
        greeted.connect_info().arrival.set();
        let read = tokio::time::timeout(Duration::from_millis(400), greeted.read(&mut buf)).await;
        assert!(
            read.is_err(),
            "an arrived connection is not timed out: {read:?}"
        );
    }
}
