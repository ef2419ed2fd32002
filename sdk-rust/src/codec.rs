//! MessagePack at the edge: RPC arguments (a map of parameter name to value,
//! lymph's kwargs) and return values. Bytes become typed values here and only
//! here; errors name the method and are worded for the caller.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CallError, Error, ErrorKind};

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
    rmp_serde::from_slice(body).map_err(|e| {
        let reason = e
            .to_string()
            .replace("missing field", "missing argument")
            .replace("unknown field", "unexpected argument")
            .replace(", expected one of", ", the parameters are")
            .replace(", there are no fields", ", the method takes no arguments");
        Error::bad_request(format!("{method}: {reason}"))
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
        assert!(got.starts_with("G.greet: invalid type"), "{got}");
        let got = message(decode_args("G.greet", &body(json!(["Joe"]))));
        assert!(got.contains("must be a map"), "{got}");
        let got = message(decode_args("G.greet", &body(json!("Joe"))));
        assert!(got.contains("must be a map"), "{got}");
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
