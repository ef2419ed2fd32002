//! The 100-byte bodies every path carries: RPC arguments whose MessagePack
//! encoding is exactly `BODY_BYTES`, and event bodies that also carry the
//! emitter's timestamp so the handler can time the hop. Pure.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The size of every request and event body, in bytes.
pub const BODY_BYTES: usize = 100;

/// `{"<field>": "<text>"}` in MessagePack: fixmap(1) + fixstr key + str8 header
/// + the text. The text this returns makes the whole body `BODY_BYTES` long.
pub fn text_for(field: &str) -> String {
    let overhead = 1 + (1 + field.len()) + 2;
    "x".repeat(BODY_BYTES.saturating_sub(overhead))
}

/// An event of the benchmark: which worker sent it, its sequence number and
/// its send time (16 hex digits each, so the size never varies), and padding.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tick {
    pub w: u8,
    pub s: String,
    pub t: String,
    pub p: String,
}

/// Padding that makes an encoded `Tick` `BODY_BYTES` long: fixmap(4), four
/// one-letter keys (2 bytes each), `w` as a fixint, two fixstr(16) and a str8.
fn tick_padding() -> &'static str {
    static PAD: OnceLock<String> = OnceLock::new();
    PAD.get_or_init(|| {
        let fixed = 1 + 4 * 2 + 1 + 2 * 17 + 2;
        "p".repeat(BODY_BYTES.saturating_sub(fixed))
    })
}

impl Tick {
    pub fn new(worker: usize, seq: u64, sent_ns: u64) -> Tick {
        Tick {
            w: u8::try_from(worker).unwrap_or(u8::MAX),
            s: format!("{seq:016x}"),
            t: format!("{sent_ns:016x}"),
            p: tick_padding().to_owned(),
        }
    }

    pub fn seq(&self) -> u64 {
        u64::from_str_radix(&self.s, 16).unwrap_or(u64::MAX)
    }

    pub fn sent_ns(&self) -> u64 {
        u64::from_str_radix(&self.t, 16).unwrap_or(0)
    }
}

/// Nanoseconds since the first call in this process: the clock event bodies carry.
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let nanos = START.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// Time from `sent_ns` (on the `now_ns` clock) until now.
pub fn since(sent_ns: u64) -> Duration {
    Duration::from_nanos(now_ns().saturating_sub(sent_ns))
}

/// A raw 100-byte body for the bare AMQP loop: worker, sequence, send time, padding.
pub fn raw_tick(worker: usize, seq: u64, sent_ns: u64) -> Vec<u8> {
    let mut body = vec![0x5a; BODY_BYTES];
    body[0] = u8::try_from(worker).unwrap_or(u8::MAX);
    body[1..9].copy_from_slice(&seq.to_le_bytes());
    body[9..17].copy_from_slice(&sent_ns.to_le_bytes());
    body
}

/// (worker, sequence, send time) of a raw body; `None` when it is too short.
pub fn read_raw_tick(body: &[u8]) -> Option<(usize, u64, u64)> {
    let seq = u64::from_le_bytes(body.get(1..9)?.try_into().ok()?);
    let sent = u64::from_le_bytes(body.get(9..17)?.try_into().ok()?);
    Some((usize::from(*body.first()?), seq, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct EchoArgs<'a> {
        text: &'a str,
    }

    #[derive(Serialize)]
    struct GreetArgs<'a> {
        name: &'a str,
    }

    #[test]
    fn rpc_arguments_are_exactly_the_body_size() {
        let text = text_for("text");
        let body = rmp_serde::to_vec_named(&EchoArgs { text: &text }).expect("encodes");
        assert_eq!(body.len(), BODY_BYTES);
        let name = text_for("name");
        let body = rmp_serde::to_vec_named(&GreetArgs { name: &name }).expect("encodes");
        assert_eq!(body.len(), BODY_BYTES);
    }

    #[test]
    fn ticks_are_exactly_the_body_size_and_round_trip() {
        for (w, seq, t) in [(0, 0, 0), (63, u64::MAX, 123_456_789_012)] {
            let tick = Tick::new(w, seq, t);
            let body = rmp_serde::to_vec_named(&tick).expect("encodes");
            assert_eq!(body.len(), BODY_BYTES);
            let back: Tick = rmp_serde::from_slice(&body).expect("decodes");
            assert_eq!(
                (usize::from(back.w), back.seq(), back.sent_ns()),
                (w, seq, t)
            );
        }
        let raw = raw_tick(5, 7, 9);
        assert_eq!(raw.len(), BODY_BYTES);
        assert_eq!(read_raw_tick(&raw), Some((5, 7, 9)));
    }
}
