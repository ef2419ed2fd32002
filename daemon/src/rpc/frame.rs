//! The lymph 0.15 frame codec: six ZeroMQ frames `[identity, id, type,
//! subject, headers, body]` to and from a typed `Message` (`docs/wire.md`
//! §3.3). Pure, no IO, never panics on input; bodies stay opaque bytes.

#[cfg(test)]
mod frame_props;
mod headers;
pub(crate) mod skip;
#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use headers::{
    Headers, NIL, cancel_body, decode_cancel_body, decode_error_body, encode_error_body,
    ping_payload,
};

/// The `type` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Req,
    Rep,
    Ack,
    Nack,
    Error,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Req => "REQ",
            MessageType::Rep => "REP",
            MessageType::Ack => "ACK",
            MessageType::Nack => "NACK",
            MessageType::Error => "ERROR",
        }
    }

    pub fn parse(frame: &[u8]) -> Option<MessageType> {
        Some(match frame {
            b"REQ" => MessageType::Req,
            b"REP" => MessageType::Rep,
            b"ACK" => MessageType::Ack,
            b"NACK" => MessageType::Nack,
            b"ERROR" => MessageType::Error,
            _ => return None,
        })
    }
}

/// One lymph message without its identity frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 32 lowercase hex (uuid4), fresh for every message.
    pub id: String,
    pub kind: MessageType,
    /// `Interface.method` for REQ; the request's id for every reply.
    pub subject: String,
    pub headers: Headers,
    /// Exactly one MessagePack value, never re-encoded.
    pub body: Bytes,
}

/// Size limits applied on receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
}

/// Why a received message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("expected 6 frames, got {0}")]
    FrameCount(usize),
    #[error("frame {index} is {size} bytes, the limit is {limit}")]
    FrameTooLarge {
        index: usize,
        size: usize,
        limit: usize,
    },
    #[error("message is {size} bytes, the limit is {limit}")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("the {0} frame is not valid utf-8")]
    NotUtf8(&'static str),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("bad headers: {0}")]
    BadHeaders(String),
    #[error("the body is not one msgpack value: {0}")]
    BadBody(String),
}

/// A new message id: uuid4 as 32 lowercase hex, as lymph makes them.
///
/// Made without a syscall: `Uuid::new_v4` asks the kernel for randomness on
/// every call (`getrandom`, 4% of a daemon's CPU under load, two ids per
/// call). Instead one random seed per process and a counter, each mixed by
/// SplitMix64 (a bijection, so the low half alone never repeats within the
/// process; the random seed keeps processes apart). Ids only have to be
/// unique, not unpredictable: lymph matches replies by them.
pub fn new_message_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (high_seed, low_seed) = *SEED.get_or_init(|| {
        let seed = uuid::Uuid::new_v4().as_u64_pair();
        (seed.0, seed.1)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let high = splitmix64(high_seed ^ n.rotate_left(32));
    let low = splitmix64(low_seed.wrapping_add(n));
    let bytes = ((u128::from(high) << 64) | u128::from(low)).to_be_bytes();
    let mut text = [0u8; uuid::fmt::Simple::LENGTH];
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .simple()
        .encode_lower(&mut text)
        .to_owned()
}

/// SplitMix64's output function: a bijection on u64 that scatters its input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Checks the size limits of a received multipart message, before decoding.
pub fn check_limits<F: AsRef<[u8]>>(
    frames: impl IntoIterator<Item = F>,
    limits: &Limits,
) -> Result<(), FrameError> {
    let mut total: usize = 0;
    for (index, frame) in frames.into_iter().enumerate() {
        let frame = frame.as_ref();
        if frame.len() > limits.max_frame_bytes {
            return Err(FrameError::FrameTooLarge {
                index,
                size: frame.len(),
                limit: limits.max_frame_bytes,
            });
        }
        total = total.saturating_add(frame.len());
    }
    if total > limits.max_message_bytes {
        return Err(FrameError::MessageTooLarge {
            size: total,
            limit: limits.max_message_bytes,
        });
    }
    Ok(())
}

/// Decodes a message as delivered by a ROUTER: frame 0 is the sender identity.
pub fn decode(frames: &[Bytes], limits: &Limits) -> Result<(String, Message), FrameError> {
    check_limits(frames, limits)?;
    let [identity, id, kind, subject, headers, body] = frames else {
        return Err(FrameError::FrameCount(frames.len()));
    };
    let identity = utf8(identity, "identity")?;
    let id = utf8(id, "message id")?;
    let kind = MessageType::parse(kind)
        .ok_or_else(|| FrameError::UnknownType(String::from_utf8_lossy(kind).into_owned()))?;
    let subject = utf8(subject, "subject")?;
    let headers = Headers::decode(headers)?;
    skip::check_one_value(body).map_err(|e| FrameError::BadBody(format!("{e:?}")))?;
    let message = Message {
        id,
        kind,
        subject,
        headers,
        body: body.clone(),
    };
    Ok((identity, message))
}

/// Encodes a message for a ROUTER send: frame 0 is the destination identity.
pub fn encode(dest_identity: &str, message: &Message) -> Vec<Bytes> {
    vec![
        Bytes::copy_from_slice(dest_identity.as_bytes()),
        Bytes::copy_from_slice(message.id.as_bytes()),
        Bytes::from_static(message.kind.as_str().as_bytes()),
        Bytes::copy_from_slice(message.subject.as_bytes()),
        message.headers.encode(),
        message.body.clone(),
    ]
}

fn utf8(frame: &Bytes, name: &'static str) -> Result<String, FrameError> {
    std::str::from_utf8(frame)
        .map(str::to_owned)
        .map_err(|_| FrameError::NotUtf8(name))
}
