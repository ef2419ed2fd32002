//! Properties of the AMQP envelope decoder on random and mutated deliveries
//! (through the fuzzer's entry, `crate::fuzz::envelope`): no panic, a typed
//! error, and what decodes is re-published (a retried copy) unchanged.

use proptest::collection::vec;
use proptest::prelude::*;

use super::envelope::{EnvelopeError, decode};
use crate::fuzz::{self, Rng, mutate};

#[test]
fn the_seeds_decode_and_round_trip() {
    for seed in fuzz::seeds::envelope() {
        assert_eq!(fuzz::envelope(&seed), Ok(()), "{seed:02x?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn mutated_envelopes(seed in any::<u64>(), which in 0usize..3) {
        let seeds = fuzz::seeds::envelope();
        let payload = mutate(&mut Rng::new(seed), &seeds[which % seeds.len()]);
        let _ = fuzz::envelope(&payload);
    }

    #[test]
    fn random_payloads(payload in vec(any::<u8>(), 0..200)) {
        let _ = fuzz::envelope(&payload);
    }

    /// A map, array, str or bin announcing up to 4 G entries or bytes in a
    /// small delivery is an error at once, nothing allocated for it.
    #[test]
    fn huge_announced_lengths_are_errors(
        marker in prop_oneof![Just(0xdfu8), Just(0xdd), Just(0xdb), Just(0xc6)],
        len in 0x1000u32..,
        at_top in any::<bool>(),
        tail in vec(any::<u8>(), 0..32),
    ) {
        let mut payload = if at_top { vec![] } else { b"\x81\xa4body".to_vec() };
        payload.push(marker);
        payload.extend(len.to_be_bytes());
        payload.extend(tail);
        let error = decode(&payload).expect_err("refused");
        prop_assert!(
            matches!(error, EnvelopeError::Malformed(_) | EnvelopeError::NotAMap),
            "{:?}", error
        );
    }
}
