//! Envelope codec against lymph's captured envelopes (`docs/wire.md` §7.2)
//! and the worked example (§4.6).

use rmpv::Value;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `{"name": "Joe"}` as lymph packs it.
const JOE: &str = "81a46e616d65a34a6f65";

#[test]
fn py2_bin_keyed_envelope() {
    // TV-13: `lymph emit greeted '{"name": "Joe"}' --trace-id=tv-evt-0001` on Python 2.
    let raw = hex(
        "84c404626f647981a46e616d65a34a6f65c4076865616465727381c40874726163655f6964c40b74762d6576\
         742d30303031c40474797065c40767726565746564c406736f75726365c42030316339363665363832623832\
         64363664346131303961306362373432316234",
    );
    let incoming = decode(&raw).expect("decodes");
    assert_eq!(incoming.event.event_type, "greeted");
    assert_eq!(incoming.event.trace_id, "tv-evt-0001");
    assert_eq!(incoming.event.body.as_ref(), hex(JOE).as_slice());
    assert_eq!(incoming.source, "01c966e682b82d66d4a109a0cb7421b4");
    assert_eq!(incoming.retry_count, None);
    assert_eq!(incoming.event.id.len(), 32, "an id is made up");
    assert_eq!(decode(&raw).expect("again").event.id, incoming.event.id);
}

#[test]
fn py3_str_envelope() {
    // TV-15: the same emit from Python 3.
    let raw = hex(
        "84a474797065a767726565746564a76865616465727381a874726163655f6964aa74762d6576742d707933a4\
         626f647981a46e616d65a34a6f65a6736f75726365d9203062333236636464663466386337653565303535626\
         562643336383462376362",
    );
    let incoming = decode(&raw).expect("decodes");
    assert_eq!(incoming.event.event_type, "greeted");
    assert_eq!(incoming.event.trace_id, "tv-evt-py3");
    assert_eq!(incoming.event.body.as_ref(), hex(JOE).as_slice());
    assert_eq!(incoming.source, "0b326cddf4f8c7e5e055bebd3684b7cb");
}

#[test]
fn py2_retry_copy_carries_retry_count() {
    // TV-16 shape: `{bin body: {"n": 2}, bin headers: {bin retry_count: 1,
    // bin trace_id: bin "tv-evt-0004"}, bin type: bin "probe.fail", bin source: bin "ab"}`.
    let raw = hex(
        "84c404626f647981a16e02c4076865616465727382c40b72657472795f636f756e7401c40874726163655f69\
         64c40b74762d6576742d30303034c40474797065c40a70726f62652e6661696cc406736f75726365c4026162",
    );
    let incoming = decode(&raw).expect("decodes");
    assert_eq!(incoming.retry_count, Some(1));
    assert_eq!(incoming.event.trace_id, "tv-evt-0004");
    assert_eq!(incoming.event.event_type, "probe.fail");
    assert_eq!(incoming.event.body.as_ref(), hex("81a16e02").as_slice());
    assert!(incoming.other_headers.is_empty());
}

fn ours() -> Event {
    Event {
        id: "0123456789abcdef0123456789abcdef".to_owned(),
        event_type: "greeted".to_owned(),
        // A nested map with a bin and an ext value: must come back byte for byte.
        body: Bytes::from(hex("82a46e616d65a34a6f65a162c403010203")),
        trace_id: "tv-trace".to_owned(),
        traceparent: None,
    }
}

#[test]
fn the_emitters_span_rides_in_the_headers_and_survives_a_retry() {
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let event = Event {
        traceparent: crate::spans::traceparent::parse(tp.as_bytes()),
        ..ours()
    };
    let raw = encode(&event, "me", None, &[]);
    let value = rmpv::decode::read_value(&mut raw.as_slice()).expect("one value");
    assert_eq!(value["headers"]["traceparent"].as_str(), Some(tp));
    let incoming = decode(&raw).expect("decodes");
    assert_eq!(incoming.event, event);
    assert!(
        incoming.other_headers.is_empty(),
        "read, not kept as another"
    );
    let retried = encode(&incoming.event, "me", Some(1), &incoming.other_headers);
    assert_eq!(decode(&retried).expect("decodes").event, event);
    // One that is not valid is ignored.
    let mut bad = Vec::new();
    let headers = Value::Map(vec![
        (Value::from("trace_id"), Value::from("t")),
        (Value::from("traceparent"), Value::from("00-zz-yy-01")),
    ]);
    let envelope = Value::Map(vec![
        (Value::from("type"), Value::from("greeted")),
        (Value::from("headers"), headers),
    ]);
    rmpv::encode::write_value(&mut bad, &envelope).expect("encode");
    assert_eq!(decode(&bad).expect("decodes").event.traceparent, None);
}

#[test]
fn ours_round_trip_with_body_untouched() {
    let event = ours();
    let raw = encode(&event, "me", None, &[]);
    let incoming = decode(&raw).expect("decodes");
    assert_eq!(incoming.event, event);
    assert_eq!(incoming.source, "me");
    assert_eq!(incoming.retry_count, None);
    // Every key and string is str (fixstr a0-bf), never bin (c4).
    let value = rmpv::decode::read_value(&mut raw.as_slice()).expect("one value");
    let Value::Map(entries) = value else {
        panic!("a map");
    };
    for (key, value) in &entries {
        assert!(key.is_str(), "{key:?}");
        if key.as_str() != Some("body") {
            assert!(!matches!(value, Value::Binary(_)), "{key:?}: {value:?}");
        }
    }
}

#[test]
fn retry_count_and_other_headers_survive() {
    let event = ours();
    let extra = vec![("x-note".to_owned(), Bytes::from_static(b"\xa4kept"))];
    let incoming = decode(&encode(&event, "me", Some(0), &extra)).expect("decodes");
    assert_eq!(incoming.retry_count, Some(0));
    assert_eq!(incoming.other_headers, extra);
    assert_eq!(incoming.event, event);
}

#[test]
fn bad_envelopes_are_errors_not_panics() {
    assert_eq!(decode(b""), Err(EnvelopeError::NotAMap));
    assert_eq!(decode(&hex("a3616263")), Err(EnvelopeError::NotAMap));
    assert!(matches!(
        decode(&hex("81a474797065")),
        Err(EnvelopeError::Malformed(_))
    ));
    assert_eq!(decode(&hex("81a4626f647901")), Err(EnvelopeError::NoType));
    assert_eq!(decode(&hex("80c0")), Err(EnvelopeError::Trailing(1)));
    for n in 0..64u8 {
        let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
        let _ = decode(&junk);
    }
}

#[test]
fn a_body_must_be_one_msgpack_value() {
    assert!(is_one_value(&hex(JOE)));
    assert!(!is_one_value(b""));
    assert!(!is_one_value(b"body 1"));
    assert!(!is_one_value(&hex("0102")));
}

/// The worked example of `docs/wire.md` §4.6: the bytes there are these.
#[test]
fn wire_md_worked_example() {
    let event = Event {
        id: "0f9e8d7c6b5a49382716050403020100".to_owned(),
        event_type: "greeted".to_owned(),
        body: Bytes::from(hex(JOE)),
        trace_id: "71db3ed9dd534ddbb8ecc21e72114d75".to_owned(),
        traceparent: None,
    };
    let source = "4bf1a3c2d5e64f708192a3b4c5d6e7f8";
    let type_and_trace = "85a474797065a767726565746564a76865616465727381a874726163655f6964d920\
         3731646233656439646435333464646262386563633231653732313134643735";
    let rest = "a4626f647981a46e616d65a34a6f65a6736f75726365d920\
         3462663161336332643565363466373038313932613362346335643665376638\
         a26964d9203066396538643763366235613439333832373136303530343033303230313030";
    let emitted = encode(&event, source, None, &[]);
    assert_eq!(emitted, hex(&format!("{type_and_trace}{rest}")));
    // The retried copy: `headers` has two entries, `retry_count` after `trace_id`.
    let retried = encode(&event, source, Some(1), &[]);
    let retried_type_and_trace =
        type_and_trace.replacen("a76865616465727381", "a76865616465727382", 1);
    assert_eq!(
        retried,
        hex(&format!(
            "{retried_type_and_trace}ab72657472795f636f756e7401{rest}"
        ))
    );
    let incoming = decode(&retried).expect("decodes");
    assert_eq!(incoming.event, event);
    assert_eq!(incoming.retry_count, Some(1));
    assert_eq!(incoming.source, source);
}
