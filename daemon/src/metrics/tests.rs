//! The seam's series: what each hop's reports add up to, and their bounds.

use std::time::Duration;

use super::*;

fn value(samples: &[Sample], name: &str, tag: (&str, &str)) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.tags.iter().any(|(k, v)| *k == tag.0 && v == tag.1))
        .map(|s| s.value)
}

#[test]
fn counts_and_quantiles_per_subject() {
    let m = Metrics::default();
    for _ in 0..98 {
        m.rpc_done(
            Side::Client,
            "Greeting.greet",
            Duration::from_micros(80),
            Ok(()),
        );
    }
    let failed = Err(ErrorKind::DeadlineExceeded);
    m.rpc_done(
        Side::Client,
        "Greeting.greet",
        Duration::from_millis(40),
        failed,
    );
    m.rpc_done(
        Side::Client,
        "Greeting.greet",
        Duration::from_millis(40),
        failed,
    );
    m.rpc_done(
        Side::Server,
        "lymph.ping",
        Duration::from_micros(10),
        Ok(()),
    );
    let samples = m.samples();
    let subject = ("subject", "Greeting.greet");
    assert_eq!(value(&samples, "rpc", subject), Some(100.0));
    assert_eq!(value(&samples, "rpc.errors", subject), Some(2.0));
    assert_eq!(value(&samples, "rpc.latency_p50_ms", subject), Some(0.1));
    assert_eq!(value(&samples, "rpc.latency_p99_ms", subject), Some(50.0));
    assert_eq!(value(&samples, "rpc", ("side", "server")), Some(1.0));
    assert_eq!(m.rpc_totals(), (101, 2, 0));
}

#[test]
fn failures_that_reached_nobody_make_no_series() {
    let m = Metrics::default();
    for kind in [
        ErrorKind::UnknownService,
        ErrorKind::UnknownMethod,
        ErrorKind::Invalid,
    ] {
        m.rpc_done(Side::Client, "Made.up", Duration::ZERO, Err(kind));
    }
    assert_eq!(m.rpc_totals(), (0, 0, 0));
    assert_eq!(m.samples().len(), 3, "only the totals");
}

#[test]
fn http_and_events_are_recorded_per_route_and_type() {
    let m = Metrics::default();
    m.http_done("GET", "/hello/<name>", 200, Duration::from_millis(1));
    m.http_done("GET", "/hello/<name>", 502, Duration::from_millis(1));
    m.event(EventStep::Emitted, "greeted");
    m.event(EventStep::Delivered, "greeted");
    m.event(EventStep::Acked, "greeted");
    m.event(EventStep::Dropped, "greeted");
    let samples = m.samples();
    let route = ("route", "/hello/<name>");
    assert_eq!(value(&samples, "http", route), Some(2.0));
    assert_eq!(value(&samples, "http.errors", route), Some(1.0));
    let greeted = ("event_type", "greeted");
    for name in [
        "events.emitted",
        "events.delivered",
        "events.acked",
        "events.dropped",
    ] {
        assert_eq!(value(&samples, name, greeted), Some(1.0), "{name}");
    }
    assert_eq!(
        value(&samples, "events.failed", greeted),
        None,
        "no zero series"
    );
}

#[test]
fn series_are_bounded_and_the_rest_count_as_other() {
    let m = Metrics::default();
    for i in 0..MAX_SERIES + 10 {
        m.event(EventStep::Emitted, &format!("type{i}"));
    }
    let samples = m.samples();
    let emitted = samples
        .iter()
        .filter(|s| s.name == "events.emitted")
        .count();
    assert_eq!(emitted, MAX_SERIES + 1, "MAX_SERIES names and one overflow");
    assert_eq!(
        value(&samples, "events.emitted", ("event_type", OTHER)),
        Some(10.0)
    );
}
