//! The load generator's tally: latencies, errors by kind, the printed summary.
//! Pure: no clocks, no IO.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use lymphd::stats::percentile;

#[derive(Debug, Default)]
pub struct Summary {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

impl Summary {
    /// One finished call: its latency, and its error kind if it failed.
    pub fn record(&mut self, latency: Duration, error: Option<String>) {
        self.latencies.push(latency);
        if let Some(kind) = error {
            *self.errors.entry(kind).or_default() += 1;
        }
    }

    pub fn errors(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Two lines:
    /// `N requests, C concurrent: R requests/s; errors: K (kind: n, ...)` and
    /// `latency ms: min A .. p50 B .. p90 C .. p99 D .. max E`.
    pub fn render(&self, concurrency: u32, elapsed: Duration) -> String {
        let count = self.latencies.len();
        let rate = count as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
        let mut out = format!(
            "{}, {concurrency} concurrent: {rate:.1} requests/s; errors: {}",
            crate::render::count(count as u64, "request", "requests"),
            self.errors()
        );
        if !self.errors.is_empty() {
            let kinds: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            let _ = write!(out, " ({})", kinds.join(", "));
        }
        out.push('\n');
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let ms = |d: Option<Duration>| {
            d.map_or_else(
                || "-".to_owned(),
                |d| format!("{:.3}", d.as_secs_f64() * 1e3),
            )
        };
        let _ = writeln!(
            out,
            "latency ms: min {} .. p50 {} .. p90 {} .. p99 {} .. max {}",
            ms(sorted.first().copied()),
            ms(percentile(&sorted, 50.0)),
            ms(percentile(&sorted, 90.0)),
            ms(percentile(&sorted, 99.0)),
            ms(sorted.last().copied()),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_errors_by_kind() {
        let mut summary = Summary::default();
        for v in [1, 2, 3, 4] {
            summary.record(Duration::from_millis(v), None);
        }
        summary.record(Duration::from_millis(5), Some("overloaded".to_owned()));
        summary.record(
            Duration::from_millis(6),
            Some("deadline exceeded".to_owned()),
        );
        summary.record(Duration::from_millis(7), Some("overloaded".to_owned()));
        let text = summary.render(4, Duration::from_secs(1));
        assert_eq!(
            text,
            "7 requests, 4 concurrent: 7.0 requests/s; errors: 3 (deadline exceeded: 1, overloaded: 2)\n\
             latency ms: min 1.000 .. p50 4.000 .. p90 7.000 .. p99 7.000 .. max 7.000\n"
        );
    }

    #[test]
    fn one_request_is_singular() {
        let mut summary = Summary::default();
        summary.record(Duration::from_millis(2), None);
        let text = summary.render(1, Duration::from_secs(1));
        assert!(
            text.starts_with("1 request, 1 concurrent: 1.0 requests/s; errors: 0\n"),
            "{text}"
        );
    }
}
