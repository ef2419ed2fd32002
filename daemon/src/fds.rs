//! The file descriptors the public ports (RPC, log and HTTP ports) may hold
//! together: RLIMIT_NOFILE less `runtime.fd_reserve`, so the local socket,
//! ZooKeeper, RabbitMQ and outgoing connections keep working while those
//! ports are flooded. One budget per process; knows nothing of the ports.

use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The reserve when nothing configured one (tests, tools).
const DEFAULT_RESERVE: usize = 256;

/// Never fewer than this many descriptors for the ports, however low the limit.
const MIN_PORT_FDS: usize = 16;

static BUDGET: OnceLock<Budget> = OnceLock::new();

/// Permits for connections accepted on public ports: one held per open connection.
#[derive(Debug)]
pub struct Budget {
    permits: Arc<Semaphore>,
    total: usize,
    limit: u64,
}

impl Budget {
    fn new(limit: u64, reserve: usize) -> Budget {
        let limit_fds = usize::try_from(limit).unwrap_or(usize::MAX);
        let total = limit_fds.saturating_sub(reserve).max(MIN_PORT_FDS);
        Budget {
            permits: Arc::new(Semaphore::new(total.min(Semaphore::MAX_PERMITS))),
            total,
            limit,
        }
    }

    /// A permit for one more accepted connection, or `None` when the ports
    /// hold their whole share: the caller closes the connection at once.
    pub fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Descriptors the ports may hold together.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Descriptors the ports may still take.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// The process's open-file limit the budget was made from.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// Sets up the process's budget from its open-file limit, first raising the
/// soft limit to the hard one (the kernel's per-process ceiling that needs no
/// privilege). The first call wins; later calls return the same budget.
pub fn configure(reserve: usize) -> &'static Budget {
    BUDGET.get_or_init(|| Budget::new(raise_nofile(), reserve))
}

/// The process's budget (configured with the default reserve if nobody configured it).
pub fn budget() -> &'static Budget {
    configure(DEFAULT_RESERVE)
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the soft limit in force.
fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept_back() {
        let budget = Budget::new(2048, 256);
        assert_eq!(budget.total(), 1792);
        let held: Vec<_> = (0..1792).map_while(|_| budget.try_take()).collect();
        assert_eq!(held.len(), 1792);
        assert!(budget.try_take().is_none(), "past the share nothing more");
        drop(held);
        assert_eq!(budget.available(), 1792, "permits come back on close");
    }

    #[test]
    fn a_tiny_limit_still_leaves_the_ports_a_few() {
        assert_eq!(Budget::new(100, 256).total(), MIN_PORT_FDS);
    }
}
