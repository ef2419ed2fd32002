//! One port's accept loop: a bounded number of HTTP/1 connections, each served
//! by hyper in its own task, closed gracefully when the port stops.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::Port;

/// Connections open at once per port; past it, accepting waits (the kernel's
/// backlog then holds new clients) instead of growing the daemon's memory.
const MAX_CONNECTIONS: usize = 1024;

/// Time a client has to send a request's headers; slow-loris clients are cut.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn run(listener: TcpListener, port: Arc<Port>, tasks: TaskTracker) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = port.stop.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = port.stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                debug!(port = port.port, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let port = port.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let stop = port.stop.clone();
            let service = service_fn(move |request| super::forward::handle(port.clone(), request));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    // Finish the request in flight, then close; idle ones close now.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                debug!(error = %e, "http connection ended with an error");
            }
        });
    }
    // Dropping the listener here frees the port.
}
