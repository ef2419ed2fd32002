//! The loop run for each parser: generate, check under `catch_unwind`,
//! count, keep the first failure; and its report.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use lymphd::fuzz::Rng;

/// Inputs found valid and kept to mutate further, besides the seeds.
const POOL: usize = 512;
/// Inputs between two looks at the clock.
const CLOCK_EVERY: u64 = 256;

thread_local! {
    /// The message of the last panic, taken by the loop.
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics are expected failures here: their message is kept for the report
/// instead of printed as they happen.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        PANIC.with(|slot| *slot.borrow_mut() = Some(text));
    }));
}

pub struct Runner {
    pub inputs: u64,
    pub time: Duration,
    pub rng: Rng,
}

/// What one parser's run did.
pub struct Report {
    pub inputs: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub panics: u64,
    pub elapsed: Duration,
    /// The first failing input, dumped, and its panic.
    pub failure: Option<(String, String)>,
}

impl Runner {
    /// Runs `check` on inputs made by `generate` from a pool of the seeds
    /// and of inputs accepted so far.
    pub fn run<I: Clone>(
        mut self,
        seeds: Vec<I>,
        mut generate: impl FnMut(&mut Rng, &[I]) -> I,
        check: impl Fn(&I) -> Result<(), String>,
        dump: impl Fn(&I) -> String,
    ) -> Report {
        let fixed = seeds.len();
        let mut pool = seeds;
        let mut report = Report {
            inputs: 0,
            accepted: 0,
            rejected: 0,
            panics: 0,
            elapsed: Duration::ZERO,
            failure: None,
        };
        let started = Instant::now();
        while report.inputs < self.inputs {
            if report.inputs.is_multiple_of(CLOCK_EVERY) && started.elapsed() >= self.time {
                break;
            }
            let input = generate(&mut self.rng, &pool);
            report.inputs += 1;
            match catch_unwind(AssertUnwindSafe(|| check(&input))) {
                Ok(Ok(())) => {
                    report.accepted += 1;
                    // The seeds stay; found inputs take turns in the rest.
                    if pool.len() < fixed + POOL {
                        pool.push(input);
                    } else {
                        let at = fixed + self.rng.below(POOL);
                        pool[at] = input;
                    }
                }
                Ok(Err(_)) => report.rejected += 1,
                Err(_) => {
                    report.panics += 1;
                    let message = PANIC.with(|slot| slot.borrow_mut().take());
                    if report.failure.is_none() {
                        report.failure = Some((dump(&input), message.unwrap_or_default()));
                    }
                }
            }
        }
        report.elapsed = started.elapsed();
        report
    }
}

impl Report {
    pub fn print(&self, name: &str) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{name:<9} {:>9} inputs in {:>6.1} s {:>9.0}/s  accepted {:>8}  rejected {:>8}  panics {}",
            self.inputs,
            secs,
            self.inputs as f64 / secs,
            self.accepted,
            self.rejected,
            self.panics
        );
        if let Some((input, message)) = &self.failure {
            println!("  first failure: {message}\n  input: {input}");
        }
    }
}

/// `bytes` as hex, 32 bytes a line.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = format!("{} bytes", bytes.len());
    for (i, byte) in bytes.iter().enumerate() {
        if i % 32 == 0 {
            out.push_str("\n    ");
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}
