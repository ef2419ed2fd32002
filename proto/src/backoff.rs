//! The one retry backoff of the workspace: a delay that doubles from a first
//! value up to a cap, optionally jittered, and starts over on `reset`. Pure
//! arithmetic: it never sleeps and reads no clock.
//!
//! Each user keeps its own parameters next to the code that retries (the
//! ZooKeeper and RabbitMQ reconnects in `lymphd`, `lymphctl node`'s restarts,
//! the Rust SDK's reattach).

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// Doubling from `first` to `max`; with jitter `j`, each delay is scaled by a
/// random factor in `[1 - j, 1 + j)` (the doubling itself is not jittered).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    jitter: f64,
    next: Duration,
}

impl Backoff {
    /// `first`, `2 * first`, `4 * first` ... then `max` again and again.
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            jitter: 0.0,
            next: first,
        }
    }

    /// The same, each delay scaled by a random factor in `[1 - fraction, 1 +
    /// fraction)`; `fraction` is clamped to `0..=1`.
    pub const fn with_jitter(self, fraction: f64) -> Backoff {
        Backoff {
            jitter: fraction.clamp(0.0, 1.0),
            ..self
        }
    }

    /// The delay to wait now (jittered when asked); the next one doubles, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let unit = if self.jitter > 0.0 {
            random_unit()
        } else {
            0.5
        };
        self.next_delay_with(unit)
    }

    /// `next_delay` with the jitter's random draw given: `unit` in `[0, 1)`
    /// (0 gives the shortest delay, 0.5 the unjittered one). For tests.
    pub fn next_delay_with(&mut self, unit: f64) -> Duration {
        let base = self.next;
        self.next = base.saturating_mul(2).min(self.max);
        if self.jitter > 0.0 {
            let factor = 1.0 - self.jitter + 2.0 * self.jitter * unit.clamp(0.0, 1.0);
            // Saturates (a jittered cap near `Duration::MAX`) instead of panicking.
            Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(Duration::MAX)
        } else {
            base
        }
    }

    /// Starts over at the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A number in `[0, 1)`, different on every call: the standard library's
/// randomly keyed hasher (each `RandomState` is keyed differently) is random
/// enough to spread retries apart, and needs no dependency.
fn random_unit() -> f64 {
    let bits = RandomState::new().hash_one(0u8) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let delays: Vec<Duration> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(delays, ms(&[200, 400, 800, 1600, 3200, 5000, 5000]));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(200));
        assert_eq!(b.next_delay(), Duration::from_millis(400));
    }

    #[test]
    fn a_cap_below_a_doubling_is_reached_exactly() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let secs: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn huge_delays_saturate_instead_of_overflowing() {
        let mut b = Backoff::new(Duration::MAX / 2 + Duration::from_secs(1), Duration::MAX);
        b.next_delay();
        assert_eq!(b.next_delay(), Duration::MAX);
    }

    #[test]
    fn jitter_stays_within_its_fraction_of_the_unjittered_delay() {
        let mut low =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).with_jitter(0.2);
        let mut high = low.clone();
        let mut mid = low.clone();
        // Float rounding: within a microsecond.
        let near = |a: Duration, b: Duration| a.abs_diff(b) <= Duration::from_micros(1);
        for base in [100u64, 200, 400, 800, 1600, 3200, 5000, 5000] {
            let base = Duration::from_millis(base);
            let (l, m) = (low.next_delay_with(0.0), mid.next_delay_with(0.5));
            assert!(near(l, base.mul_f64(0.8)), "{l:?} for {base:?}");
            assert!(near(m, base), "{m:?} for {base:?}");
            let top = high.next_delay_with(0.999_999);
            assert!(
                top < base.mul_f64(1.2) && top > base.mul_f64(1.19),
                "{top:?}"
            );
        }
    }

    #[test]
    fn random_jitter_varies_and_stays_in_bounds() {
        let seen: Vec<Duration> = (0..50)
            .map(|_| {
                let mut b =
                    Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).with_jitter(0.2);
                b.next_delay()
            })
            .collect();
        assert!(
            seen.iter()
                .all(|d| *d >= Duration::from_millis(800) && *d < Duration::from_millis(1200)),
            "{seen:?}"
        );
        let first = seen[0];
        assert!(
            seen.iter().any(|d| *d != first),
            "50 jittered delays all equal: {first:?}"
        );
    }

    #[test]
    fn a_jittered_cap_near_the_largest_duration_saturates() {
        let mut b = Backoff::new(Duration::MAX, Duration::MAX).with_jitter(0.5);
        assert_eq!(b.next_delay_with(0.99), Duration::MAX);
    }

    #[test]
    fn jitter_is_clamped_to_at_most_the_whole_delay() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).with_jitter(3.0);
        assert_eq!(b.next_delay_with(0.0), Duration::ZERO);
    }
}
