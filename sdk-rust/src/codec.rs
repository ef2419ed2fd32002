//! MessagePack at the edge: RPC arguments (a map of parameter name to value,
//! lymph's kwargs) and return values. Bytes become typed values here and only
//! here; errors name the method and the argument, and are worded for the
//! caller the same way whatever the value's MessagePack type (see `path`).

mod path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CallError, Error, ErrorKind};
pub(crate) use path::KeyPath;

/// An empty MessagePack map, what "no arguments" is on the wire.
const EMPTY_MAP: u8 = 0x80;
const NIL: u8 = 0xc0;

/// Whether `body` starts a MessagePack map (fixmap, map16, map32).
fn is_map(body: &[u8]) -> bool {
    matches!(body.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

/// Decodes a request body into the generated argument struct of `method`
/// ("Interface.method"). An empty or nil body counts as no arguments.
pub fn decode_args<T: DeserializeOwned>(method: &str, body: &[u8]) -> Result<T, Error> {
    let body: &[u8] = match body.first() {
        None | Some(&NIL) => &[EMPTY_MAP],
        Some(_) if is_map(body) => body,
        Some(_) => {
            return Err(Error::bad_request(format!(
                "{method}: the arguments must be a map of parameter name to value"
            )));
        }
    };
    match rmp_serde::from_slice(body) {
        Ok(args) => Ok(args),
        Err(first) => {
            let (reason, path) = path::diagnose::<T>(body)
                .unwrap_or_else(|| (first.to_string(), KeyPath::default()));
            Err(Error::bad_request(args_message(method, &path, &reason)))
        }
    }
}

/// "Shop.order: argument `qty`: invalid type: string "2", expected u32";
/// a failure at the top level (a missing or unexpected argument) names no
/// argument of its own, the reason does.
fn args_message(method: &str, path: &KeyPath, reason: &str) -> String {
    if !path.is_empty() {
        return format!("{method}: argument `{path}`: {reason}");
    }
    let reason = reason
        .replace("missing field", "missing argument")
        .replace("unknown field", "unexpected argument")
        .replace(", expected one of", ", the parameters are")
        .replace(", there are no fields", ", the method takes no arguments");
    format!("{method}: {reason}")
}

/// Decodes a self-describing value (a config section, an event's field)
/// into `T`; on failure, the reason and the key path of the failing value.
pub(crate) fn decode_value<'de, T, D>(de: D) -> Result<T, (String, KeyPath)>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    path::deserialize(de).map_err(|(error, path)| (error.to_string(), path))
}

/// Decodes a MessagePack body that is not an RPC's arguments (an event's);
/// on failure, the reason worded as `decode_args` words it and the key path.
pub(crate) fn decode_msgpack<T: DeserializeOwned>(body: &[u8]) -> Result<T, (String, KeyPath)> {
    rmp_serde::from_slice(body).map_err(|first| {
        path::diagnose::<T>(body).unwrap_or_else(|| (first.to_string(), KeyPath::default()))
    })
}

/// Encodes a handler's return value; structs become maps, as lymph expects.
pub fn encode_reply<T: Serialize + ?Sized>(method: &str, value: &T) -> Result<Vec<u8>, Error> {
    rmp_serde::to_vec_named(value).map_err(|e| {
        Error::with_kind(
            ErrorKind::HandlerFailed,
            format!("{method}: cannot encode the return value: {e}"),
        )
    })
}

/// Encodes a call's arguments or an event body. `()` and `None` become an empty map.
/// `what` names the value in an error; it is formatted only then (pass
/// `format_args!`, not `format!`: this runs once per call).
pub fn encode_body<T: Serialize + ?Sized>(
    what: impl std::fmt::Display,
    value: &T,
) -> Result<Vec<u8>, CallError> {
    let body = rmp_serde::to_vec_named(value)
        .map_err(|e| CallError::new(ErrorKind::Invalid, format!("cannot encode {what}: {e}")))?;
    if body == [NIL] {
        return Ok(vec![EMPTY_MAP]);
    }
    Ok(body)
}

/// Decodes a call's reply into the type the caller asked for.
pub fn decode_reply<T: DeserializeOwned>(
    what: impl std::fmt::Display,
    body: &[u8],
) -> Result<T, CallError> {
    rmp_serde::from_slice(body).map_err(|e| {
        CallError::new(
            ErrorKind::Internal,
            format!(
                "cannot decode the reply of {what} as {}: {e}",
                std::any::type_name::<T>()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Args {
        name: String,
        #[serde(default)]
        times: Option<u32>,
    }

    fn body(value: serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(&value).expect("encodes")
    }

    fn message(result: Result<Args, Error>) -> String {
        let error = result.expect_err("must fail");
        assert_eq!(error.kind(), ErrorKind::BadRequest);
        error.message().to_owned()
    }

    #[test]
    fn decodes_a_map_and_optional_params() {
        let args: Args = decode_args("G.greet", &body(json!({"name": "Joe"}))).expect("ok");
        assert_eq!(
            args,
            Args {
                name: "Joe".into(),
                times: None
            }
        );
    }

    #[test]
    fn missing_argument_is_named() {
        let got = message(decode_args("G.greet", &body(json!({}))));
        assert_eq!(got, "G.greet: missing argument `name`");
        let got = message(decode_args("G.greet", &[]));
        assert_eq!(got, "G.greet: missing argument `name`");
    }

    #[test]
    fn extra_argument_is_named() {
        let got = message(decode_args("G.greet", &body(json!({"name": "J", "x": 1}))));
        assert!(got.starts_with("G.greet: unexpected argument `x`"), "{got}");
    }

    #[test]
    fn wrong_type_and_non_map_bodies_are_bad_requests() {
        let got = message(decode_args("G.greet", &body(json!({"name": 3}))));
        assert_eq!(
            got,
            "G.greet: argument `name`: invalid type: integer `3`, expected a string"
        );
        let got = message(decode_args("G.greet", &body(json!(["Joe"]))));
        assert!(got.contains("must be a map"), "{got}");
        let got = message(decode_args("G.greet", &body(json!("Joe"))));
        assert!(got.contains("must be a map"), "{got}");
    }

    /// Issue 19: `"2"` for a `u32` said `wrong msgpack marker FixStr(1)`,
    /// `1.5` said `invalid type: floating point ...`; both now read alike
    /// and name the argument.
    #[test]
    fn wrong_types_read_alike_whatever_the_msgpack_type() {
        let got = message(decode_args(
            "G.greet",
            &body(json!({"name": "J", "times": "2"})),
        ));
        assert_eq!(
            got,
            "G.greet: argument `times`: invalid type: string \"2\", expected u32"
        );
        let got = message(decode_args(
            "G.greet",
            &body(json!({"name": "J", "times": 1.5})),
        ));
        assert_eq!(
            got,
            "G.greet: argument `times`: invalid type: floating point `1.5`, expected u32"
        );
        let got = message(decode_args(
            "G.greet",
            &body(json!({"name": "J", "times": [2]})),
        ));
        assert_eq!(
            got,
            "G.greet: argument `times`: invalid type: sequence, expected u32"
        );
        let got = message(decode_args(
            "G.greet",
            &body(json!({"name": "J", "times": -2})),
        ));
        assert_eq!(
            got,
            "G.greet: argument `times`: invalid value: integer `-2`, expected u32"
        );
        let got = message(decode_args("G.greet", &body(json!({"name": ["J"]}))));
        assert_eq!(
            got,
            "G.greet: argument `name`: invalid type: sequence, expected a string"
        );
    }

    #[test]
    fn nested_argument_values_name_their_path() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Line {
            sku: String,
            qty: u32,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Order {
            lines: Vec<Line>,
        }
        let bad = body(json!({"lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": "2"}]}));
        let error = decode_args::<Order>("Shop.order", &bad).expect_err("bad qty");
        assert_eq!(
            error.message(),
            "Shop.order: argument `lines[1].qty`: invalid type: string \"2\", expected u32"
        );
        let short = body(json!({"lines": [{"sku": "a"}]}));
        let error = decode_args::<Order>("Shop.order", &short).expect_err("no qty");
        assert_eq!(
            error.message(),
            "Shop.order: argument `lines[0]`: missing field `qty`"
        );
    }

    #[test]
    fn unit_args_encode_as_an_empty_map() {
        assert_eq!(encode_body("args", &()).expect("ok"), vec![EMPTY_MAP]);
    }

    #[test]
    fn replies_round_trip() {
        let bytes = encode_reply("G.greet", "Hi, Joe!").expect("ok");
        let text: String = decode_reply("G.greet", &bytes).expect("ok");
        assert_eq!(text, "Hi, Joe!");
        let bad = decode_reply::<u32>("G.greet", &bytes).expect_err("not a number");
        assert_eq!(bad.kind, ErrorKind::Internal);
    }
}
