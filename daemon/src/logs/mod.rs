//! Log streams for `lymphctl tail` (and lymph's own `tail`): the daemon's own
//! records and the records each attached app sends are published on one
//! ZeroMQ PUB port per source, in lymph's three-frame format
//! `[level, log_endpoint, line]`; the port is registered as the `log_endpoint`
//! of the source's instances. `line` formats, `port` publishes, `level`
//! changes the daemon's own filter at run time (`lymph.change_loglevel`).

pub mod level;
pub mod line;
#[cfg(feature = "zeromq")]
mod port;

use std::sync::RwLock;

use lymph_proto::tracelog::RecordLayer;
use lymph_proto::v1::LogRecord;
use tokio::sync::mpsc;

#[cfg(feature = "zeromq")]
pub use port::LogPort;

/// Records waiting to be published per port; past it, new ones are dropped
/// (and counted) rather than slowing down the app or the daemon.
pub const PORT_QUEUE: usize = 4096;

/// Whether this build can publish (log ports need the `zeromq` feature).
pub const AVAILABLE: bool = cfg!(feature = "zeromq");

/// Where a source's records go: the queue of its log port.
#[derive(Debug, Clone)]
pub struct LogSink {
    tx: mpsc::Sender<LogRecord>,
}

impl LogSink {
    pub fn new(tx: mpsc::Sender<LogRecord>) -> LogSink {
        LogSink { tx }
    }

    /// Queues a record; drops it when the queue is full or closed.
    pub fn publish(&self, record: LogRecord) {
        let _dropped_when_full = self.tx.try_send(record);
    }
}

/// The sink of the daemon's own records, set while a daemon serves.
static OWN: RwLock<Option<LogSink>> = RwLock::new(None);

/// Sends the daemon's own records (from `own_layer`) to `sink`; `None` stops.
pub fn set_own_sink(sink: Option<LogSink>) {
    *OWN.write().unwrap_or_else(|p| p.into_inner()) = sink;
}

/// The `tracing` layer that publishes the daemon's own records; install it
/// beside the stderr layer (the `lymphd` binary does).
pub fn own_layer() -> RecordLayer<impl Fn(LogRecord) + Send + Sync + 'static> {
    RecordLayer::new(|mut record| {
        let own = OWN.read().unwrap_or_else(|p| p.into_inner());
        if let Some(sink) = own.as_ref() {
            // The daemon's own lines, as on stderr: what a client sent in a
            // name or reason never makes a line of its own.
            record.message = crate::log_fields::escaped(&record.message);
            sink.publish(record);
        }
    })
}

/// Who may subscribe to a log port, and how many at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBounds {
    /// Networks whose connections are accepted (`rpc.allowed_peers`); empty: any.
    pub allowed_peers: Vec<ipnet::IpNet>,
    /// Subscribers at once (`log.max_subscribers`); past it new ones are closed.
    pub max_subscribers: usize,
}

impl PortBounds {
    pub fn from_config(config: &crate::Config) -> PortBounds {
        PortBounds {
            allowed_peers: config.rpc.allowed_peers.clone(),
            max_subscribers: config.log.max_subscribers,
        }
    }
}

/// The log port of one source (`whose`: "the daemon", "app greeting"), when
/// `log.publish` is on and this build can publish; a port that cannot be
/// bound is logged and left out: logs must not stop a daemon or an app.
pub async fn open_port(config: &crate::Config, whose: &str) -> Option<PortHandle> {
    if !config.log.publish || !AVAILABLE {
        return None;
    }
    match PortHandle::open(&config.rpc.ip, PortBounds::from_config(config)).await {
        Ok(port) => Some(port),
        Err(e) => {
            tracing::warn!(error = %e, "no log port for {whose}; its records are not published");
            None
        }
    }
}

/// A bound log port: its endpoint and its sink. Closing happens on drop.
#[derive(Debug)]
pub struct PortHandle {
    pub endpoint: String,
    pub sink: LogSink,
    #[cfg(feature = "zeromq")]
    _port: LogPort,
}

impl PortHandle {
    /// Opens a port on `ip` (a free port chosen by the system), or says why not.
    #[cfg(feature = "zeromq")]
    pub async fn open(ip: &str, bounds: PortBounds) -> Result<PortHandle, String> {
        let (port, sink) = LogPort::open(ip, bounds).await?;
        Ok(PortHandle {
            endpoint: port.endpoint().to_owned(),
            sink,
            _port: port,
        })
    }

    /// Built without ZeroMQ: there is nothing to publish on.
    #[cfg(not(feature = "zeromq"))]
    pub async fn open(_ip: &str, _bounds: PortBounds) -> Result<PortHandle, String> {
        Err("lymphd was built without the zeromq feature".to_owned())
    }
}
