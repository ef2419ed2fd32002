//! The restart delay of one supervised child: 1 s doubling to 30 s, back to
//! 1 s once the child stayed up 30 s. Pure arithmetic, no clock.

use std::time::Duration;

use lymph_proto::backoff::Backoff;

/// A child up at least this long counts as healthy: its next crash starts over.
const STABLE: Duration = Duration::from_secs(30);

/// The shared backoff with `lymphctl node`'s parameters and its reset rule.
#[derive(Debug)]
pub struct RestartDelay {
    backoff: Backoff,
}

impl Default for RestartDelay {
    fn default() -> Self {
        RestartDelay {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
        }
    }
}

impl RestartDelay {
    /// The delay before restarting a child that exited after `uptime`.
    pub fn after_exit(&mut self, uptime: Duration) -> Duration {
        if uptime >= STABLE {
            self.backoff.reset();
        }
        self.backoff.next_delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_thirty_seconds_and_resets_after_a_stable_run() {
        let mut b = RestartDelay::default();
        let quick = Duration::from_millis(100);
        let delays: Vec<u64> = (0..7).map(|_| b.after_exit(quick).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.after_exit(Duration::from_secs(30)).as_secs(), 1);
        assert_eq!(b.after_exit(quick).as_secs(), 2);
    }
}
