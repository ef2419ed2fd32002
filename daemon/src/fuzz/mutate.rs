//! A seeded PRNG and the mutations a fuzzer applies to valid encodings: bit
//! flips, interesting bytes, truncations, insertions, deletions, duplicated
//! ranges and length fields set to the edges of their widths (huge announced
//! lengths). Deterministic for a seed, so any failure replays.

use bytes::Bytes;

/// xorshift64*: fast, good enough to pick mutations, reproducible from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Never zero (xorshift's one fixed point), and nearby seeds diverge.
        Rng(splitmix(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Values written into length fields: the edges of 1-, 2-, 4- and 8-byte
/// widths, the sizes around the fuzz limits, and lengths no memory holds.
const LENGTHS: [u64; 16] = [
    0,
    1,
    0x7f,
    0xff,
    0x100,
    1023,
    1024,
    1025,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 63,
    u64::MAX,
];

/// Bytes that mean something to the parsers: MessagePack's unused marker,
/// its 32-bit map/array/bin/str markers, ZMTP flag bits, JSON and YAML syntax.
const INTERESTING: [u8; 16] = [
    0x00, 0xff, 0x7f, 0x80, 0xc1, 0xdf, 0xdd, 0xc6, 0xdb, 0x01, 0x02, 0x04, b'"', b'{', b':', b'\n',
];

/// A copy of `input` with one to four random mutations.
pub fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, &mut out);
    }
    out
}

fn mutate_once(rng: &mut Rng, out: &mut Vec<u8>) {
    let len = out.len();
    let at = rng.below(len + 1);
    match rng.below(9) {
        0 if len > 0 => out[at.min(len - 1)] ^= 1 << rng.below(8),
        1 if len > 0 => out[at.min(len - 1)] = INTERESTING[rng.below(INTERESTING.len())],
        2 => out.truncate(at),
        3 => {
            let n = 1 + rng.below(16);
            let inserted = rng.bytes(n);
            out.splice(at..at, inserted);
        }
        4 => {
            let end = (at + 1 + rng.below(16)).min(len);
            out.drain(at.min(end)..end);
        }
        5 if len > 0 => {
            // A range repeated elsewhere: repeated frames, keys, entries.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            let chunk = out[start..end].to_vec();
            let to = rng.below(len + 1);
            out.splice(to..to, chunk);
        }
        6 | 7 => {
            // A length field: big-endian, of one of MessagePack's and ZMTP's widths.
            let width = [1usize, 2, 4, 8][rng.below(4)];
            let value = LENGTHS[rng.below(LENGTHS.len())].to_be_bytes();
            let bytes = &value[8 - width..];
            let end = (at + width).min(len);
            out.splice(at.min(end)..end, bytes.iter().copied());
        }
        _ => {
            let n = rng.below(32);
            out.extend(rng.bytes(n));
        }
    }
}

/// A mutated copy of a multipart message: its frames mutated (most often the
/// headers and the body, the MessagePack ones), sometimes one dropped or added.
pub fn mutate_frames(rng: &mut Rng, frames: &[Bytes]) -> Vec<Bytes> {
    let mut out = frames.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(10) {
            0 if !out.is_empty() => {
                out.remove(rng.below(out.len()));
            }
            1 => {
                let n = rng.below(16);
                out.insert(rng.below(out.len() + 1), Bytes::from(rng.bytes(n)));
            }
            _ if !out.is_empty() => {
                // Headers (4) and body (5) are what the codec parses most.
                let index = match rng.below(4) {
                    0 => rng.below(out.len()),
                    1 | 2 => 5.min(out.len() - 1),
                    _ => 4.min(out.len() - 1),
                };
                out[index] = Bytes::from(mutate(rng, &out[index]));
            }
            _ => {}
        }
    }
    out
}
