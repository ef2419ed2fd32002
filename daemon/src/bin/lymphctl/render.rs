//! Bodies at the edge: JSON params → MessagePack, MessagePack replies → JSON
//! text, and error kinds as words. Knows nothing about gRPC or the daemon.
//!
//! Rendering choices (msgpack has more than JSON): `bin` that is valid UTF-8
//! prints as a string (Python 2 lymph sends its text as bin); other `bin` prints
//! as the marker `"<N bytes>"`; ext 101 (lymph's embedded msgpack) is unpacked
//! in place, other ext values print as `"<ext T: N bytes>"`; map keys that are
//! not strings are stringified (`1` → `"1"`); NaN and infinities print as
//! strings.

use anyhow::{Context, bail};
use lymph_proto::v1::ErrorKind;
use rmpv::Value;
use serde_json::{Map, Number, Value as Json};

mod pretty;

pub use pretty::pretty;

/// lymph's ExtType code for a nested, packed lymph object.
const EXT_EMBEDDED_MSGPACK: i8 = 101;

/// Parses JSON params and packs them as the MessagePack map lymph expects.
pub fn params_to_msgpack(text: &str) -> anyhow::Result<Vec<u8>> {
    let json: Json = serde_json::from_str(text).context("params are not valid JSON")?;
    if !json.is_object() {
        bail!("params must be a JSON object");
    }
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &json_to_msgpack(&json))
        .context("cannot encode params as msgpack")?;
    Ok(out)
}

/// JSON → MessagePack value: strings as msgpack str, integers as ints, other numbers as f64.
pub fn json_to_msgpack(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, f) => Value::F64(f.unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::Array(items.iter().map(json_to_msgpack).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), json_to_msgpack(v)))
                .collect(),
        ),
    }
}

/// Decodes one MessagePack body into JSON.
pub fn msgpack_to_json(body: &[u8]) -> anyhow::Result<Json> {
    if body.is_empty() {
        bail!("the body is empty");
    }
    let value = rmpv::decode::read_value(&mut &body[..]).context("the body is not msgpack")?;
    Ok(value_to_json(&value))
}

/// MessagePack value → JSON, following the rendering choices in the module docs.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => Json::from(n),
            (None, Some(n)) => Json::from(n),
            (None, None) => Json::Null,
        },
        Value::F32(f) => float(f64::from(*f)),
        Value::F64(f) => float(*f),
        Value::String(s) => match s.as_str() {
            Some(text) => Json::from(text),
            None => bytes(s.as_bytes()),
        },
        Value::Binary(b) => bytes(b),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(pairs) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| (key_text(k), value_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Ext(EXT_EMBEDDED_MSGPACK, payload) => {
            match rmpv::decode::read_value(&mut &payload[..]) {
                Ok(inner) => value_to_json(&inner),
                Err(_) => Json::from(format!(
                    "<ext {EXT_EMBEDDED_MSGPACK}: {} bytes>",
                    payload.len()
                )),
            }
        }
        Value::Ext(code, payload) => Json::from(format!("<ext {code}: {} bytes>", payload.len())),
    }
}

fn float(f: f64) -> Json {
    Number::from_f64(f).map_or_else(|| Json::from(f.to_string()), Json::Number)
}

fn bytes(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(text) => Json::from(text),
        Err(_) => Json::from(format!("<{} bytes>", b.len())),
    }
}

fn key_text(key: &Value) -> String {
    match value_to_json(key) {
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// `ERROR_KIND_UNKNOWN_METHOD` → `unknown method`.
pub fn kind_words(kind: ErrorKind) -> String {
    let name = kind.as_str_name();
    let name = name.strip_prefix("ERROR_KIND_").unwrap_or(name);
    name.to_lowercase().replace('_', " ")
}

/// The text after `lymphctl: ` for a failed call.
pub fn call_error(error: &lymph_proto::v1::CallError) -> String {
    let kind = ErrorKind::try_from(error.kind).unwrap_or(ErrorKind::Unspecified);
    match kind {
        ErrorKind::RemoteError => format!("remote error {}: {}", error.r#type, error.message),
        ErrorKind::Unspecified => format!("call failed: {}", error.message),
        other => format!("{}: {}", kind_words(other), error.message),
    }
}

/// `n` followed by `one` when `n` is 1, else by `many`: `1 process`, `2 processes`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first `n` characters of an id, for display.
pub fn short(id: &str, n: usize) -> &str {
    id.char_indices().nth(n).map_or(id, |(at, _)| &id[..at])
}

#[cfg(test)]
mod tests;
