//! The `/metrics` port (`metrics.listen`): `GET /metrics` answers the
//! exposition (`prom`); anything else 404 or 405. An edge like the others:
//! at most `metrics.max_connections` scrapers at once (past it a connection
//! is closed at once), each holding a descriptor of the public ports'
//! budget, with `metrics.timeout` to send its request and to take the
//! answer. A port that is taken is a warning, not a failed start.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::MetricsConfig;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// The exposition's media type (OpenMetrics text, which Prometheus reads).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A scraper's request head, at most (a scrape is one short line and a few headers).
const MAX_HEAD_BYTES: usize = 8 * 1024;

static REFUSED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static ACCEPT_FAILED: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// Binds `metrics.listen`; `None` when it is off, or taken (warned, naming it).
pub async fn bind(config: &MetricsConfig) -> Option<TcpListener> {
    let address = config.listen?;
    match TcpListener::bind(address).await {
        Ok(listener) => Some(listener),
        Err(error) => {
            warn!(%address, %error,
                "cannot listen for metrics scrapes (metrics.listen); serving without /metrics");
            None
        }
    }
}

/// Serves scrapes on `listener` until `stop`.
pub fn serve(
    listener: TcpListener,
    exporter: Arc<super::prom::Exporter>,
    config: &MetricsConfig,
    stop: CancellationToken,
    tasks: &TaskTracker,
) {
    if let Ok(address) = listener.local_addr() {
        info!(%address, "metrics at http://{address}/metrics");
    }
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let timeout = config.timeout;
    let spawner = tasks.clone();
    tasks.spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop.cancelled() => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn_limited!(ACCEPT_FAILED, %error, "metrics accept failed; pausing");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                warn_limited!(REFUSED, %peer, reason = "metrics.max_connections", "metrics connection refused");
                continue;
            };
            let Some(fd) = crate::fds::budget().try_take() else {
                warn_limited!(REFUSED, %peer, reason = "descriptor budget", "metrics connection refused");
                continue;
            };
            let (exporter, stop) = (exporter.clone(), stop.clone());
            spawner.spawn(connection(stream, exporter, timeout, stop, [slot, fd]));
        }
    });
}

/// Serves one scraper's connection until it closes, idles past `timeout`
/// between requests, or the daemon stops.
async fn connection(
    stream: TcpStream,
    exporter: Arc<super::prom::Exporter>,
    timeout: Duration,
    stop: CancellationToken,
    permits: [OwnedSemaphorePermit; 2],
) {
    let _permits = permits;
    let service = service_fn(move |request| {
        let exporter = exporter.clone();
        async move { Ok::<_, Infallible>(answer(&request, &exporter).await) }
    });
    let bounds = crate::web::http1::Bounds {
        header_timeout: timeout,
        max_head_bytes: MAX_HEAD_BYTES,
        write_stall: timeout,
    };
    if let Err(error) = crate::web::http1::serve(stream, service, bounds, &stop).await {
        debug!(%error, "metrics connection ended with an error");
    }
}

/// The answer to one request.
async fn answer<B>(
    request: &Request<B>,
    exporter: &super::prom::Exporter,
) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET /metrics\n");
    }
    match exporter.scrape().await {
        Ok(body) => Response::builder()
            .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n")),
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The address `listener` took (for `Status`: port 0 picks a free one).
pub fn address(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
