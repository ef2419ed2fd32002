//! A request's deadline: the instant it fails unanswered and the timeout it
//! came from. Built from a clock read the caller already made, so a
//! request's start path reads the clock once (a clock read is a measurable
//! part of a hop's CPU).

use std::time::Duration;

use tokio::time::Instant;

/// When a request fails unanswered: the instant, and the timeout it came
/// from (for the error's message; on a request sent on, its time left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: Instant,
    pub timeout: Duration,
}

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline::from(Instant::now(), timeout)
    }

    /// `timeout` from `now`, a clock read just made.
    pub fn from(now: Instant, timeout: Duration) -> Deadline {
        Deadline {
            at: now + timeout,
            timeout,
        }
    }

    /// The same instant, counted from `now`: what is left to send on.
    pub fn left_at(&self, now: Instant) -> Deadline {
        Deadline {
            at: self.at,
            timeout: self.at.saturating_duration_since(now),
        }
    }
}
