//! The ZMTP readers as a fuzzer drives them (`crate::fuzz`): a peer's side of
//! a connection, as bytes, read by `Reader` as `receiver` reads it (greeting,
//! frames, commands, messages decoded by the lymph codec) and scanned by the
//! log ports' `Scanner` alongside. Checks that buffered bytes never exceed
//! one frame within the limits, whatever a header announces, and that the
//! `Scanner` refuses nothing the `Reader` takes.

use bytes::{Bytes, BytesMut};

use super::guard::Scanner;
use super::zmtp::{self, Frame, GREETING, Reader};
use crate::rpc::frame::Limits;
use crate::rpc::frame::{self, Headers, Message, MessageType};

/// Small limits, so mutated lengths cross them often.
pub(crate) const LIMITS: Limits = Limits {
    max_frame_bytes: 1024,
    max_message_bytes: 2048,
};

/// The most the reader may hold for one frame: its header and a body within
/// the larger of the frame limit and the command limit (64 KiB).
const MOST_BUFFERED: usize = 9 + 64 * 1024;

/// Reads `input` as one connection's bytes arriving in `chunk`-byte reads.
/// `Ok` with the frames read when it all parses, `Err` with the reason the
/// connection would be cut.
pub(crate) fn read_connection(input: &[u8], chunk: usize) -> Result<usize, String> {
    let Some((greeting, rest)) = input.split_at_checked(GREETING) else {
        return Err("closed during the handshake".to_owned());
    };
    zmtp::check_greeting(greeting)?;
    let mut scanner = Scanner::new(LIMITS);
    scanner.feed(greeting)?;
    let mut reader = Reader::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut identity: Option<Bytes> = None;
    let mut read = 0;
    for piece in rest.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        let scanned = scanner.feed(piece);
        let frames = frames_in(&mut reader, &mut buf, &mut identity);
        assert!(
            buf.len() <= MOST_BUFFERED && reader.wanted <= MOST_BUFFERED,
            "the reader holds {} bytes and wants {}: more than one frame within the limits",
            buf.len(),
            reader.wanted
        );
        match (frames, scanned) {
            (Ok(n), Ok(())) => read += n,
            (Err(reason), _) => return Err(reason),
            (Ok(_), Err(reason)) => panic!("the scanner refused what the reader took: {reason}"),
        }
    }
    Ok(read)
}

/// The frames complete in `buf`, handled as `receiver` handles them.
fn frames_in(
    reader: &mut Reader,
    buf: &mut BytesMut,
    identity: &mut Option<Bytes>,
) -> Result<usize, String> {
    let mut n = 0;
    while let Some(frame) = reader.next(buf)? {
        n += 1;
        match frame {
            Frame::Command(body) => {
                zmtp::on_command(&body, identity)?;
            }
            Frame::Message(parts) => {
                let from = identity.get_or_insert_with(zmtp::anonymous).clone();
                let mut frames = vec![from];
                frames.extend(parts);
                // The codec's own checks run in `fuzz::frame`; here only
                // that what the reader hands on is within the limits.
                if frame::check_limits(&frames[1..], &LIMITS).is_err() {
                    panic!("the reader handed on a message beyond the limits");
                }
                let _ = frame::decode(&frames, &LIMITS);
            }
        }
    }
    Ok(n)
}

/// Connections as lymph peers open them: greeting, READY, requests (one
/// with a long frame) and a command.
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let request = |subject: &str, body: &[u8]| Message {
        id: "bc99e39af2f84036b78568b6a3cae04e".to_owned(),
        kind: MessageType::Req,
        subject: subject.to_owned(),
        headers: Headers {
            trace_id: Some("tv-trace-0001".to_owned()),
            ..Headers::default()
        },
        body: Bytes::copy_from_slice(body),
    };
    let connection = |messages: &[Message], ping: bool| {
        let mut out = zmtp::greeting();
        out.extend(zmtp::ready("tcp://127.0.0.1:4000"));
        let mut frames = BytesMut::new();
        for message in messages {
            // Frame 0 is the identity a ROUTER puts first on receipt.
            let encoded = frame::encode("", message);
            zmtp::encode_message(&encoded[1..], &mut frames);
        }
        out.extend_from_slice(&frames);
        if ping {
            out.extend([0x04, 5, 4, b'P', b'I', b'N', b'G']);
        }
        out
    };
    let mut long = vec![0xc5, 0x01, 0x2c];
    long.extend([7u8; 300]);
    vec![
        connection(&[request("Greeting.greet", b"\x81\xa4name\xa3Joe")], false),
        connection(
            &[
                request("lymph.ping", b"\x81\xa7payload\xa0"),
                request("Echo.echo", &long),
            ],
            true,
        ),
        zmtp::greeting(),
    ]
}
