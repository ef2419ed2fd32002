//! The report as text: a header with the placement, one markdown table of
//! every path and depth with ratios to the floor and to lymph 0.15, the
//! memory facts and the checked targets.

use std::fmt::Write as _;

use crate::measure::Figures;
use crate::report::{Outcome, Report, Row};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lymphd benchmark: {} B bodies, each figure the median of {} runs of {:.1} s; \
         placement: {} ({} CPUs online); ZooKeeper and RabbitMQ are system services, unpinned\n",
        report.body_bytes,
        report.repeats,
        report.secs_per_figure,
        report.placement,
        report.cpus_online
    );
    out.push_str(
        "| path | in flight | req/s | p50 µs | p99 µs | daemon CPU ms / 1k | vs floor: rate, p50 | vs lymph 0.15: rate, p50 |\n\
         |---|---:|---:|---:|---:|---:|---|---|\n",
    );
    let mut shown_reasons: Vec<(String, String)> = Vec::new();
    for row in &report.rows {
        match &row.outcome {
            Outcome::Measured(f) => out.push_str(&measured_line(report, row, f)),
            Outcome::NotMeasured { why } => {
                // One line per path and reason, not one per depth.
                let seen = (row.key.clone(), why.clone());
                if !shown_reasons.contains(&seen) {
                    let _ = writeln!(out, "| {} | all | {why} | | | | | |", row.label);
                    shown_reasons.push(seen);
                }
            }
        }
    }
    out.push('\n');
    for fact in &report.facts {
        let value = fact
            .mb
            .map_or_else(|| "not measured".to_owned(), |mb| format!("{mb:.1} MB"));
        let _ = writeln!(out, "- {}: {value}", fact.label);
    }
    out.push_str("\nTargets:\n");
    for check in &report.checks {
        let verdict = match check.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not checked",
        };
        let _ = writeln!(out, "- [{verdict}] {}: {}", check.target, check.measured);
    }
    out
}

fn measured_line(report: &Report, row: &Row, f: &Figures) -> String {
    let errors = if f.errors > 0 {
        format!(" ({} errors)", f.errors)
    } else {
        String::new()
    };
    format!(
        "| {} | {} | {}{errors} | {:.0} | {:.0} | {} | {} | {} |\n",
        row.label,
        row.inflight,
        rate(f.rate),
        f.p50_us,
        f.p99_us,
        f.daemon_cpu_ms_per_1k
            .map_or_else(String::new, |ms| format!("{ms:.1}")),
        ratio(report, row.floor.as_deref(), row.inflight, f),
        ratio(report, row.lymph.as_deref(), row.inflight, f),
    )
}

/// `0.62×, 1.30×` against the baseline's figures at the same depth.
fn ratio(report: &Report, base: Option<&str>, inflight: usize, ours: &Figures) -> String {
    let Some(key) = base else {
        return String::new();
    };
    match report.figures(key, inflight) {
        Some(b) => format!(
            "{}, {} ({key})",
            times(ours.rate / b.rate),
            times(ours.p50_us / b.p50_us)
        ),
        None => format!("{key} not measured"),
    }
}

fn times(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.2}×")
    }
}

/// A rate as the tables show it: `135.0k`, `940`.
pub fn rate(r: f64) -> String {
    if r >= 1000.0 {
        format!("{:.1}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}
