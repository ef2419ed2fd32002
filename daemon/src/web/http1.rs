//! One HTTP/1 connection served by hyper with the bounds every HTTP port of
//! the daemon keeps (the gateway's ports, `/metrics`): a time to send each
//! request head (also the keep-alive idle time), a cap on its size, a write
//! stall limit, and a graceful close when the port stops (the request in
//! flight finishes, an idle connection closes at once).

use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::WriteStall;

/// The bounds of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub header_timeout: Duration,
    /// hyper's read buffer, which bounds a request head (past it: 431).
    pub max_head_bytes: usize,
    /// How long the client may take nothing of a response.
    pub write_stall: Duration,
}

/// Serves `stream` with `service` until the client closes, a bound cuts it,
/// or `stop` (gracefully).
pub async fn serve<S, B>(
    stream: TcpStream,
    service: S,
    bounds: Bounds,
    stop: &CancellationToken,
) -> Result<(), hyper::Error>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = TokioIo::new(WriteStall::new(stream, bounds.write_stall));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .max_buf_size(bounds.max_head_bytes)
        .serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => served,
        () = stop.cancelled() => {
            // Finish the request in flight, then close; idle ones close now.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}
