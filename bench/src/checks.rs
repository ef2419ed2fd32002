//! The targets, checked against a finished report: lymphd across
//! two daemons against the floor (app → sidecar → ZeroMQ → sidecar → app) and against real lymph 0.15,
//! RabbitMQ events against the bare lapin loop, idle memory.

use crate::report::{Check, Report};

/// Every target, in the order the issue lists them.
pub fn check_all(report: &Report) -> Vec<Check> {
    let mut checks = vec![
        rate_at_least(
            report,
            ("rpc.fleet", "floor.e2e"),
            64,
            0.70,
            "of the floor chain's",
        ),
        p50_at_most(
            report,
            ("rpc.fleet", "floor.e2e"),
            1,
            1.5,
            "the floor chain's",
        ),
        rate_at_least(
            report,
            ("rpc.fleet", "lymph.echo"),
            64,
            30.0,
            "real lymph's (plain echo)",
        ),
        p50_at_most(
            report,
            ("rpc.fleet", "lymph.echo"),
            1,
            0.2,
            "real lymph's (plain echo)",
        ),
    ];
    for inflight in levels_of(report, "events.amqp") {
        checks.push(rate_at_least(
            report,
            ("events.amqp", "events.lapin"),
            inflight,
            0.80,
            "of the bare lapin loop",
        ));
    }
    for (key, what) in [
        ("rss.idle.local", "embedded"),
        ("rss.idle.fleet", "fleet"),
        ("rss.idle.local.nolog", "embedded, log.publish: false"),
    ] {
        let measured = report.fact_mb(key);
        checks.push(Check {
            target: format!("idle daemon ({what}) under 20 MB resident"),
            measured: measured
                .map_or_else(|| "not measured".to_owned(), |mb| format!("{mb:.1} MB")),
            met: measured.map(|mb| mb < 20.0),
        });
    }
    checks
}

fn levels_of(report: &Report, key: &str) -> Vec<usize> {
    report
        .rows
        .iter()
        .filter(|r| r.key == key)
        .map(|r| r.inflight)
        .collect()
}

fn rate_at_least(
    report: &Report,
    (ours, base): (&str, &str),
    inflight: usize,
    factor: f64,
    what: &str,
) -> Check {
    let target = format!("{ours} at {inflight} in flight: throughput ≥ {factor}× {what}");
    match (
        report.figures(ours, inflight),
        report.figures(base, inflight),
    ) {
        (Some(o), Some(b)) => {
            let ratio = o.rate / b.rate;
            Check {
                target,
                measured: format!("{:.0}/s vs {:.0}/s = {ratio:.2}×", o.rate, b.rate),
                met: Some(ratio >= factor),
            }
        }
        _ => unmeasured(target),
    }
}

fn p50_at_most(
    report: &Report,
    (ours, base): (&str, &str),
    inflight: usize,
    factor: f64,
    what: &str,
) -> Check {
    let target = format!("{ours} at {inflight} in flight: p50 ≤ {factor}× {what}");
    match (
        report.figures(ours, inflight),
        report.figures(base, inflight),
    ) {
        (Some(o), Some(b)) => {
            let ratio = o.p50_us / b.p50_us;
            Check {
                target,
                measured: format!("{:.0} µs vs {:.0} µs = {ratio:.2}×", o.p50_us, b.p50_us),
                met: Some(ratio <= factor),
            }
        }
        _ => unmeasured(target),
    }
}

fn unmeasured(target: String) -> Check {
    Check {
        target,
        measured: "a side was not measured".to_owned(),
        met: None,
    }
}
