//! Codec tests: lymph's captured vectors (`docs/wire.md` §7.1), the worked
//! example (§3.9) and properties.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::rpc::NackReason;
use crate::spans::TraceParent;

const LIMITS: Limits = Limits {
    max_frame_bytes: 1 << 20,
    max_message_bytes: 2 << 20,
};

fn hex(s: &str) -> Bytes {
    let digits: Vec<u8> = s
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
        .collect();
    Bytes::from(digits)
}

fn frames(
    identity: &str,
    id: &str,
    kind: &str,
    subject: &str,
    headers: &str,
    body: &str,
) -> Vec<Bytes> {
    vec![
        Bytes::copy_from_slice(identity.as_bytes()),
        Bytes::copy_from_slice(id.as_bytes()),
        Bytes::copy_from_slice(kind.as_bytes()),
        Bytes::copy_from_slice(subject.as_bytes()),
        hex(headers),
        hex(body),
    ]
}

#[test]
fn tv1_request_is_encoded_byte_for_byte() {
    let message = Message {
        id: "bc99e39af2f84036b78568b6a3cae04e".to_owned(),
        kind: MessageType::Req,
        subject: "Greeting.greet".to_owned(),
        headers: Headers {
            trace_id: Some("tv-trace-0001".to_owned()),
            ..Headers::default()
        },
        body: hex("81a46e616d65a34a6f65"),
    };
    let encoded = encode("tcp://127.0.0.1:53326", &message);
    assert_eq!(encoded[2], hex("524551"));
    assert_eq!(encoded[3], hex("4772656574696e672e6772656574"));
    assert_eq!(
        encoded[4],
        hex("81a874726163655f6964ad74762d74726163652d30303031")
    );
    assert_eq!(encoded[5], hex("81a46e616d65a34a6f65"));
    let (identity, decoded) = decode(&encoded, &LIMITS).expect("decodes");
    assert_eq!(identity, "tcp://127.0.0.1:53326");
    assert_eq!(decoded, message);
}

#[test]
fn tv2_py2_reply_with_bin_keys_decodes() {
    let f = frames(
        "tcp://127.0.0.1:53326",
        "bda47a7f1feb418fa7bbfa8aa248d191",
        "REP",
        "bc99e39af2f84036b78568b6a3cae04e",
        "82c40776657273696f6ec0c40874726163655f6964ad74762d74726163652d30303031",
        "a848692c204a6f6521",
    );
    let (identity, message) = decode(&f, &LIMITS).expect("decodes");
    assert_eq!(identity, "tcp://127.0.0.1:53326");
    assert_eq!(message.kind, MessageType::Rep);
    assert_eq!(message.subject, "bc99e39af2f84036b78568b6a3cae04e");
    assert_eq!(message.headers.trace_id.as_deref(), Some("tv-trace-0001"));
    assert_eq!(message.headers.version, None);
    assert_eq!(message.body, hex("a848692c204a6f6521"));
}

#[test]
fn tv3_py3_reply_and_tv4_bin_trace_id_decode() {
    let py3 = Headers::decode(&hex(
        "82a776657273696f6ec0a874726163655f6964ad74762d74726163652d30303031",
    ))
    .expect("py3 headers");
    assert_eq!(py3.trace_id.as_deref(), Some("tv-trace-0001"));
    let py2 = Headers::decode(&hex(
        "82c40776657273696f6ec0c40874726163655f6964c4206238343232613061386634363434643838333662363931623732313233386463",
    ))
    .expect("py2 headers");
    assert_eq!(
        py2.trace_id.as_deref(),
        Some("b8422a0a8f4644d8836b691b721238dc")
    );
}

#[test]
fn tv5_nack_and_tv7_ack_decode() {
    let nack = frames(
        "p",
        "x",
        "NACK",
        "id",
        "81c40874726163655f6964ad74762d74726163652d30303031",
        "c0",
    );
    let (_, message) = decode(&nack, &LIMITS).expect("nack");
    assert_eq!(message.kind, MessageType::Nack);
    assert_eq!(message.headers.reason, None);
    let ack = frames(
        "p",
        "x",
        "ACK",
        "id",
        "82c40776657273696f6ec0c40874726163655f6964ad74762d74726163652d30303031",
        "c0",
    );
    assert_eq!(decode(&ack, &LIMITS).expect("ack").1.kind, MessageType::Ack);
}

#[test]
fn tv6_error_bodies_decode_from_py2_and_py3() {
    let py2 = hex("82c4076d657373616765c40962616420696e707574c40474797065c40a50726f62654572726f72");
    let py3 = hex("82a474797065aa50726f62654572726f72a76d657373616765a962616420696e707574");
    let expected = ("ProbeError".to_owned(), "bad input".to_owned());
    assert_eq!(decode_error_body(&py2), expected);
    assert_eq!(decode_error_body(&py3), expected);
    assert_eq!(encode_error_body("ProbeError", "bad input"), py3);
    assert_eq!(decode_error_body(&[0xc0]), (String::new(), String::new()));
}

#[test]
fn tv8_heartbeats_from_py2_and_py3_give_their_payload() {
    assert_eq!(ping_payload(&hex("81c4077061796c6f6164c400")), hex("c400"));
    assert_eq!(ping_payload(&hex("81a77061796c6f6164a0")), hex("a0"));
    assert_eq!(
        ping_payload(&hex("82a1610181a77061796c6f6164a178")),
        hex("c0")
    );
    assert_eq!(
        ping_payload(&hex("82a16101a77061796c6f6164a178")),
        hex("a178")
    );
    assert_eq!(ping_payload(&hex("80")), hex("c0"));
    assert_eq!(ping_payload(&hex("c0")), hex("c0"));
}

#[test]
fn tv9_request_from_py2_lymph_and_our_reply() {
    let f = frames(
        "tcp://127.0.0.1:36787",
        "0123456789abcdef0123456789abcdef",
        "REQ",
        "Fake.hello",
        "82c40776657273696f6ec0c40874726163655f6964ad74762d74726163652d30303033",
        "81a17801",
    );
    let (identity, request) = decode(&f, &LIMITS).expect("decodes");
    assert_eq!(identity, "tcp://127.0.0.1:36787");
    assert_eq!(request.headers.trace_id.as_deref(), Some("tv-trace-0003"));
    let reply = Headers {
        trace_id: Some("ignored-by-lymph".to_owned()),
        ..Headers::default()
    };
    assert_eq!(
        reply.encode(),
        hex("81a874726163655f6964b069676e6f7265642d62792d6c796d7068")
    );
}

/// The worked example of `docs/wire.md` §3.9: the bytes there are these.
mod wire_md_worked_example {
    use super::*;

    const TRACE: &str = "71db3ed9dd534ddbb8ecc21e72114d75";
    const REQUEST_ID: &str = "5f1c0a3e9b7d4c2a8e6f0b1d3c5a7e90";
    const REPLY_ID: &str = "a0b1c2d3e4f5061728394a5b6c7d8e9f";
    /// `trace_id: "71db…"`, str8 because the id has 32 characters.
    const TRACE_ENTRY: &str =
        "a874726163655f6964d9203731646233656439646435333464646262386563633231653732313134643735";

    fn reply(kind: MessageType, headers: Headers, body: &str) -> Vec<Bytes> {
        let message = Message {
            id: REPLY_ID.to_owned(),
            kind,
            subject: REQUEST_ID.to_owned(),
            headers,
            body: hex(body),
        };
        encode("tcp://127.0.0.1:40001", &message)
    }

    fn traced() -> Headers {
        Headers {
            trace_id: Some(TRACE.to_owned()),
            ..Headers::default()
        }
    }

    #[test]
    fn request() {
        let message = Message {
            id: REQUEST_ID.to_owned(),
            kind: MessageType::Req,
            subject: "Greeting.greet".to_owned(),
            headers: Headers {
                version: Some("1.2.0".to_owned()),
                ..traced()
            },
            body: hex("81a46e616d65a34a6f65"),
        };
        let frames = encode("tcp://127.0.0.1:40002", &message);
        assert_eq!(frames[0], Bytes::from_static(b"tcp://127.0.0.1:40002"));
        assert_eq!(frames[1], Bytes::from_static(REQUEST_ID.as_bytes()));
        assert_eq!(frames[2], hex("524551"));
        assert_eq!(frames[3], hex("4772656574696e672e6772656574"));
        assert_eq!(
            frames[4],
            hex(&format!("82{TRACE_ENTRY}a776657273696f6ea5312e322e30"))
        );
        assert_eq!(frames[5], hex("81a46e616d65a34a6f65"));
        let mut received = frames;
        received[0] = Bytes::from_static(b"tcp://127.0.0.1:40001");
        let (from, decoded) = decode(&received, &LIMITS).expect("decodes");
        assert_eq!(from, "tcp://127.0.0.1:40001");
        assert_eq!(decoded, message);
    }

    #[test]
    fn rep() {
        let headers = Headers {
            version: Some("1.2.0".to_owned()),
            ..traced()
        };
        let frames = reply(MessageType::Rep, headers, "a848692c204a6f6521");
        assert_eq!(frames[2], hex("524550"));
        assert_eq!(frames[3], Bytes::from_static(REQUEST_ID.as_bytes()));
        assert_eq!(
            frames[4],
            hex(&format!("82{TRACE_ENTRY}a776657273696f6ea5312e322e30"))
        );
        assert_eq!(frames[5], hex("a848692c204a6f6521"));
    }

    #[test]
    fn nack_with_lymphds_reason() {
        let headers = Headers {
            reason: Some(NackReason {
                kind: crate::error::ErrorKind::UnknownMethod,
                message: "no app on this host serves Nope".to_owned(),
            }),
            ..traced()
        };
        let frames = reply(MessageType::Nack, headers, "c0");
        assert_eq!(frames[2], hex("4e41434b"));
        assert_eq!(
            frames[4],
            hex(&format!(
                "82{TRACE_ENTRY}ac6c796d7068645f6572726f7282a46b696e64ae756e6b6e6f776e5f6d6574686f64\
                 a76d657373616765bf6e6f20617070206f6e207468697320686f737420736572766573204e6f7065"
            ))
        );
        assert_eq!(frames[5], hex("c0"));
    }

    #[test]
    fn error_body() {
        let body =
            "82a474797065ad4772656574696e674572726f72a76d657373616765ad6e6f206e616d6520676976656e";
        assert_eq!(
            encode_error_body("GreetingError", "no name given"),
            hex(body)
        );
        let frames = reply(MessageType::Error, traced(), body);
        assert_eq!(frames[2], hex("4552524f52"));
        assert_eq!(frames[4], hex(&format!("81{TRACE_ENTRY}")));
    }
}

#[test]
fn nack_reason_round_trips_and_lymph_keys_stay_readable() {
    let headers = Headers {
        trace_id: Some("t".to_owned()),
        version: Some("1.2.0".to_owned()),
        reason: Some(NackReason {
            kind: crate::error::ErrorKind::UnknownMethod,
            message: "no such method".to_owned(),
        }),
        ..Headers::default()
    };
    assert_eq!(
        Headers::decode(&headers.encode()).expect("decodes"),
        headers
    );
}

#[test]
fn a_reply_from_an_unversioned_interface_has_version_nil_as_lymphs() {
    let text = |s: &str| rmpv::Value::String(s.into());
    let headers = Headers {
        trace_id: Some("t".to_owned()),
        nil_version: true,
        identity: Some("app".to_owned()),
        ..Headers::default()
    };
    let expected = rmpv::Value::Map(vec![
        (text("trace_id"), text("t")),
        (text("version"), rmpv::Value::Nil),
        (text(crate::rpc::IDENTITY_HEADER), text("app")),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &expected).expect("encodes");
    assert_eq!(headers.encode().as_ref(), bytes.as_slice());
    assert_eq!(Headers::decode(&bytes).expect("decodes"), headers);
    // A named version wins over the nil flag; no flag, no key.
    let versioned = Headers {
        version: Some("1.0.0".to_owned()),
        nil_version: true,
        ..Headers::default()
    };
    assert_eq!(
        Headers::decode(&versioned.encode())
            .expect("decodes")
            .version,
        Some("1.0.0".to_owned())
    );
    assert_eq!(Headers::default().encode().as_ref(), &[0x80]);
}

#[test]
fn headers_are_encoded_as_rmpv_encodes_them() {
    let text = |s: &str| rmpv::Value::String(s.into());
    for len in [0, 31, 32, 255, 256, 70_000] {
        let long = "x".repeat(len);
        let headers = Headers {
            trace_id: Some(long.clone()),
            reason: Some(NackReason {
                kind: crate::error::ErrorKind::Overloaded,
                message: long.clone(),
            }),
            ..Headers::default()
        };
        let reason = rmpv::Value::Map(vec![
            (text("kind"), text("overloaded")),
            (text("message"), text(&long)),
        ]);
        let expected = rmpv::Value::Map(vec![
            (text("trace_id"), text(&long)),
            (text(crate::rpc::REASON_HEADER), reason),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &expected).expect("encodes");
        assert_eq!(headers.encode().as_ref(), bytes.as_slice(), "length {len}");
    }
    assert_eq!(Headers::default().encode().as_ref(), &[0x80]);
}

#[test]
fn malformed_messages_are_errors() {
    let good = frames("p", "i", "REQ", "A.b", "80", "c0");
    assert_eq!(decode(&good[..3], &LIMITS), Err(FrameError::FrameCount(3)));
    let mut bad = good.clone();
    bad[1] = Bytes::from_static(&[0xff, 0xfe]);
    assert_eq!(
        decode(&bad, &LIMITS),
        Err(FrameError::NotUtf8("message id"))
    );
    let mut bad = good.clone();
    bad[2] = Bytes::from_static(b"PUSH");
    assert!(matches!(
        decode(&bad, &LIMITS),
        Err(FrameError::UnknownType(_))
    ));
    let mut bad = good.clone();
    bad[5] = hex("c0c0");
    assert!(matches!(decode(&bad, &LIMITS), Err(FrameError::BadBody(_))));
    let mut bad = good.clone();
    bad[5] = hex("dd7fffffff");
    assert!(matches!(decode(&bad, &LIMITS), Err(FrameError::BadBody(_))));
    let mut bad = good.clone();
    bad[4] = hex("a1");
    assert!(matches!(
        decode(&bad, &LIMITS),
        Err(FrameError::BadHeaders(_))
    ));
    let mut bad = good;
    bad[5] = Bytes::from(vec![0xc4; 100]);
    let tight = Limits {
        max_frame_bytes: 50,
        max_message_bytes: 1000,
    };
    assert!(matches!(
        decode(&bad, &tight),
        Err(FrameError::FrameTooLarge { index: 5, .. })
    ));
    let tight = Limits {
        max_frame_bytes: 100,
        max_message_bytes: 100,
    };
    assert!(matches!(
        decode(&bad, &tight),
        Err(FrameError::MessageTooLarge { .. })
    ));
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn msgpack_value() -> impl Strategy<Value = rmpv::Value> {
    let leaf = prop_oneof![
        Just(rmpv::Value::Nil),
        any::<bool>().prop_map(rmpv::Value::Boolean),
        any::<i64>().prop_map(rmpv::Value::from),
        any::<u64>().prop_map(rmpv::Value::from),
        any::<f64>().prop_map(rmpv::Value::F64),
        text().prop_map(rmpv::Value::from),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(rmpv::Value::Binary),
        (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(t, d)| rmpv::Value::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(rmpv::Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..8).prop_map(rmpv::Value::Map),
        ]
    })
}

fn kind() -> impl Strategy<Value = MessageType> {
    prop_oneof![
        Just(MessageType::Req),
        Just(MessageType::Rep),
        Just(MessageType::Ack),
        Just(MessageType::Nack),
        Just(MessageType::Error),
    ]
}

#[test]
fn the_deadline_header_is_a_msgpack_uint_as_rmpv_writes_it() {
    let text = |s: &str| rmpv::Value::String(s.into());
    for ms in [
        0,
        1,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let headers = Headers {
            deadline_ms: Some(ms),
            ..Headers::default()
        };
        let mut expected = Vec::new();
        rmpv::encode::write_value(
            &mut expected,
            &rmpv::Value::Map(vec![(text("lymphd_deadline_ms"), rmpv::Value::from(ms))]),
        )
        .expect("encode");
        assert_eq!(headers.encode().as_ref(), expected.as_slice(), "{ms}");
        assert_eq!(Headers::decode(&expected).expect("decodes"), headers);
    }
    // Not a uint (a negative int, a str): ignored, as other bad values are.
    for value in [rmpv::Value::from(-5), text("300")] {
        let mut raw = Vec::new();
        rmpv::encode::write_value(
            &mut raw,
            &rmpv::Value::Map(vec![(text("lymphd_deadline_ms"), value)]),
        )
        .expect("encode");
        assert_eq!(Headers::decode(&raw).expect("decodes").deadline_ms, None);
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(
        dest in text(), id in text(), kind in kind(), subject in text(),
        trace_id in proptest::option::of(text()), version in proptest::option::of(text()),
        nil_version in any::<bool>(), identity in proptest::option::of(text()),
        deadline_ms in proptest::option::of(any::<u64>()),
        traceparent in proptest::option::of((any::<[u8; 16]>(), any::<[u8; 8]>(), any::<bool>())),
        reason in proptest::option::of((0..crate::error::KINDS.len(), text())), body in msgpack_value(),
    ) {
        let mut encoded_body = Vec::new();
        rmpv::encode::write_value(&mut encoded_body, &body).expect("encodes");
        let message = Message {
            id, kind, subject,
            headers: Headers {
                nil_version: version.is_none() && nil_version,
                trace_id, version,
                reason: reason.map(|(kind, message)| NackReason { kind: crate::error::KINDS[kind], message }),
                identity,
                deadline_ms,
                // What a valid `traceparent` can say: non-zero ids.
                traceparent: traceparent
                    .filter(|(trace, span, _)| *trace != [0; 16] && *span != [0; 8])
                    .map(|(trace_id, span_id, sampled)| TraceParent { trace_id, span_id, sampled }),
            },
            body: Bytes::from(encoded_body),
        };
        let frames = encode(&dest, &message);
        let (identity, decoded) = decode(&frames, &LIMITS).expect("decodes");
        prop_assert_eq!(identity, dest);
        prop_assert_eq!(decoded, message);
    }

    #[test]
    fn random_frames_never_panic(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
    ) {
        let frames: Vec<Bytes> = frames.into_iter().map(Bytes::from).collect();
        let _ = decode(&frames, &LIMITS);
        let tight = Limits { max_frame_bytes: 16, max_message_bytes: 40 };
        if let Ok((_, message)) = decode(&frames, &tight) {
            prop_assert!(message.body.len() <= 16);
        }
    }

    #[test]
    fn random_msgpack_like_bytes_never_panic(
        prefix in prop_oneof![Just(vec![0xdfu8, 0xff, 0xff, 0xff, 0xff]), Just(vec![0xddu8, 0x7f, 0xff, 0xff, 0xff]), Just(vec![0xc6u8, 0xff, 0xff, 0xff, 0xff]), Just(vec![])],
        rest in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = prefix;
        bytes.extend(rest);
        let good = |slot: usize| {
            let mut f = vec![
                Bytes::from_static(b"p"), Bytes::from_static(b"i"), Bytes::from_static(b"REQ"),
                Bytes::from_static(b"A.b"), Bytes::from_static(&[0x80]), Bytes::from_static(&[0xc0]),
            ];
            f[slot] = Bytes::from(bytes.clone());
            f
        };
        let _ = decode(&good(4), &LIMITS);
        let _ = decode(&good(5), &LIMITS);
        let _ = ping_payload(&bytes);
        let _ = decode_error_body(&bytes);
    }
}
