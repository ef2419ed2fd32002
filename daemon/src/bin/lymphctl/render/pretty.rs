//! The human layout of a reply, after Python's `pprint`: a value that fits
//! in 80 columns stays on one line (`{"a": [1, 2]}`); a container that does
//! not puts each member on its own line, indented by 2, recursively.

use serde_json::Value as Json;

/// Width a line may take before a container is broken up.
const LINE_WIDTH: usize = 80;
const INDENT: usize = 2;

/// The reply laid out for a human; no trailing newline.
pub fn pretty(json: &Json) -> String {
    let mut out = String::new();
    layout(json, 0, 0, &mut out);
    out
}

/// One line, with `", "` and `": "` between members (as Python's `json.dumps`).
pub fn one_line(json: &Json) -> String {
    match json {
        Json::Array(items) => {
            let members: Vec<String> = items.iter().map(one_line).collect();
            format!("[{}]", members.join(", "))
        }
        Json::Object(map) => {
            let members: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Json::from(k.as_str()), one_line(v)))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        scalar => scalar.to_string(),
    }
}

/// Writes `json` at `indent`; `used` is how much of the line a key prefix already took.
fn layout(json: &Json, indent: usize, used: usize, out: &mut String) {
    let flat = one_line(json);
    let fits = indent + used + flat.chars().count() <= LINE_WIDTH;
    if fits {
        out.push_str(&flat);
        return;
    }
    let (open, close, members): (char, char, Vec<(String, &Json)>) = match json {
        Json::Array(items) if !items.is_empty() => {
            ('[', ']', items.iter().map(|v| (String::new(), v)).collect())
        }
        Json::Object(map) if !map.is_empty() => (
            '{',
            '}',
            map.iter()
                .map(|(k, v)| (format!("{}: ", Json::from(k.as_str())), v))
                .collect(),
        ),
        // A long string or number cannot be broken: it stays whole.
        _ => {
            out.push_str(&flat);
            return;
        }
    };
    let inner = indent + INDENT;
    out.push(open);
    for (n, (prefix, value)) in members.iter().enumerate() {
        out.push('\n');
        out.push_str(&" ".repeat(inner));
        out.push_str(prefix);
        layout(value, inner, prefix.chars().count(), out);
        if n + 1 < members.len() {
            out.push(',');
        }
    }
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push(close);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn short_values_stay_on_one_line() {
        assert_eq!(pretty(&json!("Hi, Joe!")), "\"Hi, Joe!\"");
        assert_eq!(
            pretty(&json!({"a": [1, 2], "b": null})),
            r#"{"a": [1, 2], "b": null}"#
        );
        assert_eq!(pretty(&json!([])), "[]");
    }

    #[test]
    fn long_containers_break_members_onto_lines() {
        let triple = |n: &str| json!([n, 2003, {"identity": "a4ba1f1d3c1943da91476e45d6a7fa6b"}]);
        let reply = json!([triple("rpc.calls_total"), triple("rpc.calls_failed")]);
        let expected = "[\n  \
            [\"rpc.calls_total\", 2003, {\"identity\": \"a4ba1f1d3c1943da91476e45d6a7fa6b\"}],\n  \
            [\"rpc.calls_failed\", 2003, {\"identity\": \"a4ba1f1d3c1943da91476e45d6a7fa6b\"}]\n]";
        assert_eq!(pretty(&reply), expected);
        let nested = json!({"text": "x".repeat(90), "n": 1});
        let text = pretty(&nested);
        assert!(
            text.starts_with("{\n  \"n\": 1,\n  \"text\": \"xxx"),
            "{text}"
        );
        assert!(text.ends_with("\"\n}"), "{text}");
    }
}
