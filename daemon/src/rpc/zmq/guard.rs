//! A public ZeroMQ port served by the zeromq crate (the log ports): a TCP listener that
//! forwards each connection to the real socket (bound on a private Unix
//! socket) while reading the ZMTP frame headers, and cuts any connection
//! announcing a frame or message beyond the limits. zeromq 0.7 reserves memory
//! for a frame's announced size before its bytes arrive (a 1 TB announcement
//! aborts the process), so this check must run before the crate sees the bytes.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::rpc::frame::Limits;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// One line per interval about guarded connections cut for breaking the limits.
static CUT: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// Largest ZMTP command accepted (READY with its properties is ~100 bytes).
const MAX_COMMAND_BYTES: u64 = 64 * 1024;
/// Bytes read per forward step, at most.
const CHUNK: usize = 64 * 1024;

/// Whether a connection from `ip` may stay, `allowed` being the networks of
/// `rpc.allowed_peers` (empty: any). IPv4-mapped IPv6 addresses (a port bound
/// on `::`) count as their IPv4 address.
pub(crate) fn is_allowed(allowed: &[ipnet::IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    allowed.is_empty() || allowed.iter().any(|net| net.contains(&ip))
}

/// Whether a new connection from `from` on a public port (the RPC port, a
/// log port) may stay, checked in this order: an address in `allowed`, a
/// slot under the port's cap (`take_slot`, `cap` naming the setting) and a
/// descriptor of the public ports' budget. A refusal is handed to `refused`
/// with its reason (the caller warns, rate-limited); the connection then
/// closes as it drops. Returns what the connection holds while open.
pub(crate) fn admit<S>(
    from: SocketAddr,
    allowed: &[ipnet::IpNet],
    take_slot: impl FnOnce() -> Option<S>,
    cap: &str,
    refused: impl Fn(&str),
) -> Option<(S, OwnedSemaphorePermit)> {
    if !is_allowed(allowed, from.ip()) {
        refused("address not in rpc.allowed_peers");
        return None;
    }
    let Some(slot) = take_slot() else {
        refused(&format!("{cap} reached"));
        return None;
    };
    let Some(fd) = crate::fds::budget().try_take() else {
        refused("no file descriptor left for the public ports (runtime.fd_reserve)");
        return None;
    };
    Some((slot, fd))
}

/// A private directory (mode 0700) for the receive socket's Unix path.
pub(crate) fn private_socket_path() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("lymphd-rpc-{}", uuid::Uuid::new_v4().simple()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir.join("recv.sock"))
}

/// Removes the private directory of `socket_path`.
pub(crate) fn remove_private_socket(socket_path: &Path) {
    if let Some(dir) = socket_path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// What a guarded connection needs: the limits and when to stop.
pub(crate) struct Guard {
    pub limits: Limits,
    /// The most a connection may send in all (its greeting included): a log
    /// subscriber sends its handshake and a few subscriptions, and each
    /// subscription is kept by the socket, so more is cut.
    pub max_inbound_bytes: u64,
    /// How long a new connection may take to send its ZMTP greeting.
    pub greeting_timeout: Duration,
    pub cancel: CancellationToken,
}

/// Forwards one accepted connection to `inner` in a task of its own; `held`
/// (its permits) is dropped when the connection ends.
pub(crate) fn spawn_forward(
    guard: &Arc<Guard>,
    stream: TcpStream,
    from: std::net::SocketAddr,
    inner: &Path,
    held: impl Send + 'static,
) {
    let _ = stream.set_nodelay(true);
    let (guard, inner) = (guard.clone(), inner.to_path_buf());
    tokio::spawn(async move {
        let _held = held;
        if let Err(reason) = forward(&guard, stream, &inner).await {
            warn_limited!(CUT, %from, %reason, "zeromq connection cut");
        }
    });
}

/// Pumps one connection both ways; `Err` when the peer broke the limits.
async fn forward(shared: &Guard, outer: TcpStream, inner: &Path) -> Result<(), String> {
    let Ok(inner) = UnixStream::connect(inner).await else {
        // The transport is closing.
        return Ok(());
    };
    let (mut outer_read, mut outer_write) = outer.into_split();
    let (mut inner_read, mut inner_write) = inner.into_split();
    let mut scanner = Scanner::new(shared.limits);
    // Ok(()) when the connection ended, Err with the broken limit otherwise.
    let inbound = async {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        let greeting_by = tokio::time::Instant::now() + shared.greeting_timeout;
        loop {
            let read = outer_read.read(&mut buf);
            // One timer per connection, until its greeting is through.
            let read = if scanner.in_greeting() {
                tokio::time::timeout_at(greeting_by, read)
                    .await
                    .map_err(|_| "no ZMTP greeting in time".to_owned())?
            } else {
                read.await
            };
            let n = match read {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => n,
            };
            total += n as u64;
            if total > shared.max_inbound_bytes {
                return Err(format!(
                    "sent over {} bytes in all, more than this port takes",
                    shared.max_inbound_bytes
                ));
            }
            scanner.feed(&buf[..n])?;
            if inner_write.write_all(&buf[..n]).await.is_err() {
                return Ok(());
            }
        }
    };
    let outbound = async {
        let _ = tokio::io::copy(&mut inner_read, &mut outer_write).await;
        Ok::<(), String>(())
    };
    // Whichever direction ends first ends the connection (dropping both halves).
    tokio::select! {
        result = inbound => result,
        _ = outbound => Ok(()),
        _ = shared.cancel.cancelled() => Ok(()),
    }
}

/// Follows ZMTP 3 framing over a byte stream without buffering it.
#[derive(Debug)]
pub(super) struct Scanner {
    limits: Limits,
    state: State,
    message_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Greeting(usize),
    Flags,
    Length { flags: u8, have: usize, value: u64 },
    Body { remaining: u64 },
}

impl Scanner {
    pub fn new(limits: Limits) -> Scanner {
        Scanner {
            limits,
            state: State::Greeting(64),
            message_bytes: 0,
        }
    }

    /// Whether the peer's greeting is still under way.
    pub fn in_greeting(&self) -> bool {
        matches!(self.state, State::Greeting(_))
    }

    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            match self.state {
                State::Greeting(remaining) => {
                    let take = remaining.min(data.len());
                    data = &data[take..];
                    self.state = if take == remaining {
                        State::Flags
                    } else {
                        State::Greeting(remaining - take)
                    };
                }
                State::Flags => {
                    let flags = data[0];
                    data = &data[1..];
                    if flags & 0xf8 != 0 {
                        return Err(format!("bad zmtp frame flags {flags:#04x}"));
                    }
                    self.state = State::Length {
                        flags,
                        have: 0,
                        value: 0,
                    };
                }
                State::Length { flags, have, value } => {
                    let width = if flags & 0x02 != 0 { 8 } else { 1 };
                    let value = (value << 8) | u64::from(data[0]);
                    data = &data[1..];
                    self.state = if have + 1 < width {
                        State::Length {
                            flags,
                            have: have + 1,
                            value,
                        }
                    } else {
                        self.check(flags, value)?;
                        State::Body { remaining: value }
                    };
                    if let State::Body { remaining: 0 } = self.state {
                        self.state = State::Flags;
                    }
                }
                State::Body { remaining } => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    data = &data[take..];
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::Flags
                    } else {
                        State::Body { remaining: left }
                    };
                }
            }
        }
        Ok(())
    }

    fn check(&mut self, flags: u8, len: u64) -> Result<(), String> {
        let (command, more) = (flags & 0x04 != 0, flags & 0x01 != 0);
        check_frame(&self.limits, command, len, self.message_bytes)?;
        if !command {
            self.message_bytes = if more { self.message_bytes + len } else { 0 };
        }
        Ok(())
    }
}

/// Whether a ZMTP frame of `len` bytes announced by its header is within the
/// limits, `message_bytes` being the size of its message's earlier frames.
pub(super) fn check_frame(
    limits: &Limits,
    command: bool,
    len: u64,
    message_bytes: u64,
) -> Result<(), String> {
    if command {
        return if len > MAX_COMMAND_BYTES {
            Err(format!("zmtp command of {len} bytes is over the limit"))
        } else {
            Ok(())
        };
    }
    let frame_limit = limits.max_frame_bytes as u64;
    if len > frame_limit {
        return Err(format!(
            "frame of {len} bytes is over the limit of {frame_limit}"
        ));
    }
    let message_limit = limits.max_message_bytes as u64;
    let message = message_bytes.saturating_add(len);
    if message > message_limit {
        return Err(format!(
            "message of {message} bytes is over the limit of {message_limit}"
        ));
    }
    Ok(())
}
