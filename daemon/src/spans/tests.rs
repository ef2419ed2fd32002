//! Trace ids from lymph's, sampling by trace id, and a recorder that is off.

use super::*;

#[test]
fn lymphs_trace_ids_are_otels_when_they_are_32_hex_digits() {
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    assert_eq!(
        parse_trace_id(id).map(u128::from_be_bytes),
        Some(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
    );
    for other in [
        "",
        "abc",
        "00000000000000000000000000000000",
        "zzzz2f3577b34da6a3ce929d0e0e4736",
    ] {
        assert_eq!(parse_trace_id(other), None, "{other:?}");
    }
}

#[test]
fn sampling_is_decided_by_the_trace_id_alone() {
    assert!(sampled(&[0xff; 16], threshold(1.0)));
    assert!(!sampled(&[0; 16], threshold(0.0)));
    // Half: ids whose last 7 bytes are under 2^55.
    let half = threshold(0.5);
    let mut low = [0u8; 16];
    low[9] = 0x7f;
    let mut high = [0u8; 16];
    high[9] = 0x80;
    assert!(sampled(&low, half) && !sampled(&high, half));
    // About the ratio over many random ids, lymph's (UUIDv4) included.
    let n = 10_000;
    let kept = (0..n)
        .filter(|_| sampled(&random_trace_id(), threshold(0.1)))
        .count();
    assert!((700..1300).contains(&kept), "{kept} of {n} at 0.1");
}

#[test]
fn off_records_nothing_and_costs_no_ids() {
    let spans = Spans::off();
    assert!(
        spans
            .open("4bf92f3577b34da6a3ce929d0e0e4736", None)
            .is_none()
    );
    assert_eq!(spans.dropped(), 0);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let config = TracingConfig {
        // Nothing listens there: the exporter's first batch waits to connect.
        otlp_endpoint: Some("http://127.0.0.1:9".to_owned()),
        sample_ratio: 1.0,
        queue: 2,
    };
    let spans = Spans::start(&config, "test");
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    for _ in 0..10 {
        let open = spans.open(id, None).expect("sampled");
        spans.record(open.end("x".to_owned(), Kind::Client, Vec::new(), None));
    }
    // The exporter takes at most a batch's first span off the queue before
    // it is full again: 10 offered, at most 2 queued and 1 taken.
    assert!(spans.dropped() >= 7, "dropped {}", spans.dropped());
}

#[test]
fn a_span_keeps_a_foreign_trace_id_as_an_attribute() {
    let recorder = Recorder {
        threshold: u64::MAX,
        exporter: Exporter::closed(),
        dropped: AtomicU64::new(0),
    };
    let spans = Spans(Some(Arc::new(recorder)));
    let open = spans.open("request-42", None).expect("sampled");
    let record = open.end("x".to_owned(), Kind::Server, Vec::new(), Some("internal"));
    assert_eq!(
        record.attributes,
        vec![("lymph.trace_id", "request-42".to_owned())]
    );
    assert_ne!(record.trace_id, [0; 16]);
    assert_eq!(record.error, Some("internal"));
}
