//! Properties of the instance znode decoder on random and mutated JSON
//! (through the fuzzer's entry, `crate::fuzz::node`: no panic, a typed
//! error, what decodes encodes back to itself) and of generated instances.

use proptest::collection::vec;
use proptest::prelude::*;

use super::node::{decode, encode};
use crate::fuzz::{self, Rng, mutate};
use crate::registry::Instance;

#[test]
fn the_seeds_decode_and_round_trip() {
    for seed in fuzz::seeds::node() {
        assert_eq!(
            fuzz::node(&seed),
            Ok(()),
            "{}",
            String::from_utf8_lossy(&seed)
        );
    }
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn mutated_nodes(seed in any::<u64>(), which in 0usize..2) {
        let seeds = fuzz::seeds::node();
        let data = mutate(&mut Rng::new(seed), &seeds[which % seeds.len()]);
        let _ = fuzz::node(&data);
    }

    #[test]
    fn random_data(data in vec(any::<u8>(), 0..200)) {
        let _ = fuzz::node(&data);
    }

    #[test]
    fn json_like_text(data in r#"\{("[a-z_]{1,12}": ("[^"\\]{0,20}"|null|-?[0-9]{1,20}|\[\]|\{\}|true), ?){0,6}\}"#) {
        let _ = fuzz::node(data.as_bytes());
    }

    /// Any instance we register reads back as itself.
    #[test]
    fn generated_instances_round_trip(
        identity in "[0-9a-f]{1,64}", host in "[a-z0-9.-]{1,40}", port in 1u16..,
        version in proptest::option::of("[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"),
        ip in proptest::option::of(text()), hostname in proptest::option::of(text()),
        app_name in proptest::option::of(text()),
    ) {
        let instance = Instance {
            service: "Greeting".to_owned(),
            id: "n1".to_owned(),
            identity,
            endpoint: format!("tcp://{host}:{port}"),
            version,
            ip,
            hostname,
            log_endpoint: None,
            app_name,
        };
        let back = decode("Greeting", "n1", &encode(&instance)).expect("decodes");
        prop_assert_eq!(back, instance);
    }
}
