//! Waiting for the signals that stop a service: SIGTERM and SIGINT.

use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

/// Completes on the first SIGTERM or SIGINT.
pub(crate) async fn terminated() {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "cannot listen for SIGTERM; stopping on ctrl-c only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("received SIGTERM, stopping"),
        _ = int.recv() => info!("received SIGINT, stopping"),
    }
}
