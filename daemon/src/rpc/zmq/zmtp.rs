//! ZMTP 3.0 with NULL security, as lymph's ROUTER sockets speak it over TCP:
//! the greeting, READY (socket type and identity), and frames both ways.
//! Frame and message limits are checked from each frame's header before its
//! bytes are buffered. Used by both sides of the transport: `receiver` (the
//! bound port) and `conn` (connections to peers).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::guard::check_frame;
use crate::rpc::frame::Limits;

/// Length of a ZMTP 3 greeting.
pub(super) const GREETING: usize = 64;

/// Most frames in one message. lymph's messages have 5 (6 with the identity
/// a ROUTER puts first); past this a message is not lymph's and the
/// connection is cut, before its parts pile up: an empty frame costs the
/// peer 2 bytes and the reader a slot, which no byte limit would count.
pub(super) const MAX_MESSAGE_FRAMES: usize = 16;

/// Sends our greeting and READY and reads the peer's greeting; what follows
/// in `buf` is the peer's frames. Ours goes first and whole: libzmq sends its
/// greeting in parts and waits for the peer's signature in between.
pub(super) async fn handshake(
    stream: &mut TcpStream,
    identity: &str,
    buf: &mut BytesMut,
) -> Result<(), String> {
    let mut hello = greeting();
    hello.extend_from_slice(&ready(identity));
    stream.write_all(&hello).await.map_err(|e| e.to_string())?;
    while buf.len() < GREETING {
        if stream.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed during the handshake".to_owned());
        }
    }
    check_greeting(&buf[..GREETING])?;
    buf.advance(GREETING);
    Ok(())
}

/// Appends one message's frames to `out`, all but the last marked MORE.
pub(super) fn encode_message<F: AsRef<[u8]>>(frames: &[F], out: &mut BytesMut) {
    let last = frames.len().saturating_sub(1);
    for (i, frame) in frames.iter().enumerate() {
        let frame = frame.as_ref();
        let more = if i < last { 0x01 } else { 0x00 };
        match u8::try_from(frame.len()) {
            Ok(short) => {
                out.reserve(2 + frame.len());
                out.put_u8(more);
                out.put_u8(short);
            }
            Err(_) => {
                out.reserve(9 + frame.len());
                out.put_u8(more | 0x02);
                out.put_u64(frame.len() as u64);
            }
        }
        out.put_slice(frame);
    }
}

/// Our greeting: ZMTP 3.0, NULL mechanism, not a server.
pub(super) fn greeting() -> Vec<u8> {
    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
    greeting.extend_from_slice(b"NULL");
    greeting.resize(GREETING, 0);
    greeting
}

/// Our READY: a ROUTER whose identity is our endpoint (lymph routes by it).
pub(super) fn ready(endpoint: &str) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    for (name, value) in [
        ("Socket-Type", b"ROUTER".as_slice()),
        ("Identity", endpoint.as_bytes()),
    ] {
        body.push(name.len() as u8);
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut frame = match u8::try_from(body.len()) {
        Ok(short) => vec![0x04, short],
        Err(_) => {
            let mut long = vec![0x06];
            long.extend_from_slice(&(body.len() as u64).to_be_bytes());
            long
        }
    };
    frame.extend_from_slice(&body);
    frame
}

pub(super) fn check_greeting(greeting: &[u8]) -> Result<(), String> {
    if greeting[0] != 0xff || greeting[9] & 0x01 != 0x01 {
        return Err("not a ZMTP greeting".to_owned());
    }
    if greeting[10] < 3 {
        return Err(format!("ZMTP {}.x is not supported", greeting[10]));
    }
    let mechanism = &greeting[12..32];
    if !mechanism.starts_with(b"NULL") || mechanism[4..].iter().any(|b| *b != 0) {
        return Err("only the NULL security mechanism is supported".to_owned());
    }
    Ok(())
}

/// A peer's command: READY tells its identity (returns `true`); ERROR ends
/// the connection; others (PING of ZMTP 3.1, which lymph does not send) are
/// ignored.
pub(super) fn on_command(body: &[u8], identity: &mut Option<Bytes>) -> Result<bool, String> {
    let Some((&name_len, rest)) = body.split_first() else {
        return Err("empty zmtp command".to_owned());
    };
    let Some((name, mut properties)) = rest.split_at_checked(usize::from(name_len)) else {
        return Err("truncated zmtp command".to_owned());
    };
    match name {
        b"READY" => {
            while let Some((&len, rest)) = properties.split_first() {
                let (name, rest) = rest
                    .split_at_checked(usize::from(len))
                    .ok_or("truncated READY property")?;
                let (size, rest) = rest.split_at_checked(4).ok_or("truncated READY property")?;
                let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]);
                let (value, rest) = rest
                    .split_at_checked(size as usize)
                    .ok_or("truncated READY property")?;
                if name.eq_ignore_ascii_case(b"Identity") && !value.is_empty() {
                    *identity = Some(Bytes::copy_from_slice(value));
                }
                properties = rest;
            }
            Ok(true)
        }
        b"ERROR" => Err(format!(
            "the peer sent ERROR: {}",
            String::from_utf8_lossy(properties.get(1..).unwrap_or_default())
        )),
        _ => Ok(false),
    }
}

/// The routing identity of a peer that announced none (a ROUTER makes one up).
pub(super) fn anonymous() -> Bytes {
    let mut id = vec![0];
    id.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    Bytes::from(id)
}

/// One frame or a whole message read off the connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame {
    Command(Bytes),
    Message(Vec<Bytes>),
}

/// Room for a lymph message's parts (5 frames) and the sender identity the
/// receive side puts in front: one allocation per message.
const PARTS_CAPACITY: usize = 6;

/// Splits a connection's bytes into ZMTP frames, refusing any frame or
/// message beyond the limits as soon as its header says so.
pub(super) struct Reader {
    limits: Limits,
    /// The parts of the message under way.
    parts: Vec<Bytes>,
    message_bytes: u64,
    /// Bytes the buffer must hold for the frame under way.
    pub(super) wanted: usize,
}

impl Reader {
    pub(super) fn new(limits: Limits) -> Reader {
        Reader {
            limits,
            parts: Vec::with_capacity(PARTS_CAPACITY),
            message_bytes: 0,
            wanted: 0,
        }
    }

    /// The next command or complete message in `buf`, `None` until more bytes arrive.
    pub(super) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, String> {
        loop {
            let Some(&flags) = buf.first() else {
                self.wanted = 0;
                return Ok(None);
            };
            if flags & 0xf8 != 0 {
                return Err(format!("bad zmtp frame flags {flags:#04x}"));
            }
            let (more, long, command) = (flags & 0x01 != 0, flags & 0x02 != 0, flags & 0x04 != 0);
            let header = if long { 9 } else { 2 };
            if buf.len() < header {
                self.wanted = header;
                return Ok(None);
            }
            let len = if long {
                let mut size = [0u8; 8];
                size.copy_from_slice(&buf[1..9]);
                u64::from_be_bytes(size)
            } else {
                u64::from(buf[1])
            };
            check_frame(&self.limits, command, len, self.message_bytes)?;
            // Within the limits, so it fits in memory.
            let total = header + len as usize;
            if buf.len() < total {
                self.wanted = total;
                return Ok(None);
            }
            buf.advance(header);
            let body = buf.split_to(len as usize).freeze();
            if command {
                return Ok(Some(Frame::Command(body)));
            }
            if self.parts.len() == MAX_MESSAGE_FRAMES {
                return Err(format!(
                    "message of more than {MAX_MESSAGE_FRAMES} frames (lymph's have 5)"
                ));
            }
            self.message_bytes += len;
            self.parts.push(body);
            if !more {
                self.message_bytes = 0;
                let next = Vec::with_capacity(PARTS_CAPACITY);
                return Ok(Some(Frame::Message(std::mem::replace(
                    &mut self.parts,
                    next,
                ))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_frame_bytes: 100,
        max_message_bytes: 150,
    };

    fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![flags, u8::try_from(body.len()).expect("short")];
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn messages_come_whole_whatever_the_reads() {
        let mut bytes = frame(0x01, b"id");
        bytes.extend(frame(0x00, b"body"));
        bytes.extend(frame(0x04, b"\x04PING"));
        let mut reader = Reader::new(LIMITS);
        let mut buf = BytesMut::new();
        let mut seen = Vec::new();
        for byte in bytes {
            buf.extend_from_slice(&[byte]);
            while let Some(frame) = reader.next(&mut buf).expect("valid") {
                seen.push(frame);
            }
        }
        assert_eq!(
            seen,
            [
                Frame::Message(vec![Bytes::from_static(b"id"), Bytes::from_static(b"body")]),
                Frame::Command(Bytes::from_static(b"\x04PING")),
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn limits_are_enforced_from_the_header() {
        let mut reader = Reader::new(LIMITS);
        let mut huge = BytesMut::from(&[0x02u8][..]);
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert!(
            reader.next(&mut huge).is_err(),
            "a 1 TB frame is refused unread"
        );
        let mut reader = Reader::new(LIMITS);
        let mut message = BytesMut::from(&frame(0x01, &[0; 100])[..]);
        message.extend_from_slice(&[0x00, 60]);
        let first = reader.next(&mut message);
        assert!(
            first.is_err(),
            "100 + 60 bytes is over the message limit: {first:?}"
        );
        let mut bad = BytesMut::from(&[0x80u8, 0][..]);
        assert!(
            Reader::new(LIMITS).next(&mut bad).is_err(),
            "reserved flag bits"
        );
    }

    #[test]
    fn encoded_messages_read_back() {
        let long = Bytes::from(vec![7u8; 300]);
        let frames = [Bytes::from_static(b"id"), Bytes::new(), long.clone()];
        let mut buf = BytesMut::new();
        encode_message(&frames, &mut buf);
        let limits = Limits {
            max_frame_bytes: 1000,
            max_message_bytes: 1000,
        };
        let read = Reader::new(limits).next(&mut buf).expect("valid");
        assert_eq!(read, Some(Frame::Message(frames.to_vec())));
        assert!(buf.is_empty());
    }

    #[test]
    fn ready_carries_the_identity_both_ways() {
        let ours = ready("tcp://127.0.0.1:4000");
        assert_eq!(ours[0], 0x04);
        let mut identity = None;
        assert_eq!(
            on_command(&ours[2..], &mut identity),
            Ok(true),
            "our READY parses"
        );
        assert_eq!(
            identity.as_deref(),
            Some(b"tcp://127.0.0.1:4000".as_slice())
        );
        assert!(on_command(b"\x05READY\x08Identity\x00\x00\x00\xff", &mut identity).is_err());
        assert!(on_command(b"\x05ERROR\x03bad", &mut identity).is_err());
        check_greeting(&greeting()).expect("our greeting is valid");
        let mut curve = greeting();
        curve[12..17].copy_from_slice(b"CURVE");
        assert!(check_greeting(&curve).is_err());
    }
}
