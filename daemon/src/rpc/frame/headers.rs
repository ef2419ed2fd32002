//! The headers map (frame 4) and the bodies the daemon itself reads or writes:
//! lymph's ERROR body and `lymph.ping`'s payload. Sends str, accepts bin
//! wherever text is expected (`lymph-wire.md` §1).

use bytes::Bytes;
use rmpv::Value;

use super::FrameError;
use super::skip::{check_one_value, map_header, skip_value, text_bytes};
use crate::rpc::{NackReason, REASON_HEADER};

/// MessagePack nil: the body of NACK and ACK replies.
pub const NIL: &[u8] = &[0xc0];

/// The headers lymphd reads and writes; other keys are ignored on receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub trace_id: Option<String>,
    pub version: Option<String>,
    /// lymphd's reason on a NACK (the `lymphd_error` key).
    pub reason: Option<NackReason>,
}

impl Headers {
    /// Encodes as a str-keyed map; absent fields are left out.
    pub fn encode(&self) -> Bytes {
        let mut entries = Vec::with_capacity(3);
        if let Some(trace_id) = &self.trace_id {
            entries.push((text("trace_id"), text(trace_id)));
        }
        if let Some(version) = &self.version {
            entries.push((text("version"), text(version)));
        }
        if let Some(reason) = &self.reason {
            let map = Value::Map(vec![
                (text("kind"), text(&reason.kind)),
                (text("message"), text(&reason.message)),
            ]);
            entries.push((text(REASON_HEADER), map));
        }
        write(&Value::Map(entries))
    }

    /// Decodes a headers frame: a map (nil counts as empty), str or bin keys.
    pub fn decode(frame: &[u8]) -> Result<Headers, FrameError> {
        check_one_value(frame).map_err(|e| FrameError::BadHeaders(format!("{e:?}")))?;
        let value = rmpv::decode::read_value(&mut &frame[..])
            .map_err(|e| FrameError::BadHeaders(e.to_string().to_lowercase()))?;
        let entries = match value {
            Value::Map(entries) => entries,
            Value::Nil => return Ok(Headers::default()),
            _ => return Err(FrameError::BadHeaders("not a map".to_owned())),
        };
        let mut headers = Headers::default();
        for (key, value) in &entries {
            match as_text(key).as_deref() {
                Some("trace_id") => headers.trace_id = as_text(value),
                Some("version") => headers.version = as_text(value),
                Some(REASON_HEADER) => headers.reason = reason_of(value),
                _ => {}
            }
        }
        Ok(headers)
    }
}

/// lymph's ERROR body: `{"type": ..., "message": ...}` with str keys and values.
pub fn encode_error_body(error_type: &str, message: &str) -> Bytes {
    write(&Value::Map(vec![
        (text("type"), text(error_type)),
        (text("message"), text(message)),
    ]))
}

/// Reads lymph's ERROR body (str or bin); missing or unreadable parts are empty.
pub fn decode_error_body(body: &[u8]) -> (String, String) {
    let Ok(Value::Map(entries)) = rmpv::decode::read_value(&mut &body[..]) else {
        return (String::new(), String::new());
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(key, _)| as_text(key).as_deref() == Some(name))
            .and_then(|(_, value)| as_text(value))
            .unwrap_or_default()
    };
    (field("type"), field("message"))
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

fn reason_of(value: &Value) -> Option<NackReason> {
    let Value::Map(entries) = value else {
        return None;
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(key, _)| as_text(key).as_deref() == Some(name))
            .and_then(|(_, value)| as_text(value))
    };
    Some(NackReason {
        kind: field("kind")?,
        message: field("message").unwrap_or_default(),
    })
}

/// Text from a str or a bin value (py2 lymph sends bin); `None` otherwise.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => s.as_str().map(str::to_owned),
        Value::Binary(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
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
