//! lymph's event envelope (`docs/wire.md` §4.5), pure: `{type, headers:
//! {trace_id, retry_count?, traceparent?}, body, source}` plus our `id`. We write every
//! string as msgpack str; we read str or bin (Python 2 sends bin). The body
//! is one msgpack value, spliced in and sliced out as raw bytes, never
//! re-encoded. Read in place, value by value (no tree of `rmpv` values: that
//! costs ~40 bytes per byte of a body of small values). Knows nothing of AMQP.

use bytes::Bytes;
use rmpv::ValueRef;
use rmpv::decode::read_value_ref;

use crate::events::Event;
use crate::rpc::frame::skip::{check_one_value, map_header, skip_value, text_bytes};
use crate::spans::{TraceParent, traceparent};

pub(crate) const CONTENT_TYPE: &str = "application/lymph+x-msgpack";
pub(crate) const CONTENT_ENCODING: &str = "binary";
/// The `headers` key of the span that emitted the event (lymphd's; W3C's
/// `traceparent` form).
pub(crate) const TRACEPARENT: &str = "traceparent";

/// An envelope as received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Incoming {
    /// `id` is ours when a lymphd emitted it, else made up from the content
    /// (stable across redeliveries and retries of one event).
    pub event: Event,
    /// `headers.retry_count`: present on retried copies.
    pub retry_count: Option<i64>,
    pub source: String,
    /// Headers other than `trace_id`/`retry_count`, kept for a retried
    /// copy: each value as its raw msgpack bytes.
    pub other_headers: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvelopeError {
    #[error("the envelope is not a msgpack map")]
    NotAMap,
    #[error("malformed msgpack in the envelope: {0}")]
    Malformed(String),
    #[error("the envelope has no event type")]
    NoType,
    #[error("{0} bytes after the envelope")]
    Trailing(usize),
}

/// True when `body` is exactly one msgpack value (what the envelope needs).
pub(crate) fn is_one_value(body: &[u8]) -> bool {
    check_one_value(body).is_ok()
}

/// Our envelope, every key and string as msgpack str.
pub(crate) fn encode(
    event: &Event,
    source: &str,
    retry_count: Option<i64>,
    other_headers: &[(String, Bytes)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.body.len() + 128);
    write_map_header(&mut out, 5);
    put(&mut out, &ValueRef::from("type"));
    put(&mut out, &ValueRef::from(event.event_type.as_str()));
    put(&mut out, &ValueRef::from("headers"));
    let traceparent = event.traceparent.map(traceparent::format);
    write_map_header(
        &mut out,
        1 + usize::from(retry_count.is_some())
            + usize::from(traceparent.is_some())
            + other_headers.len(),
    );
    put(&mut out, &ValueRef::from("trace_id"));
    put(&mut out, &ValueRef::from(event.trace_id.as_str()));
    if let Some(traceparent) = &traceparent {
        put(&mut out, &ValueRef::from(TRACEPARENT));
        put(&mut out, &ValueRef::from(traceparent.as_str()));
    }
    if let Some(n) = retry_count {
        put(&mut out, &ValueRef::from("retry_count"));
        put(&mut out, &ValueRef::from(n));
    }
    for (key, value) in other_headers {
        put(&mut out, &ValueRef::from(key.as_str()));
        out.extend_from_slice(value);
    }
    put(&mut out, &ValueRef::from("body"));
    out.extend_from_slice(&event.body);
    put(&mut out, &ValueRef::from("source"));
    put(&mut out, &ValueRef::from(source));
    put(&mut out, &ValueRef::from("id"));
    put(&mut out, &ValueRef::from(event.id.as_str()));
    out
}

/// Reads an envelope from lymph (py2 or py3) or lymphd.
pub(crate) fn decode(payload: &[u8]) -> Result<Incoming, EnvelopeError> {
    let (entries, mut pos) = map_header(payload, 0).ok_or(EnvelopeError::NotAMap)?;
    let mut event_type = None;
    let mut body: &[u8] = &[0x80]; // lymph's default body: `{}`
    let mut source = String::new();
    let mut id = None;
    let mut headers = Headers::default();
    for _ in 0..entries {
        let value = next(payload, pos)?;
        let end = next(payload, value)?;
        match text(payload, pos).as_deref() {
            Some("type") => event_type = text(payload, value),
            Some("body") => body = &payload[value..end],
            Some("source") => source = text(payload, value).unwrap_or_default(),
            Some("id") => id = text(payload, value),
            Some("headers") => headers.read(&payload[value..end])?,
            _ => {}
        }
        pos = end;
    }
    if pos < payload.len() {
        return Err(EnvelopeError::Trailing(payload.len() - pos));
    }
    let event_type = event_type
        .filter(|t| !t.is_empty())
        .ok_or(EnvelopeError::NoType)?;
    let Headers {
        trace_id,
        retry_count,
        traceparent,
        other: other_headers,
    } = headers;
    let id = id.unwrap_or_else(|| made_up_id(&event_type, trace_id.as_deref(), &source, body));
    // lymph starts a new trace when an event carries none; so do we.
    let trace_id = trace_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    Ok(Incoming {
        event: Event {
            id,
            event_type,
            body: Bytes::copy_from_slice(body),
            trace_id,
            traceparent,
        },
        retry_count,
        source,
        other_headers,
    })
}

/// The envelope's `headers` map, as read so far.
#[derive(Default)]
struct Headers {
    trace_id: Option<String>,
    retry_count: Option<i64>,
    traceparent: Option<TraceParent>,
    other: Vec<(String, Bytes)>,
}

impl Headers {
    /// Reads one `headers` value (a later one adds to an earlier one); one
    /// that is not a map is ignored.
    fn read(&mut self, map: &[u8]) -> Result<(), EnvelopeError> {
        let Some((entries, mut pos)) = map_header(map, 0) else {
            return Ok(());
        };
        for _ in 0..entries {
            let value = next(map, pos)?;
            let end = next(map, value)?;
            let raw = &map[value..end];
            match text(map, pos).as_deref() {
                Some("trace_id") => self.trace_id = text(map, value),
                Some("retry_count") => self.retry_count = integer(raw),
                // One that is not valid is ignored, as W3C says.
                Some(TRACEPARENT) => {
                    self.traceparent = text_bytes(map, value).and_then(traceparent::parse);
                }
                Some(other) => self
                    .other
                    .push((other.to_owned(), Bytes::copy_from_slice(raw))),
                None => {}
            }
            pos = end;
        }
        Ok(())
    }
}

/// The offset past the value at `pos`.
fn next(buf: &[u8], pos: usize) -> Result<usize, EnvelopeError> {
    skip_value(buf, pos).map_err(|e| EnvelopeError::Malformed(e.to_string()))
}

/// A string as str or (Python 2) bin.
fn text(buf: &[u8], pos: usize) -> Option<String> {
    text_bytes(buf, pos).map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// The integer that is all of `raw`, if it is one that fits an i64.
fn integer(raw: &[u8]) -> Option<i64> {
    // An integer takes at most 9 bytes: anything longer is not one, and is
    // not decoded into a tree to find out.
    if raw.len() > 9 {
        return None;
    }
    match read_value_ref(&mut &raw[..]) {
        Ok(ValueRef::Integer(n)) => n.as_i64(),
        _ => None,
    }
}

/// An id for an event from Python lymph, which sends none: FNV-1a 128 of
/// what identifies the event (not `retry_count`, so every attempt shares it).
/// Two emits with the same type, trace id, source and body share it too.
fn made_up_id(event_type: &str, trace_id: Option<&str>, source: &str, body: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let parts: [&[u8]; 4] = [
        event_type.as_bytes(),
        trace_id.unwrap_or_default().as_bytes(),
        source.as_bytes(),
        body,
    ];
    let mut hash = OFFSET;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u128::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:032x}")
}

fn write_map_header(out: &mut Vec<u8>, len: usize) {
    let _ = rmp_map_len(out, len);
}

fn rmp_map_len(out: &mut Vec<u8>, len: usize) -> Option<()> {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0xde);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&u32::try_from(len).ok()?.to_be_bytes());
    }
    Some(())
}

/// Writing to a `Vec` cannot fail.
fn put(out: &mut Vec<u8>, value: &ValueRef<'_>) {
    let _ = rmpv::encode::write_value_ref(out, value);
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
