//! Unit tests of the JSON ↔ MessagePack edge.

use rmpv::Value;
use serde_json::json;

use super::*;

fn round_trip(json: &Json) -> Json {
    let packed = params_to_msgpack(&json.to_string()).expect("params pack");
    msgpack_to_json(&packed).expect("body decodes")
}

#[test]
fn json_survives_msgpack_round_trip() {
    let params = json!({
        "name": "Jöe ☃ 日本",
        "nested": {"list": [1, -3, 2.5, null, true, "x"], "empty": {}},
        "big": 1_099_511_627_776_u64,
        "max": u64::MAX,
        "float": 1.0,
        "int": 1,
        "none": null,
    });
    assert_eq!(round_trip(&params), params);
}

#[test]
fn ints_and_floats_keep_their_msgpack_types() {
    let packed = params_to_msgpack(r#"{"i": 1, "f": 1.0, "n": -3, "s": "a"}"#).expect("pack");
    let value = rmpv::decode::read_value(&mut &packed[..]).expect("decode");
    let field = |name: &str| {
        value
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(name)))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("i"), Some(Value::from(1)));
    assert_eq!(field("f"), Some(Value::F64(1.0)));
    assert_eq!(field("n"), Some(Value::from(-3)));
    // Strings go out as msgpack str (fixstr 0xa1), never bin.
    assert!(packed.windows(2).any(|w| w == [0xa1, b'a']));
    // Smallest encodings, as lymph writes them: fixint 1, negative fixint -3.
    assert!(packed.contains(&0x01) && packed.contains(&0xfd));
}

#[test]
fn params_must_be_a_json_object() {
    for text in ["[1, 2]", "\"x\"", "3", "null"] {
        let err = params_to_msgpack(text).expect_err(text);
        assert_eq!(err.to_string(), "params must be a JSON object");
    }
    let err = params_to_msgpack("{nope").expect_err("bad json");
    assert!(err.to_string().starts_with("params are not valid JSON"));
}

#[test]
fn bin_values_render_as_text_or_marker() {
    assert_eq!(value_to_json(&Value::Binary(b"Hi".to_vec())), json!("Hi"));
    assert_eq!(
        value_to_json(&Value::Binary(vec![0xff, 0x00, 0xfe])),
        json!("<3 bytes>")
    );
    assert_eq!(
        value_to_json(&Value::Ext(3, vec![1, 2])),
        json!("<ext 3: 2 bytes>")
    );
}

#[test]
fn embedded_msgpack_is_unpacked_and_odd_keys_stringified() {
    let mut inner = Vec::new();
    rmpv::encode::write_value(
        &mut inner,
        &Value::Map(vec![(Value::from("a"), Value::from(1))]),
    )
    .expect("pack");
    let value = Value::Map(vec![
        (Value::from(1), Value::Ext(101, inner)),
        (Value::Binary(b"k".to_vec()), Value::Nil),
        (Value::Boolean(true), Value::F64(f64::NAN)),
    ]);
    assert_eq!(
        value_to_json(&value),
        json!({"1": {"a": 1}, "k": null, "true": "NaN"})
    );
}

#[test]
fn error_kinds_read_as_words() {
    use lymph_proto::v1::CallError;
    let err = |kind: ErrorKind, ty: &str| CallError {
        kind: kind as i32,
        r#type: ty.to_owned(),
        message: "boom".to_owned(),
    };
    assert_eq!(
        call_error(&err(ErrorKind::UnknownMethod, "")),
        "unknown method: boom"
    );
    assert_eq!(
        call_error(&err(ErrorKind::RemoteError, "ValueError")),
        "remote error ValueError: boom"
    );
    assert_eq!(
        call_error(&err(ErrorKind::DeadlineExceeded, "")),
        "deadline exceeded: boom"
    );
}

#[test]
fn short_ids_cut_at_ten() {
    assert_eq!(short("0123456789abcdef", 10), "0123456789");
    assert_eq!(short("abc", 10), "abc");
}
