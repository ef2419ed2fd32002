//! Properties of the ZMTP readers on random and mutated connections, through
//! the fuzzer's entry (`zmtp_fuzz`): no panic, a refusal with its reason,
//! never more buffered than one frame within the limits whatever a header
//! announces, and the log ports' scanner refusing nothing the reader takes.

use proptest::collection::vec;
use proptest::prelude::*;

use super::zmtp::{GREETING, MAX_MESSAGE_FRAMES, greeting};
use super::zmtp_fuzz::{LIMITS, read_connection, seeds};
use crate::fuzz::{Rng, mutate};

/// Our greeting followed by `frames`.
fn connection(frames: &[u8]) -> Vec<u8> {
    let mut input = greeting();
    input.extend_from_slice(frames);
    input
}

#[test]
fn the_seeds_are_read_whole_whatever_the_reads() {
    for seed in seeds() {
        for chunk in [1, 7, 64, 4096] {
            let read = read_connection(&seed, chunk);
            assert!(read.is_ok(), "chunk {chunk}: {read:?}");
        }
    }
}

/// Regression: empty frames of one message (2 bytes each, flag MORE) were
/// each kept as a part and counted as 0 bytes against the message limit, so
/// a peer could grow the reader without bound. Now the connection is cut
/// past `MAX_MESSAGE_FRAMES`.
#[test]
fn a_message_of_endless_empty_frames_is_cut() {
    let frames: Vec<u8> = [0x01, 0x00].repeat(100_000);
    let error = read_connection(&connection(&frames), 64 * 1024).expect_err("cut");
    assert!(error.contains("frames"), "{error}");
    let mut lymphs = [0x01, 0x00].repeat(MAX_MESSAGE_FRAMES - 1);
    lymphs.extend([0x00, 0x00]);
    assert!(
        read_connection(&connection(&lymphs), 3).is_ok(),
        "{MAX_MESSAGE_FRAMES} frames are still one message"
    );
}

fn long_header(flags: u8, len: u64) -> Vec<u8> {
    let mut header = vec![flags];
    header.extend(len.to_be_bytes());
    header
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn random_bytes_after_a_greeting(rest in vec(any::<u8>(), 0..600), chunk in 1usize..80) {
        let _ = read_connection(&connection(&rest), chunk);
    }

    #[test]
    fn random_greetings(input in vec(any::<u8>(), 0..(GREETING + 16))) {
        let _ = read_connection(&input, 16);
    }

    #[test]
    fn mutated_connections(seed in any::<u64>(), which in 0usize..3, chunk in 1usize..200) {
        let seeds = seeds();
        let input = mutate(&mut Rng::new(seed), &seeds[which % seeds.len()]);
        let _ = read_connection(&input, chunk);
    }

    /// A frame or a command announcing more than the limits is refused from
    /// its header, none of its bytes awaited (the reader's checks would
    /// panic past one frame's worth buffered).
    #[test]
    fn huge_announced_lengths_are_refused_unread(
        len in (64 * 1024 + 1u64)..=u64::MAX,
        flags in prop_oneof![Just(0x02u8), Just(0x03), Just(0x06), Just(0x07)],
        tail in vec(any::<u8>(), 0..64),
    ) {
        let mut frames = long_header(flags, len);
        frames.extend(tail);
        let error = read_connection(&connection(&frames), 5).expect_err("refused");
        prop_assert!(error.contains("over the limit"), "{}", error);
    }

    #[test]
    fn messages_past_the_limit_are_refused(
        sizes in vec(0u64..=(LIMITS.max_frame_bytes as u64), 1..12),
    ) {
        let mut frames = Vec::new();
        let last = sizes.len() - 1;
        for (i, size) in sizes.iter().enumerate() {
            frames.extend(long_header(if i < last { 0x03 } else { 0x02 }, *size));
            frames.extend(std::iter::repeat_n(0xc0, *size as usize));
        }
        let total: u64 = sizes.iter().sum();
        let read = read_connection(&connection(&frames), 1000);
        if total > LIMITS.max_message_bytes as u64 {
            prop_assert!(read.is_err(), "{} bytes in all", total);
        } else {
            prop_assert_eq!(read, Ok(1));
        }
    }
}
