//! The headers map (frame 4) and the bodies the daemon itself reads or writes:
//! lymph's ERROR body and `lymph.ping`'s payload. Sends str, accepts bin
//! wherever text is expected (`docs/wire.md` §1.2, §3.5, §3.6).

use bytes::Bytes;
use rmpv::Value;

use super::FrameError;
use super::skip::{check_one_value, map_header, skip_value, text_bytes};
use crate::rpc::{DEADLINE_HEADER, IDENTITY_HEADER, NackReason, REASON_HEADER, TRACEPARENT_HEADER};
use crate::spans::TraceParent;

/// MessagePack nil: the body of NACK and ACK replies.
pub const NIL: &[u8] = &[0xc0];

/// The headers lymphd reads and writes; other keys are ignored on receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub trace_id: Option<String>,
    pub version: Option<String>,
    /// With `version` `None`: the `version` key is there with nil, as on
    /// lymph's replies from an unversioned interface (a reply from an
    /// interface always has the key; one refused before an interface was
    /// chosen has none).
    pub nil_version: bool,
    /// lymphd's reason on a NACK (the `lymphd_error` key).
    pub reason: Option<NackReason>,
    /// On a REQ from a lymphd: the app (by its registered identity) the
    /// caller picked behind a shared endpoint (the `lymphd_identity` key).
    pub identity: Option<String>,
    /// On a REQ from a lymphd: the request's time left in milliseconds (the
    /// `lymphd_deadline_ms` key).
    pub deadline_ms: Option<u64>,
    /// On a REQ from a lymphd: the caller's span (the `lymphd_traceparent`
    /// key, W3C's `traceparent` form; one not valid is ignored).
    pub traceparent: Option<TraceParent>,
}

impl Headers {
    /// Encodes as a str-keyed map; absent fields are left out. Written byte
    /// by byte (the same bytes rmpv writes): this runs for every message.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(64);
        let entries = [
            self.trace_id.is_some(),
            self.version.is_some() || self.nil_version,
            self.reason.is_some(),
            self.identity.is_some(),
            self.deadline_ms.is_some(),
            self.traceparent.is_some(),
        ]
        .into_iter()
        .filter(|present| *present)
        .count();
        // At most 6 entries: a fixmap.
        out.push(0x80 | entries as u8);
        if let Some(trace_id) = &self.trace_id {
            write_str(&mut out, "trace_id");
            write_str(&mut out, trace_id);
        }
        if let Some(version) = &self.version {
            write_str(&mut out, "version");
            write_str(&mut out, version);
        } else if self.nil_version {
            write_str(&mut out, "version");
            out.extend_from_slice(NIL);
        }
        if let Some(identity) = &self.identity {
            write_str(&mut out, IDENTITY_HEADER);
            write_str(&mut out, identity);
        }
        if let Some(ms) = self.deadline_ms {
            write_str(&mut out, DEADLINE_HEADER);
            write_uint(&mut out, ms);
        }
        if let Some(context) = self.traceparent {
            write_str(&mut out, TRACEPARENT_HEADER);
            // A str of 55 bytes (str8), written in place.
            out.extend_from_slice(&[0xd9, 55]);
            crate::spans::traceparent::write(&mut out, context);
        }
        if let Some(reason) = &self.reason {
            write_str(&mut out, REASON_HEADER);
            out.push(0x82);
            write_str(&mut out, "kind");
            write_str(&mut out, crate::error::kind_name(reason.kind));
            write_str(&mut out, "message");
            write_str(&mut out, &reason.message);
        }
        Bytes::from(out)
    }

    /// Decodes a headers frame: a map (nil counts as empty), str or bin keys.
    /// Walks the bytes in place (no `rmpv::Value` tree): it runs per message.
    pub fn decode(frame: &[u8]) -> Result<Headers, FrameError> {
        let bad = |e| FrameError::BadHeaders(format!("{e:?}"));
        check_one_value(frame).map_err(bad)?;
        if frame == NIL {
            return Ok(Headers::default());
        }
        let Some((entries, mut pos)) = map_header(frame, 0) else {
            return Err(FrameError::BadHeaders("not a map".to_owned()));
        };
        let mut headers = Headers::default();
        for _ in 0..entries {
            let value = skip_value(frame, pos).map_err(bad)?;
            let next = skip_value(frame, value).map_err(bad)?;
            match text_bytes(frame, pos) {
                Some(b"trace_id") => headers.trace_id = text_at(frame, value),
                Some(b"version") => {
                    headers.version = text_at(frame, value);
                    headers.nil_version = frame.get(value) == Some(&NIL[0]);
                }
                Some(key) if key == IDENTITY_HEADER.as_bytes() => {
                    headers.identity = text_at(frame, value);
                }
                Some(key) if key == DEADLINE_HEADER.as_bytes() => {
                    headers.deadline_ms = uint_at(frame, value);
                }
                Some(key) if key == TRACEPARENT_HEADER.as_bytes() => {
                    headers.traceparent =
                        text_bytes(frame, value).and_then(crate::spans::traceparent::parse);
                }
                Some(key) if key == REASON_HEADER.as_bytes() => {
                    headers.reason = reason_at(frame, value);
                }
                _ => {}
            }
            pos = next;
        }
        Ok(headers)
    }
}

/// Appends `n` as a MessagePack uint, in the smallest form.
fn write_uint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// The unsigned integer at `pos` (any MessagePack uint form, or a
/// non-negative fixint); `None` for anything else.
fn uint_at(buf: &[u8], pos: usize) -> Option<u64> {
    let marker = *buf.get(pos)?;
    let be = |len: usize| -> Option<u64> {
        let bytes = buf.get(pos + 1..pos + 1 + len)?;
        Some(bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
    };
    match marker {
        0x00..=0x7f => Some(u64::from(marker)),
        0xcc => be(1),
        0xcd => be(2),
        0xce => be(4),
        0xcf => be(8),
        _ => None,
    }
}

/// Appends `s` as a MessagePack str, in the smallest form.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if let Ok(len) = u8::try_from(len) {
        out.extend_from_slice(&[0xd9, len]);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0xda);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// The str or bin value at `pos` as text, if it is valid UTF-8.
fn text_at(buf: &[u8], pos: usize) -> Option<String> {
    text_bytes(buf, pos)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .map(str::to_owned)
}

/// lymphd's reason map (`{kind, message}`) at `pos`; `None` without a kind.
fn reason_at(buf: &[u8], pos: usize) -> Option<NackReason> {
    let (entries, mut at) = map_header(buf, pos)?;
    let (mut kind, mut message) = (None, None);
    for _ in 0..entries {
        let value = skip_value(buf, at).ok()?;
        let next = skip_value(buf, value).ok()?;
        match text_bytes(buf, at) {
            Some(b"kind") => kind = text_at(buf, value),
            Some(b"message") => message = text_at(buf, value),
            _ => {}
        }
        at = next;
    }
    Some(NackReason {
        kind: crate::error::kind_named(&kind?),
        message: message.unwrap_or_default(),
    })
}

/// The body of `lymphd.cancel`: `{"id": <the cancelled request's id>}`.
pub fn cancel_body(request_id: &str) -> Bytes {
    write(&Value::Map(vec![(text("id"), text(request_id))]))
}

/// The request id in a `lymphd.cancel` body; `None` when it has none.
pub fn decode_cancel_body(body: &[u8]) -> Option<String> {
    let (entries, mut at) = map_header(body, 0)?;
    for _ in 0..entries {
        let value = skip_value(body, at).ok()?;
        let next = skip_value(body, value).ok()?;
        if text_bytes(body, at) == Some(b"id") {
            return text_at(body, value);
        }
        at = next;
    }
    None
}

/// lymph's ERROR body: `{"type": ..., "message": ...}` with str keys and values.
pub fn encode_error_body(error_type: &str, message: &str) -> Bytes {
    write(&Value::Map(vec![
        (text("type"), text(error_type)),
        (text("message"), text(message)),
    ]))
}

/// Reads lymph's ERROR body (str or bin); missing or unreadable parts are
/// empty; the first of a repeated key counts. Walked in place, as the
/// headers are: a tree of `rmpv` values would cost a peer's reply of small
/// values ~40 bytes per byte.
pub fn decode_error_body(body: &[u8]) -> (String, String) {
    let (mut error_type, mut message) = (None, None);
    if skip_value(body, 0).is_ok()
        && let Some((entries, mut pos)) = map_header(body, 0)
    {
        for _ in 0..entries {
            let Ok(value) = skip_value(body, pos) else {
                break;
            };
            let Ok(next) = skip_value(body, value) else {
                break;
            };
            match text_bytes(body, pos) {
                Some(b"type") if error_type.is_none() => error_type = Some(text_at(body, value)),
                Some(b"message") if message.is_none() => message = Some(text_at(body, value)),
                _ => {}
            }
            pos = next;
        }
    }
    (
        error_type.flatten().unwrap_or_default(),
        message.flatten().unwrap_or_default(),
    )
}

/// The reply body of `lymph.ping`: the request's `payload` value, byte for
/// byte, or nil when the body is not a map or has no `payload`.
pub fn ping_payload(body: &[u8]) -> Bytes {
    let Some((len, mut pos)) = map_header(body, 0) else {
        return Bytes::from_static(NIL);
    };
    for _ in 0..len {
        let Ok(value_start) = skip_value(body, pos) else {
            break;
        };
        let Ok(value_end) = skip_value(body, value_start) else {
            break;
        };
        if text_bytes(body, pos) == Some(b"payload".as_slice()) {
            return Bytes::copy_from_slice(&body[value_start..value_end]);
        }
        pos = value_end;
    }
    Bytes::from_static(NIL)
}

fn text(s: &str) -> Value {
    Value::String(s.into())
}

fn write(value: &Value) -> Bytes {
    let mut out = Vec::with_capacity(64);
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    Bytes::from(out)
}
