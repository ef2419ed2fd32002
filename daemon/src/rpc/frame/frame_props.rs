//! Properties of the lymph frame codec on mutated messages (through the
//! fuzzer's entry, `crate::fuzz::frame`: no panic, a typed error, what
//! decodes encodes back to itself) and of the skip-parser against rmpv.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use super::decode_error_body;
use super::skip::{SkipError, check_one_value, skip_value};
use crate::fuzz::{self, Rng, mutate, mutate_frames};

#[test]
fn the_seeds_decode_and_round_trip() {
    for seed in fuzz::seeds::frame() {
        assert_eq!(fuzz::frame(&seed), Ok(()), "{seed:?}");
    }
}

/// Whether the skip-parser and rmpv agree that `bytes` is exactly one
/// MessagePack value (within rmpv's depth limit, which the inputs here stay
/// under). rmpv reads the never-used marker 0xc1 as a value; the skip-parser
/// refuses it, as Python's msgpack does.
fn agree_with_rmpv(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    let rmpv = rmpv::decode::read_value_ref(&mut rest).is_ok() && rest.is_empty();
    match check_one_value(bytes) {
        Ok(()) => rmpv,
        Err(SkipError::InvalidMarker) => true,
        Err(_) => !rmpv,
    }
}

/// ERROR bodies as read before they were walked in place (an `rmpv` tree,
/// ~40 bytes per byte of a body of small values): the reference.
fn error_body_by_rmpv(body: &[u8]) -> (String, String) {
    let Ok(rmpv::Value::Map(entries)) = rmpv::decode::read_value(&mut &body[..]) else {
        return (String::new(), String::new());
    };
    let as_text = |value: &rmpv::Value| match value {
        rmpv::Value::String(s) => s.as_str().map(str::to_owned),
        rmpv::Value::Binary(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(key, _)| as_text(key).as_deref() == Some(name))
            .and_then(|(_, value)| as_text(value))
            .unwrap_or_default()
    };
    (field("type"), field("message"))
}

/// Valid MessagePack, mutated: bodies and headers as peers could send them.
fn msgpack_seeds() -> Vec<Vec<u8>> {
    fuzz::seeds::frame()
        .into_iter()
        .flat_map(|frames| [frames[4].to_vec(), frames[5].to_vec()])
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn mutated_messages(seed in any::<u64>(), which in 0usize..16) {
        let seeds = fuzz::seeds::frame();
        let mut rng = Rng::new(seed);
        let frames = mutate_frames(&mut rng, &seeds[which % seeds.len()]);
        let _ = fuzz::frame(&frames);
    }

    #[test]
    fn random_headers_and_bodies(headers in vec(any::<u8>(), 0..80), body in vec(any::<u8>(), 0..80)) {
        let mut frames = fuzz::seeds::frame().swap_remove(0);
        frames[4] = Bytes::from(headers);
        frames[5] = Bytes::from(body);
        let _ = fuzz::frame(&frames);
    }

    /// The hand-written skip-parser that checks every body agrees with
    /// rmpv on what is one value.
    #[test]
    fn the_skip_parser_agrees_with_rmpv(seed in any::<u64>(), which in 0usize..16) {
        let seeds = msgpack_seeds();
        let bytes = mutate(&mut Rng::new(seed), &seeds[which % seeds.len()]);
        prop_assert!(agree_with_rmpv(&bytes), "{:02x?}", bytes);
    }

    #[test]
    fn the_skip_parser_agrees_with_rmpv_on_random_bytes(bytes in vec(any::<u8>(), 0..64)) {
        prop_assert!(agree_with_rmpv(&bytes), "{:02x?}", bytes);
    }

    /// The in-place reader of ERROR bodies reads what rmpv reads (but for
    /// the unused marker 0xc1, which rmpv takes for nil).
    #[test]
    fn error_bodies_read_as_rmpv_reads_them(seed in any::<u64>(), which in 0usize..16) {
        let mut seeds = msgpack_seeds();
        seeds.push(super::encode_error_body("ProbeError", "bad input").to_vec());
        seeds.push(b"\x82\xc4\x07message\xc4\x09bad input\xc4\x04type\xc4\x0aProbeError".to_vec());
        let body = mutate(&mut Rng::new(seed), &seeds[which % seeds.len()]);
        if skip_value(&body, 0).is_ok() {
            prop_assert_eq!(decode_error_body(&body), error_body_by_rmpv(&body), "{:02x?}", body);
        } else {
            prop_assert_eq!(decode_error_body(&body), (String::new(), String::new()));
        }
    }
}
