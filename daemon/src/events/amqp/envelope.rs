//! lymph's event envelope (lymph-wire.md §4.2), pure: `{type, headers:
//! {trace_id, retry_count?}, body, source}` plus our `id`. We write every
//! string as msgpack str; we read str or bin (Python 2 sends bin). The body
//! is one msgpack value, spliced in and sliced out as raw bytes, never
//! re-encoded. Knows nothing of AMQP.

use bytes::Bytes;
use rmpv::decode::read_value_ref;
use rmpv::{Value, ValueRef};

use crate::events::Event;

pub(crate) const CONTENT_TYPE: &str = "application/lymph+x-msgpack";
pub(crate) const CONTENT_ENCODING: &str = "binary";

/// An envelope as received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Incoming {
    /// `id` is ours when a lymphd emitted it, else made up from the content
    /// (stable across redeliveries and retries of one event).
    pub event: Event,
    /// `headers.retry_count`: present on retried copies.
    pub retry_count: Option<i64>,
    pub source: String,
    /// Headers other than `trace_id`/`retry_count`, kept for a retried copy.
    pub other_headers: Vec<(String, Value)>,
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
    let mut rest = body;
    read_value_ref(&mut rest).is_ok() && rest.is_empty()
}

/// Our envelope, every key and string as msgpack str.
pub(crate) fn encode(
    event: &Event,
    source: &str,
    retry_count: Option<i64>,
    other_headers: &[(String, Value)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.body.len() + 128);
    map_header(&mut out, 5);
    put(&mut out, &ValueRef::from("type"));
    put(&mut out, &ValueRef::from(event.event_type.as_str()));
    put(&mut out, &ValueRef::from("headers"));
    map_header(
        &mut out,
        1 + usize::from(retry_count.is_some()) + other_headers.len(),
    );
    put(&mut out, &ValueRef::from("trace_id"));
    put(&mut out, &ValueRef::from(event.trace_id.as_str()));
    if let Some(n) = retry_count {
        put(&mut out, &ValueRef::from("retry_count"));
        put(&mut out, &ValueRef::from(n));
    }
    for (key, value) in other_headers {
        put(&mut out, &ValueRef::from(key.as_str()));
        let _ = rmpv::encode::write_value(&mut out, value);
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
    let mut rest = payload;
    let entries = map_len(&mut rest).ok_or(EnvelopeError::NotAMap)?;
    let mut event_type = None;
    let mut body: &[u8] = &[0x80]; // lymph's default body: `{}`
    let mut source = String::new();
    let mut id = None;
    let mut trace_id = None;
    let mut retry_count = None;
    let mut other_headers = Vec::new();
    for _ in 0..entries {
        let key = read(&mut rest)?;
        let start = rest;
        let value = read(&mut rest)?;
        let raw = &start[..start.len() - rest.len()];
        match text(&key).as_deref() {
            Some("type") => event_type = text(&value),
            Some("body") => body = raw,
            Some("source") => source = text(&value).unwrap_or_default(),
            Some("id") => id = text(&value),
            Some("headers") => {
                let ValueRef::Map(headers) = value else {
                    continue;
                };
                for (key, value) in headers {
                    match text(&key).as_deref() {
                        Some("trace_id") => trace_id = text(&value),
                        Some("retry_count") => {
                            retry_count = match value {
                                ValueRef::Integer(n) => n.as_i64(),
                                _ => None,
                            }
                        }
                        Some(other) => other_headers.push((other.to_owned(), value.to_owned())),
                        None => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !rest.is_empty() {
        return Err(EnvelopeError::Trailing(rest.len()));
    }
    let event_type = event_type
        .filter(|t| !t.is_empty())
        .ok_or(EnvelopeError::NoType)?;
    let id = id.unwrap_or_else(|| made_up_id(&event_type, trace_id.as_deref(), &source, body));
    // lymph starts a new trace when an event carries none; so do we.
    let trace_id = trace_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    Ok(Incoming {
        event: Event {
            id,
            event_type,
            body: Bytes::copy_from_slice(body),
            trace_id,
        },
        retry_count,
        source,
        other_headers,
    })
}

fn read<'a>(rest: &mut &'a [u8]) -> Result<ValueRef<'a>, EnvelopeError> {
    read_value_ref(rest).map_err(|e| EnvelopeError::Malformed(e.to_string()))
}

/// A string as str or (Python 2) bin.
fn text(value: &ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::String(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        ValueRef::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
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

fn map_len(rest: &mut &[u8]) -> Option<usize> {
    let (&marker, tail) = rest.split_first()?;
    let (len, used) = match marker {
        0x80..=0x8f => (usize::from(marker & 0x0f), 0),
        0xde => (
            usize::from(u16::from_be_bytes(tail.get(..2)?.try_into().ok()?)),
            2,
        ),
        0xdf => (
            u32::from_be_bytes(tail.get(..4)?.try_into().ok()?) as usize,
            4,
        ),
        _ => return None,
    };
    *rest = &tail[used..];
    Some(len)
}

fn map_header(out: &mut Vec<u8>, len: usize) {
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
