//! A consumer's health as its backend sees it, for `Status`: consuming, or
//! retrying to attach (why, how many attempts, when the next one is), and
//! the deliveries it refused without handing them over. Written by the
//! backend's consumer task, read by the status handler; no IO.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConsumerState {
    /// Deliveries flow.
    #[default]
    Consuming,
    /// Nothing flows: attaching failed `attempts` times in a row (the last
    /// time for `error`); the backend tries again at `next_attempt`.
    Retrying {
        error: String,
        attempts: u32,
        next_attempt: Instant,
    },
}

/// Why a delivery was refused (rejected without requeue, never handed to
/// the consumer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its body is larger than what may be handed to an app.
    TooLarge,
    /// It could not be decoded as an event.
    Malformed,
}

#[derive(Debug, Default)]
pub struct ConsumerHealth {
    state: Mutex<ConsumerState>,
    too_large: AtomicU64,
    malformed: AtomicU64,
}

impl ConsumerHealth {
    pub fn state(&self) -> ConsumerState {
        self.lock().clone()
    }

    pub fn set(&self, state: ConsumerState) {
        *self.lock() = state;
    }

    pub fn refused(&self, why: Refusal) {
        let counter = match why {
            Refusal::TooLarge => &self.too_large,
            Refusal::Malformed => &self.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Deliveries refused so far for `why`.
    pub fn refused_count(&self, why: Refusal) -> u64 {
        match why {
            Refusal::TooLarge => self.too_large.load(Ordering::Relaxed),
            Refusal::Malformed => self.malformed.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConsumerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
