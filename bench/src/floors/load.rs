//! The floors' load: a window of `inflight` requests kept full on one
//! connection or stream (the next one sent as each reply arrives), as the
//! harness's closed loop keeps `inflight` calls going; bounded in time, in
//! count, and by how long a reply may be awaited. Prints `RESULT` lines.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lymphd::stats::percentile;

use super::opts::Opts;

/// Requests one measurement may make at most, whatever its duration (as the
/// harness's closed loop): a bound on the latencies kept.
const MAX_OPS: u64 = 5_000_000;
/// A reply that takes longer than this ends the floor with an error.
const STALL: Duration = Duration::from_secs(5);

/// One direction of a floor seen from the load generator: send request
/// `id`, receive the id of a reply.
pub trait Link {
    fn send(&mut self, id: u64) -> impl Future<Output = anyhow::Result<()>>;
    fn recv(&mut self) -> impl Future<Output = anyhow::Result<u64>>;
}

/// One measurement: the sorted latencies of its requests, and how long it took.
#[derive(Debug)]
pub struct Measured {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub fn percentile_us(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    }

    /// The line the harness parses (`bench/src/scenario/floor.rs`).
    pub fn result_line(&self, variant: &str, inflight: usize) -> String {
        format!(
            "RESULT variant={variant} inflight={inflight} n={} secs={:.3} rate={:.0} p50_us={:.1} p99_us={:.1}",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.percentile_us(50.0),
            self.percentile_us(99.0),
        )
    }
}

/// Keeps `inflight` requests outstanding on `link` for `duration`, then
/// waits for the last replies.
pub async fn window<L: Link>(
    link: &mut L,
    inflight: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let inflight = inflight.max(1);
    let started = Instant::now();
    let deadline = started + duration;
    let mut sent_at = vec![started; inflight];
    for (id, at) in (0u64..).zip(sent_at.iter_mut()) {
        *at = Instant::now();
        link.send(id).await?;
    }
    let mut latencies = Vec::new();
    let mut outstanding = inflight;
    while outstanding > 0 {
        let id = tokio::time::timeout(STALL, link.recv())
            .await
            .with_context(|| format!("no reply within {STALL:?}"))??;
        let Some(at) = usize::try_from(id).ok().and_then(|i| sent_at.get_mut(i)) else {
            bail!("a reply to request {id}, which was never sent");
        };
        let now = Instant::now();
        latencies.push(now - *at);
        if now < deadline && (latencies.len() as u64) < MAX_OPS {
            *at = now;
            link.send(id).await?;
        } else {
            outstanding -= 1;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Measured { latencies, elapsed })
}

/// Every level of `opts`: a warm-up, then `repeats` measurements, each
/// printed as a `RESULT` line of `variant`.
pub async fn run_levels<L: Link>(link: &mut L, variant: &str, opts: &Opts) -> anyhow::Result<()> {
    let secs = Duration::from_secs_f64(opts.secs);
    let warmup = Duration::from_secs_f64(opts.warmup);
    for &inflight in &opts.inflight {
        window(link, inflight, warmup).await?;
        for _ in 0..opts.repeats.max(1) {
            let measured = window(link, inflight, secs).await?;
            println!("{}", measured.result_line(variant, inflight));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link that answers every request at once, in order.
    struct Loopback(std::collections::VecDeque<u64>);

    impl Link for Loopback {
        async fn send(&mut self, id: u64) -> anyhow::Result<()> {
            self.0.push_back(id);
            Ok(())
        }
        async fn recv(&mut self) -> anyhow::Result<u64> {
            self.0.pop_front().ok_or_else(|| anyhow::anyhow!("empty"))
        }
    }

    #[tokio::test]
    async fn a_window_stops_by_itself_and_drains() -> anyhow::Result<()> {
        let mut link = Loopback(Default::default());
        let m = window(&mut link, 16, Duration::from_millis(20)).await?;
        assert!(m.latencies.len() >= 16);
        assert!(link.0.is_empty());
        let line = m.result_line("x", 16);
        assert!(line.starts_with("RESULT variant=x inflight=16 n="));
        Ok(())
    }
}
