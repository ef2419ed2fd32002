//! The deadline sweep for outgoing calls: while any is in flight, every
//! `SWEEP` the ones past their deadline fail with `Timeout`; with none, it
//! sleeps until one starts.

use std::sync::Arc;
use std::time::Duration;

use super::peers::Shared;

/// How late past its deadline a call may fail, at most.
pub(super) const SWEEP: Duration = Duration::from_millis(10);

pub(super) async fn run(shared: Arc<Shared>) {
    loop {
        if !shared.has_pending() {
            tokio::select! {
                _ = shared.cancel.cancelled() => break,
                () = shared.sweep.notified() => continue,
            }
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            () = tokio::time::sleep(SWEEP) => {}
        }
        shared.expire(tokio::time::Instant::now());
    }
}
