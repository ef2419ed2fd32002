//! The exposition as a scraper reads it: names, units, labels and values
//! from the seam's reports, the gauges, and the bounds on caller-made names.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::error::ErrorKind;

#[derive(Debug)]
struct Fixed(Gauges);

#[async_trait::async_trait]
impl GaugeSource for Fixed {
    async fn gauges(&self) -> Gauges {
        self.0
    }
}

async fn scrape(metrics: &Arc<Metrics>, gauges: Gauges) -> String {
    let exporter = Exporter::new(metrics.clone(), Arc::new(Fixed(gauges)));
    exporter.scrape().await.expect("encodes")
}

/// The value of the one sample line starting with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

#[tokio::test]
async fn rpc_histograms_by_side_method_and_error_type() {
    let m = Arc::new(Metrics::default());
    for _ in 0..3 {
        m.rpc_done(
            Side::Client,
            "Greeting.greet",
            Duration::from_micros(30),
            Ok(()),
        );
    }
    let failed = Err(ErrorKind::DeadlineExceeded);
    m.rpc_done(
        Side::Client,
        "Greeting.greet",
        Duration::from_secs(2),
        failed,
    );
    m.rpc_done(Side::Server, "Echo.echo", Duration::from_millis(3), Ok(()));
    let text = scrape(&m, Gauges::default()).await;

    let ok = r#"rpc_client_call_duration_seconds_count{rpc_system_name="lymph",rpc_method="Greeting.greet"}"#;
    assert_eq!(value(&text, ok), Some(3.0), "{text}");
    let late = r#"rpc_client_call_duration_seconds_count{rpc_system_name="lymph",rpc_method="Greeting.greet",error_type="deadline_exceeded"}"#;
    assert_eq!(value(&text, late), Some(1.0), "{text}");
    // 30 µs is past the first bucket (25 µs), within the second (50 µs).
    let first = r#"rpc_client_call_duration_seconds_bucket{le="0.000025",rpc_system_name="lymph",rpc_method="Greeting.greet"}"#;
    let second = r#"rpc_client_call_duration_seconds_bucket{le="0.00005",rpc_system_name="lymph",rpc_method="Greeting.greet"}"#;
    let (first, second) = (value(&text, first), value(&text, second));
    assert_eq!((first, second), (Some(0.0), Some(3.0)), "{text}");
    let server =
        r#"rpc_server_call_duration_seconds_sum{rpc_system_name="lymph",rpc_method="Echo.echo"}"#;
    assert_eq!(value(&text, server), Some(0.003), "{text}");
    assert!(
        text.contains("# UNIT rpc_client_call_duration_seconds seconds"),
        "{text}"
    );
    assert!(
        text.ends_with("# EOF\n"),
        "an OpenMetrics exposition ends so"
    );
}

#[tokio::test]
async fn http_histograms_by_route_method_and_status() {
    let m = Arc::new(Metrics::default());
    m.http_done("GET", "/hello/<name>", 200, Duration::from_millis(1));
    m.http_done("GET", "/hello/<name>", 200, Duration::from_millis(1));
    m.http_done("GET", "/hello/<name>", 502, Duration::from_millis(1));
    let text = scrape(&m, Gauges::default()).await;
    let ok = r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/hello/<name>",url_scheme="http",http_response_status_code="200"}"#;
    assert_eq!(value(&text, ok), Some(2.0), "{text}");
    let bad = r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/hello/<name>",url_scheme="http",http_response_status_code="502",error_type="502"}"#;
    assert_eq!(value(&text, bad), Some(1.0), "{text}");
}

#[tokio::test]
async fn an_app_answering_with_many_statuses_cannot_grow_the_series() {
    let m = Arc::new(Metrics::default());
    for status in 200..400 {
        m.http_done("GET", "/x", status, Duration::from_millis(1));
    }
    let text = scrape(&m, Gauges::default()).await;
    let series = text
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count"))
        .count();
    assert_eq!(series, 33, "32 codes and `_other`");
    let other = r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/x",url_scheme="http",http_response_status_code="_other"}"#;
    assert_eq!(value(&text, other), Some(168.0), "{text}");
}

#[tokio::test]
async fn events_sent_consumed_processed_and_settled() {
    let m = Arc::new(Metrics::default());
    m.event(EventStep::Emitted, "uppercase_transform_finished");
    m.event(EventStep::Delivered, "uppercase_transform_finished");
    m.event(EventStep::Delivered, "uppercase_transform_finished");
    let held = Duration::from_millis(7);
    m.event_settled(EventStep::Acked, "uppercase_transform_finished", held);
    m.event_settled(EventStep::Failed, "uppercase_transform_finished", held);
    m.event(EventStep::Returned, "uppercase_transform_finished");
    let text = scrape(&m, Gauges::default()).await;
    let labels =
        r#"{messaging_system="lymph",messaging_destination_name="uppercase_transform_finished"}"#;
    let sent = format!("messaging_client_sent_messages_total{labels}");
    let consumed = format!("messaging_client_consumed_messages_total{labels}");
    let processed = format!("messaging_process_duration_seconds_count{labels}");
    assert_eq!(value(&text, &sent), Some(1.0), "{text}");
    assert_eq!(value(&text, &consumed), Some(2.0), "{text}");
    assert_eq!(value(&text, &processed), Some(2.0), "{text}");
    for (result, n) in [("ack", 1.0), ("retry", 1.0), ("drop", 0.0), ("fail", 1.0)] {
        let settled = format!(
            r#"lymphd_events_settled_total{{messaging_destination_name="uppercase_transform_finished",result="{result}"}}"#
        );
        assert_eq!(value(&text, &settled), Some(n), "{result}: {text}");
    }
}

#[tokio::test]
async fn gauges_and_the_process() {
    let m = Arc::new(Metrics::default());
    let gauges = Gauges {
        apps: 3,
        calls_in_flight: 2,
        held: 5,
        queue_depth: Some(9),
        peers: Some([4, 1, 0]),
        registry_connected: true,
        broker_connected: false,
        spans_dropped: Some(4),
    };
    let text = scrape(&m, gauges).await;
    for (series, expected) in [
        ("lymphd_apps", 3.0),
        (r#"lymphd_in_flight{kind="calls"}"#, 2.0),
        (r#"lymphd_in_flight{kind="held"}"#, 5.0),
        ("lymphd_queue_depth", 9.0),
        (r#"lymphd_peers{state="verified"}"#, 4.0),
        (r#"lymphd_peers{state="dead"}"#, 0.0),
        ("lymphd_registry_connected", 1.0),
        ("lymphd_broker_connected", 0.0),
        ("lymphd_spans_dropped_total", 4.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series}: {text}");
    }
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|b| b > 0.0));
    assert!(value(&text, "process_cpu_seconds_total").is_some());
    assert!(value(&text, "process_open_fds").is_some_and(|n| n >= 3.0));
    // No embedded bus, no transport: their gauges are left out.
    let bare = scrape(&m, Gauges::default()).await;
    assert!(!bare.contains("lymphd_queue_depth") && !bare.contains("lymphd_peers"));
    assert!(
        !bare.contains("lymphd_spans_dropped"),
        "tracing off: no such counter"
    );
}

#[tokio::test]
async fn off_keeps_lymphs_counts_but_no_labelled_series() {
    let m = Arc::new(Metrics::new(false));
    m.rpc_done(
        Side::Client,
        "A.b",
        Duration::from_millis(1),
        Err(ErrorKind::Overloaded),
    );
    m.http_done("GET", "/x", 200, Duration::from_millis(1));
    m.event_settled(EventStep::Acked, "t", Duration::from_millis(1));
    assert_eq!(m.rpc_totals(), (1, 1, 0), "lymph's counts go on");
    let series = &m.rpc_series(Side::Client)[0].1;
    assert_eq!(series.all().count, 1, "and so do its latencies");
    assert_eq!(series.outcomes().len(), 1, "only successes, no kind");
    assert!(m.http_series()[0].1.by_status().is_empty());
    assert_eq!(m.event_series()[0].1.processed.snapshot().count, 0);
}
