//! Rate-limited warnings for edges a hostile peer can reach: at most one line
//! per interval per kind of event, with the count of those left out, so a
//! flood of bad connections costs a few log lines, not one each.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One kind of warning's limiter; keep it in a `static`.
#[derive(Debug)]
pub struct WarnLimit {
    interval_ms: u64,
    /// Milliseconds since the process's epoch when the next line may be written.
    next_ms: AtomicU64,
    /// Events left out since the last line written.
    suppressed: AtomicU64,
}

impl WarnLimit {
    pub const fn new(interval: Duration) -> WarnLimit {
        WarnLimit {
            interval_ms: interval.as_millis() as u64,
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(left_out)` when a line may be written now (with how many were
    /// left out since the last one), else `None` and the event is counted.
    pub fn allow(&self) -> Option<u64> {
        let now = now_ms();
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + self.interval_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // +1 so the first call is never before a fresh limiter's `next_ms` of 0.
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Writes a `warn!` through `limit`, adding `left_out` (how many were not written).
#[macro_export]
macro_rules! warn_limited {
    ($limit:expr, $($arg:tt)+) => {
        if let Some(left_out) = $limit.allow() {
            ::tracing::warn!(left_out, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_a_count_of_the_rest() {
        let limit = WarnLimit::new(Duration::from_secs(3600));
        assert_eq!(limit.allow(), Some(0));
        for _ in 0..5 {
            assert_eq!(limit.allow(), None);
        }
        let fast = WarnLimit::new(Duration::ZERO);
        assert_eq!(fast.allow(), Some(0));
        assert_eq!(fast.allow(), Some(0), "a zero interval never holds back");
    }
}
