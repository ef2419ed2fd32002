//! Where a value failed to decode, for error messages: the key path
//! (`items[0].qty`) that `serde_path_to_error` tracks, and one wording
//! whatever the value's type on the wire. A MessagePack body is read again
//! through a `serde_json::Value` for it, whose deserializer hands every
//! value to its visitor: a string for a `u32` then says `invalid type:
//! string "2", expected u32`, as a float does, where rmp-serde alone would
//! say `wrong msgpack marker FixStr(1)`.
//!
//! Only after a decode failed: the codec decodes without it first, so the
//! happy path pays nothing.

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};

/// A key path as it reads in an error: `items[0].qty`; empty for the top level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(String);

impl KeyPath {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This path under `root`: `interfaces.Shop` + `limits.max` is
    /// `interfaces.Shop.limits.max`; `root` itself when this path is empty.
    pub fn under(&self, root: &str) -> String {
        match (root.is_empty(), self.0.starts_with('[')) {
            (true, _) => self.0.clone(),
            _ if self.0.is_empty() => root.to_owned(),
            (false, true) => format!("{root}{}", self.0),
            (false, false) => format!("{root}.{}", self.0),
        }
    }

    /// The path of a failure; `parent` drops its last step (an unknown
    /// key's path names the key, which its error names already).
    fn of(path: &serde_path_to_error::Path, parent: bool) -> KeyPath {
        let steps: Vec<_> = path.iter().collect();
        let steps = match steps.split_last() {
            Some((_, rest)) if parent => rest,
            _ => &steps[..],
        };
        let mut text = String::new();
        for step in steps {
            // As the crate writes a path: `.` between steps, none before `[i]`.
            if !text.is_empty() && !matches!(step, serde_path_to_error::Segment::Seq { .. }) {
                text.push('.');
            }
            text.push_str(&step.to_string());
        }
        KeyPath(text)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Deserializes a `T` from `de`; on failure, the error and the key path of
/// the value that failed (empty when the top level itself failed, e.g. a
/// missing or unexpected top-level key).
pub fn deserialize<'de, T, D>(de: D) -> Result<T, (D::Error, KeyPath)>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    serde_path_to_error::deserialize(de).map_err(|error| {
        let unknown_key = error.inner().to_string().starts_with("unknown field");
        let path = KeyPath::of(error.path(), unknown_key);
        (error.into_inner(), path)
    })
}

/// Why a MessagePack `body` does not decode as a `T`, worded alike for every
/// wire type, and where: `None` when the body is not one a JSON value can
/// hold (binary, a map with keys that are not strings) or decodes that way,
/// and the caller's own error stands.
pub fn diagnose<T: DeserializeOwned>(body: &[u8]) -> Option<(String, KeyPath)> {
    let value: serde_json::Value = rmp_serde::from_slice(body).ok()?;
    deserialize::<T, _>(value)
        .err()
        .map(|(error, path)| (error.to_string(), path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        sku: String,
        qty: u32,
        #[serde(default)]
        lines: Vec<Line>,
        #[serde(default)]
        note: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Line {
        price: f64,
        tags: Vec<String>,
    }

    /// The error text and key path of decoding `value` sent as MessagePack.
    fn msgpack_failure(value: serde_json::Value) -> (String, String) {
        let body = rmp_serde::to_vec_named(&value).expect("encodes");
        let (error, path) = diagnose::<Order>(&body).expect("must fail");
        (error, path.to_string())
    }

    #[test]
    fn wrong_types_read_alike_whatever_the_msgpack_type() {
        let base = |qty: serde_json::Value| json!({"sku": "A1", "qty": qty});
        assert_eq!(
            msgpack_failure(base(json!("2"))),
            (
                "invalid type: string \"2\", expected u32".to_owned(),
                "qty".to_owned()
            )
        );
        assert_eq!(
            msgpack_failure(base(json!(1.5))).0,
            "invalid type: floating point `1.5`, expected u32"
        );
        assert_eq!(
            msgpack_failure(base(json!([1]))).0,
            "invalid type: sequence, expected u32"
        );
        assert_eq!(
            msgpack_failure(base(json!({"n": 1}))).0,
            "invalid type: map, expected u32"
        );
        assert_eq!(
            msgpack_failure(base(json!(true))).0,
            "invalid type: boolean `true`, expected u32"
        );
        assert_eq!(
            msgpack_failure(base(json!(-1))).0,
            "invalid value: integer `-1`, expected u32"
        );
    }

    #[test]
    fn nested_values_name_their_whole_path() {
        let (error, path) = msgpack_failure(json!({
            "sku": "A1", "qty": 1,
            "lines": [{"price": 1.0, "tags": []}, {"price": 2.0, "tags": ["a", 7]}]
        }));
        assert_eq!(path, "lines[1].tags[1]");
        assert_eq!(error, "invalid type: integer `7`, expected a string");
        let (error, path) = msgpack_failure(json!({"sku": "A1", "qty": 1, "lines": [{}]}));
        assert_eq!(path, "lines[0]");
        assert_eq!(error, "missing field `price`");
        let (_, path) = msgpack_failure(json!({"sku": "A1", "qty": 1, "note": 3}));
        assert_eq!(path, "note");
    }

    #[test]
    fn top_level_failures_have_an_empty_path() {
        let (error, path) = msgpack_failure(json!({"sku": "A1"}));
        assert_eq!(error, "missing field `qty`");
        assert_eq!(path, "");
        let (error, path) = msgpack_failure(json!({"sku": "A1", "qty": 1, "x": 0}));
        assert!(error.starts_with("unknown field `x`"), "{error}");
        assert_eq!(path, "");
    }

    #[test]
    fn paths_go_under_a_root() {
        let path = KeyPath("limits.max".into());
        assert_eq!(path.under("interfaces.Shop"), "interfaces.Shop.limits.max");
        assert_eq!(path.under(""), "limits.max");
        assert_eq!(
            KeyPath::default().under("interfaces.Shop"),
            "interfaces.Shop"
        );
        assert_eq!(KeyPath("[2].x".into()).under("tags"), "tags[2].x");
    }

    #[test]
    fn works_over_json_values_too() {
        let value = json!({"sku": "A1", "qty": 1, "lines": [{"price": "x", "tags": []}]});
        let (error, path) = deserialize::<Order, _>(value).expect_err("must fail");
        assert_eq!(path.to_string(), "lines[0].price");
        assert_eq!(
            error.to_string(),
            "invalid type: string \"x\", expected f64"
        );
    }

    #[test]
    fn good_input_decodes_as_without_the_wrapper() {
        let value = json!({"sku": "A1", "qty": 2, "note": "hi",
            "lines": [{"price": 2, "tags": ["a"]}]});
        let body = rmp_serde::to_vec_named(&value).expect("encodes");
        let mut de = rmp_serde::Deserializer::from_read_ref(&body);
        let order: Order = deserialize(&mut de).expect("decodes");
        assert_eq!(order.qty, 2);
        assert_eq!(order.note.as_deref(), Some("hi"));
        assert_eq!(order.lines[0].price, 2.0);
        #[derive(Debug, Deserialize, PartialEq)]
        enum Shape {
            Dot,
            Circle(f64),
            Rect { w: u32, h: u32 },
        }
        for shape in [Shape::Dot, Shape::Circle(1.5), Shape::Rect { w: 1, h: 2 }] {
            let body = match &shape {
                Shape::Dot => rmp_serde::to_vec_named(&json!("Dot")),
                Shape::Circle(r) => rmp_serde::to_vec_named(&json!({"Circle": r})),
                Shape::Rect { w, h } => rmp_serde::to_vec_named(&json!({"Rect": {"w": w, "h": h}})),
            }
            .expect("encodes");
            let mut de = rmp_serde::Deserializer::from_read_ref(&body);
            assert_eq!(deserialize::<Shape, _>(&mut de).expect("decodes"), shape);
        }
    }
}
