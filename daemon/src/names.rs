//! The rules for every name a client sends (app, interface, method, event
//! type, subscription pattern, handler, route, trace id, version): checked
//! where they arrive, so nothing past the API holds a name that could break a
//! ZooKeeper path, a RabbitMQ queue or a log line. Also [`shown`], the one way
//! a refused name is quoted back in an error.

use std::fmt;

/// The longest name of any kind, in bytes.
pub const MAX_NAME: usize = 128;

/// The longest route path, in bytes.
pub const MAX_ROUTE: usize = 1024;

/// RabbitMQ's limit on queue names and routing keys (AMQP short strings).
pub const MAX_QUEUE_NAME: usize = 255;

/// The longest text quoted back in an error (the rest is counted, not shown).
const SHOWN: usize = 64;

/// Why a name was refused; the message names the field, quotes the name
/// (escaped and shortened by [`shown`]) and says the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {shown}: {rule}")]
pub struct NameError {
    pub what: &'static str,
    pub shown: String,
    pub rule: &'static str,
}

fn refuse(what: &'static str, name: &str, rule: &'static str) -> NameError {
    NameError {
        what,
        shown: shown(name).to_string(),
        rule,
    }
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn check_chars(
    what: &'static str,
    name: &str,
    ok: impl Fn(char) -> bool,
    rule: &'static str,
) -> Result<(), NameError> {
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(ok) {
        return Err(refuse(what, name, rule));
    }
    Ok(())
}

const WORD_RULE: &str = "use 1 to 128 ASCII letters, digits, '_', '.' or '-'";

/// An app's name, a service or event type in a call or emit, a handler: 1 to
/// 128 ASCII letters, digits, `_`, `.` or `-` (no `/`, so a name is one
/// ZooKeeper path segment, and nothing that needs escaping in a log line).
pub fn check_word(what: &'static str, name: &str) -> Result<(), NameError> {
    check_chars(what, name, word_char, WORD_RULE)
}

/// A subscription's event type: a word, or dot-separated words some of which
/// are lymph's (and AMQP's) wildcards `*` (one word) and `#` (any words).
pub fn check_pattern(what: &'static str, pattern: &str) -> Result<(), NameError> {
    const RULE: &str = "use 1 to 128 ASCII letters, digits, '_', '.' or '-', \
                        with '*' or '#' only as whole dot-separated words";
    check_chars(
        what,
        pattern,
        |c| word_char(c) || c == '*' || c == '#',
        RULE,
    )?;
    let wild_inside_word = pattern
        .split('.')
        .any(|word| word.len() > 1 && word.contains(['*', '#']));
    if wild_inside_word {
        return Err(refuse(what, pattern, RULE));
    }
    Ok(())
}

/// A trace id a client hands in: lymph makes 32 hex digits; any word up to
/// 128 bytes is carried unchanged.
pub fn check_trace_id(trace_id: &str) -> Result<(), NameError> {
    if trace_id.is_empty() {
        return Ok(());
    }
    check_chars(
        "trace id",
        trace_id,
        word_char,
        "use up to 128 ASCII letters, digits, '_', '.' or '-' (or none for a new one)",
    )
}

/// A version or version requirement: up to 128 printable ASCII characters
/// (the parser of versions says the rest).
pub fn check_version_text(what: &'static str, version: &str) -> Result<(), NameError> {
    if version.is_empty() {
        return Ok(());
    }
    check_chars(
        what,
        version,
        |c| c.is_ascii_graphic() || c == ' ',
        "use up to 128 printable ASCII characters",
    )
}

/// A route's path: 1 to 1024 bytes of visible ASCII (the route parser says
/// the rest).
pub fn check_route(path: &str) -> Result<(), NameError> {
    if path.is_empty() || path.len() > MAX_ROUTE || !path.chars().all(|c| c.is_ascii_graphic()) {
        return Err(refuse(
            "route",
            path,
            "use 1 to 1024 visible ASCII characters, starting with '/'",
        ));
    }
    Ok(())
}

/// A queue name made of a client's names (`<Interface>-<handler>-<instance>`)
/// fits RabbitMQ's limit.
pub fn check_queue_name(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_QUEUE_NAME {
        return Err(refuse(
            "queue name",
            name,
            "the interface and handler names make a queue name longer than RabbitMQ's 255 bytes; shorten them",
        ));
    }
    Ok(())
}

/// A call's names as a client hands them in: the service, the method (lymph
/// allows `Interface.method`), the version requirement and the trace id.
pub fn check_call(
    service: &str,
    method: &str,
    version: &str,
    trace_id: &str,
) -> Result<(), NameError> {
    check_word("service name", service)?;
    check_word("method name", method)?;
    check_version_text("version", version)?;
    check_trace_id(trace_id)
}

/// A text from a client, quoted for an error or a log line: escaped as a Rust
/// string literal (no raw control characters) and cut after 64 characters,
/// saying how long it was.
pub fn shown(text: &str) -> Shown<'_> {
    Shown(text)
}

pub struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        match text.char_indices().nth(SHOWN) {
            None => write!(f, "{text:?}"),
            Some((cut, _)) => write!(f, "{:?}… ({} bytes)", &text[..cut], text.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_take_letters_digits_and_three_marks() {
        for ok in ["Echo", "greeting.greeted", "a-b_c.1", &"x".repeat(128)] {
            assert_eq!(check_word("name", ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "a b",
            "line\nforged",
            "é",
            "a*",
            &"x".repeat(129),
        ] {
            assert!(check_word("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patterns_take_whole_word_wildcards_only() {
        for ok in ["b.*", "#", "a.#.c", "*.greeted", "plain"] {
            assert_eq!(check_pattern("event type", ok), Ok(()), "{ok}");
        }
        for bad in ["a*", "b.c#", "**", "a..b/", "", "a b"] {
            assert!(check_pattern("event type", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trace_ids_and_versions_are_bounded_and_printable() {
        assert_eq!(check_trace_id(""), Ok(()));
        assert_eq!(check_trace_id(&"a".repeat(32)), Ok(()));
        assert!(check_trace_id("x\ny").is_err());
        assert!(check_trace_id(&"a".repeat(129)).is_err());
        assert_eq!(check_version_text("version", ">=1.2, <2"), Ok(()));
        assert!(check_version_text("version", "1.0\n").is_err());
    }

    #[test]
    fn routes_are_visible_ascii_and_queue_names_fit_rabbitmq() {
        assert_eq!(check_route("/users/<id>"), Ok(()));
        assert!(check_route("/a b").is_err());
        assert!(check_route(&format!("/{}", "a".repeat(1024))).is_err());
        assert_eq!(check_queue_name(&"q".repeat(255)), Ok(()));
        assert!(check_queue_name(&"q".repeat(256)).is_err());
    }

    #[test]
    fn a_refused_name_is_quoted_escaped_and_short() {
        let forged = format!("app\n2026-01-01 INFO forged {}", "x".repeat(10_000_000));
        let error = check_word("app name", &forged).expect_err("refused");
        let text = error.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("\\n"), "{text}");
        assert!(text.len() < 300, "{} bytes", text.len());
        assert!(text.contains("10000027 bytes"), "{text}");
        assert!(text.starts_with("invalid app name \"app\\n2026"), "{text}");
    }
}
