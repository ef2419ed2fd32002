//! One port's accept loop: at most `web.max_connections` HTTP/1 connections,
//! each holding a permit of the process's descriptor budget and served by
//! hyper in its own task, closed gracefully when the port stops. A client past
//! either bound is accepted, answered 503 and closed at once: never left
//! waiting in the kernel's backlog, where it would time out unanswered.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::Port;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// The answer to a client past the bounds; `Connection: close`, it is the last.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 21\r\n\
retry-after: 1\r\n\
connection: close\r\n\
\r\n\
too many connections\n";

/// Refused connections read (and discard) what their client sent before
/// closing, at most this long and this much: closing a socket with unread
/// bytes resets it, and a reset can destroy the 503 before the client reads it.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// Refused connections lingering at once per port; past it one is closed at
/// once (a flood then sees resets, and costs nothing but the accept).
const MAX_LINGERING: usize = 64;

/// hyper's read buffer per connection, which bounds a request's head: past it
/// the client gets 431 (hyper checks between reads, so one read may take a
/// head to about twice this). hyper's default (~400 KiB) let each of the
/// `web.max_connections` clients hold that much in headers; 64 KiB is twice
/// what common proxies accept (nginx: 4 x 8 KiB).
const MAX_HEAD_BYTES: usize = 64 * 1024;

static ACCEPT_FAILED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static REFUSED: WarnLimit = WarnLimit::new(Duration::from_secs(10));

pub(super) async fn run(listener: TcpListener, port: Arc<Port>, tasks: TaskTracker) {
    let slots = Arc::new(Semaphore::new(port.limits.max_connections));
    let lingering = Arc::new(Semaphore::new(MAX_LINGERING));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = port.stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn_limited!(ACCEPT_FAILED, port = port.port, error = %e, "web accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn_limited!(REFUSED, port = port.port, %peer, reason = "web.max_connections", "web connection refused: 503");
            refuse(stream, &lingering, &tasks);
            continue;
        };
        let Some(fd) = crate::fds::budget().try_take() else {
            warn_limited!(REFUSED, port = port.port, %peer, reason = "descriptor budget", "web connection refused: 503");
            refuse(stream, &lingering, &tasks);
            continue;
        };
        tasks.spawn(serve(stream, port.clone(), [slot, fd]));
    }
    // Dropping the listener here frees the port.
}

/// Serves one connection with hyper until the client or the port closes it.
/// hyper's header timeout restarts after each response, so it also closes a
/// keep-alive connection idle between requests; the body timeout is in
/// `forward`.
async fn serve(stream: TcpStream, port: Arc<Port>, permits: [OwnedSemaphorePermit; 2]) {
    let _permits = permits;
    let stop = port.stop.clone();
    let header_timeout = port.limits.header_timeout;
    // A response must be taken at least as briskly as a body must be sent.
    let write_stall = port.limits.body_timeout;
    let service = service_fn(move |request| super::forward::handle(port.clone(), request));
    let bounds = super::http1::Bounds {
        header_timeout,
        max_head_bytes: MAX_HEAD_BYTES,
        write_stall,
    };
    if let Err(e) = super::http1::serve(stream, service, bounds, &stop).await {
        // Idle keep-alive connections end by the header timeout too: debug.
        debug!(error = %e, timeout = e.is_timeout(), "http connection ended with an error");
    }
}

/// Answers 503 and closes. The answer goes into a fresh socket's empty send
/// buffer, so `try_write` never has to wait; then, if few are lingering, the
/// client's request is drained in a task (bounded by `LINGER`, `LINGER_BYTES`).
fn refuse(stream: TcpStream, lingering: &Arc<Semaphore>, tasks: &TaskTracker) {
    if let Err(e) = stream.try_write(REFUSAL) {
        debug!(error = %e, "cannot write the 503 to a refused connection");
        return;
    }
    let Ok(permit) = lingering.clone().try_acquire_owned() else {
        return;
    };
    tasks.spawn(async move {
        let _permit = permit;
        let mut stream = stream;
        let drain = async {
            // FIN after the answer: the client reads it, then the end.
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut read = 0;
            while read < LINGER_BYTES {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => read += n,
                }
            }
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_whole_response() {
        let text = std::str::from_utf8(REFUSAL).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("retry-after: 1") && head.contains("connection: close"));
        let length = format!("content-length: {}", body.len());
        assert!(head.contains(&length), "{head}");
    }
}
