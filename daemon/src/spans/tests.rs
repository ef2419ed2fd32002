//! Trace ids from lymph's, sampling by trace id or by parent, what a hop
//! passes on, and a recorder that is off.

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
        .filter(|_| sampled(&uuid::Uuid::new_v4().into_bytes(), threshold(0.1)))
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
    let spans = recording(u64::MAX);
    let open = spans.open("request-42", None).expect("sampled");
    let record = open.end("x".to_owned(), Kind::Server, Vec::new(), Some("internal"));
    assert_eq!(
        record.attributes,
        vec![("lymph.trace_id", Cow::from("request-42"))]
    );
    assert_ne!(record.trace_id, [0; 16]);
    assert_eq!(record.error, Some("internal"));
}

fn recording(threshold: u64) -> Spans {
    Spans(Some(Arc::new(Recorder {
        threshold,
        exporter: Exporter::closed(),
        dropped: AtomicU64::new(0),
    })))
}

#[test]
fn a_hop_with_a_parent_is_its_child_and_follows_its_decision() {
    let parent = traceparent::parse(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .expect("valid");
    // Sampled by the parent even where this daemon's ratio keeps nothing.
    let spans = recording(threshold(0.0));
    let open = spans
        .open("request-42", Some(parent))
        .expect("the parent's decision");
    assert_eq!(open.trace_id, parent.trace_id);
    assert_eq!(open.parent, Some(parent.span_id));
    assert_ne!(open.span_id, parent.span_id);
    // The next hop is this span's child.
    let passed = passed_on(Some(&open), Some(parent)).expect("passed on");
    assert_eq!(
        (passed.trace_id, passed.span_id),
        (open.trace_id, open.span_id)
    );
    let record = open.end("x".to_owned(), Kind::Client, Vec::new(), None);
    assert_eq!(
        record.attributes,
        vec![("lymph.trace_id", Cow::from("request-42"))]
    );
    // A parent not sampled: no span, even at ratio 1, and the parent goes on.
    let unsampled = TraceParent {
        sampled: false,
        ..parent
    };
    let all = recording(threshold(1.0));
    assert!(all.open("request-42", Some(unsampled)).is_none());
    assert_eq!(passed_on(None, Some(unsampled)), Some(unsampled));
    // Spans off: the parent goes on untouched.
    assert!(Spans::off().open("request-42", Some(parent)).is_none());
}

#[test]
fn a_foreign_trace_id_gives_one_trace_on_every_daemon() {
    let (one, two) = (recording(u64::MAX), recording(u64::MAX));
    let a = one.open("request-42", None).expect("sampled");
    let b = two.open("request-42", None).expect("sampled");
    assert_eq!(a.trace_id, b.trace_id, "derived alike");
    assert_eq!(a.parent, None);
    let c = one.open("request-43", None).expect("sampled");
    assert_ne!(a.trace_id, c.trace_id);
}

#[test]
fn the_quick_look_at_an_ids_last_digits_decides_as_the_whole_id_does() {
    for _ in 0..1000 {
        let text = uuid::Uuid::new_v4().simple().to_string();
        let id = parse_trace_id(&text).expect("hex");
        for ratio in [0.001, 0.01, 0.5] {
            let t = threshold(ratio);
            let quick = sampled_digits(&text).expect("hex");
            assert_eq!(quick < t, sampled(&id, t), "{text} at {ratio}");
        }
    }
    assert_eq!(sampled_digits("request-42"), None);
    assert_eq!(sampled_digits("4bf92f3577b34da6a3ce929d0e0e473z"), None);
    // Only the last 14 are read: such an id also passes the derived id's rule.
    assert_eq!(
        sampled_digits("zzzz2f3577b34da6a3ce929d0e0e4736"),
        Some(0x00ce_929d_0e0e_4736)
    );
}
