//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` (default `info`),
//! and every record that passes the filter also queued for the daemon (which
//! publishes it for `lymphctl tail`). Handlers run in a span carrying their
//! trace id, so each of their lines, on stderr and in `tail`, shows it.

use std::sync::{Mutex, OnceLock};

use lymph_proto::tracelog::RecordLayer;
use lymph_proto::v1::LogRecord;
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Records kept while no daemon is attached; past it, new ones are dropped.
const RECORD_QUEUE: usize = 1024;

type Records = (
    mpsc::Sender<LogRecord>,
    Mutex<Option<mpsc::Receiver<LogRecord>>>,
);

static RECORDS: OnceLock<Records> = OnceLock::new();

fn records() -> &'static Records {
    RECORDS.get_or_init(|| {
        let (tx, rx) = mpsc::channel(RECORD_QUEUE);
        (tx, Mutex::new(Some(rx)))
    })
}

/// Installs stderr output and the daemon layer, unless the program installed
/// a subscriber already (it can add `layer()` to its own).
pub(crate) fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _already_set = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(layer())
        .try_init();
}

/// The layer that sends records to the daemon; add it to a subscriber of
/// your own to have `lymphctl tail` show your service's logs.
pub fn layer() -> RecordLayer<impl Fn(LogRecord) + Send + Sync + 'static> {
    RecordLayer::new(|record| {
        // Full (no daemon for a while) or closed: the record is dropped.
        let _ = records().0.try_send(record);
    })
}

/// The queue of records, for the first service link (one per process).
pub(crate) fn take_records() -> Option<mpsc::Receiver<LogRecord>> {
    records().1.lock().unwrap_or_else(|p| p.into_inner()).take()
}
