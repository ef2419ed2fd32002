//! Logs in tests: the process's `tracing` subscriber writes to the test
//! harness's captured output (shown only for a failing test, or with
//! `--nocapture`), filtered by `RUST_LOG` (default `info`), instead of the
//! service default of straight to stderr.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the test subscriber, unless the process has one already. The
/// harness calls it when a [`TestDaemon`](super::TestDaemon) starts; call it
/// first in tests that log before that. Records are also queued for the
/// daemon (`lymphctl tail`), as a service's own set-up does.
///
/// ```
/// lymph::testing::init_logging();
/// tracing::info!("shown only if this test fails, or with --nocapture");
/// ```
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let captured = tracing_subscriber::fmt::layer().with_test_writer();
    let _already_set = tracing_subscriber::registry()
        .with(filter)
        .with(captured)
        .with(crate::logging::layer())
        .try_init();
}
