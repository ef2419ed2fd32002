//! The fields of the daemon's text log lines: every value (the message too)
//! written with its control characters escaped (`\n`, `\r`, `\t`, `\u{1b}`)
//! and cut after [`MAX_VALUE`] bytes, so no text a client or peer sends, in a
//! name, a reason or an error, can forge a line or flood the log. (The JSON
//! format escapes by itself; apps' own records go to the log ports, not here.)

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// The most bytes of one field's value a line shows; the rest is counted.
pub const MAX_VALUE: usize = 4096;

/// The field formatter of the text format: `message key=value ...`, as
/// tracing's default, with each value escaped and bounded.
#[derive(Debug, Default, Clone, Copy)]
pub struct SafeFields;

impl<'w> FormatFields<'w> for SafeFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_, '_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        self.result = self.write_field(name, value);
    }

    fn write_field(&mut self, name: &str, value: fmt::Arguments<'_>) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        if name != "message" {
            self.writer
                .write_str(name.strip_prefix("r#").unwrap_or(name))?;
            self.writer.write_char('=')?;
        }
        let mut out = Escaping {
            inner: &mut *self.writer,
            left: MAX_VALUE,
            cut: 0,
        };
        out.write_fmt(value)?;
        let cut = out.cut;
        if cut > 0 {
            write!(self.writer, "… ({cut} more bytes)")?;
        }
        Ok(())
    }
}

impl Visit for Visitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

/// `text` as a log line shows it: control characters escaped, cut after
/// [`MAX_VALUE`] bytes (the daemon's own records on its log port).
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_VALUE));
    let mut escaping = Escaping {
        inner: &mut out,
        left: MAX_VALUE,
        cut: 0,
    };
    let _ = escaping.write_str(text);
    let cut = escaping.cut;
    if cut > 0 {
        let _ = write!(out, "… ({cut} more bytes)");
    }
    out
}

/// Writes through to `inner`, escaping control characters, until `left`
/// bytes are spent; past that only counts what it drops.
struct Escaping<'a, W: fmt::Write> {
    inner: &'a mut W,
    left: usize,
    cut: usize,
}

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.left == 0 {
                self.cut += c.len_utf8();
                continue;
            }
            let mut utf8 = [0u8; 4];
            // Control characters are rare: their escape may allocate.
            let control;
            let text: &str = match c {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c.is_control() => {
                    control = format!("\\u{{{:x}}}", u32::from(c));
                    &control
                }
                c => c.encode_utf8(&mut utf8),
            };
            if text.len() > self.left {
                self.left = 0;
                self.cut += c.len_utf8();
                continue;
            }
            self.left -= text.len();
            self.inner.write_str(text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn logged(emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(SafeFields)
            .with_ansi(false)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = out.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn a_forged_line_stays_on_one_line() {
        let name = "app\n2026-12-02T00:00:00Z  INFO lymphd: forged\r\x1b[31m";
        let text = logged(|| {
            tracing::warn!(app = %name, other = name, "refused {name}");
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("app=app\\n2026"), "{text}");
        assert!(text.contains("\\u{1b}[31m"), "{text}");
        assert!(
            text.contains("other=\"app\\n2026"),
            "quoted as before: {text}"
        );
        assert!(text.contains("refused app\\n"), "the message too: {text}");
    }

    #[test]
    fn a_huge_value_is_cut_and_counted() {
        let name = "x".repeat(10 * 1024 * 1024);
        let text = logged(|| tracing::warn!(app = %name, "refused"));
        assert!(text.len() < 2 * MAX_VALUE, "{} bytes", text.len());
        let cut = name.len() - MAX_VALUE;
        assert!(text.contains(&format!("… ({cut} more bytes)")), "{text}");
    }

    #[test]
    fn escaped_text_is_one_bounded_line() {
        assert_eq!(escaped("a\nb\u{1b}"), "a\\nb\\u{1b}");
        let long = escaped(&"y".repeat(MAX_VALUE + 10));
        assert!(long.ends_with("… (10 more bytes)"), "{long}");
    }

    #[test]
    fn plain_lines_look_as_before() {
        let text = logged(|| tracing::info!(app = "echo", n = 3, "app attached"));
        assert!(text.contains("app attached app=\"echo\" n=3"), "{text}");
    }
}
