//! The restart delay of one supervised child: 1 s doubling to 30 s, back to
//! 1 s once the child stayed up 30 s. Pure arithmetic, no clock.

use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(30);
/// A child up at least this long counts as healthy: its next crash starts over.
const STABLE: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The delay before restarting a child that exited after `uptime`.
    pub fn after_exit(&mut self, uptime: Duration) -> Duration {
        if uptime >= STABLE {
            self.next = FIRST;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_thirty_seconds_and_resets_after_a_stable_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(100);
        let delays: Vec<u64> = (0..7).map(|_| b.after_exit(quick).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.after_exit(Duration::from_secs(30)).as_secs(), 1);
        assert_eq!(b.after_exit(quick).as_secs(), 2);
    }
}
