//! W3C Trace Context's `traceparent`: `00-<trace id, 32 hex>-<parent span
//! id, 16 hex>-<flags>`. The HTTP gateway reads and answers it; apps and
//! daemons pass it to each other in the same form (`docs/wire.md` §3.5).

use crate::hex::{LOWER, push as push_hex, value as hex_value};

/// A valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

/// Reads a `traceparent` value; `None` unless it is version 00 with
/// non-zero ids (what the spec says to ignore, ignored).
pub fn parse(value: &[u8]) -> Option<TraceParent> {
    // Byte by byte at fixed places (it is read on every traced hop): 55
    // bytes, `00-` + 32 + `-` + 16 + `-` + 2, lowercase hex.
    let value = value.trim_ascii();
    if value.len() != 55 || &value[..3] != b"00-" || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = hex_value(&value[3..35], &LOWER)?;
    let span_id = hex_value(&value[36..52], &LOWER)?;
    let flags = hex_value(&value[53..55], &LOWER)?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(TraceParent {
        trace_id: trace_id.to_be_bytes(),
        span_id: u64::try_from(span_id).ok()?.to_be_bytes(),
        sampled: flags & 1 == 1,
    })
}

/// The `traceparent` value of `context`.
pub fn format(context: TraceParent) -> String {
    let mut out = Vec::with_capacity(55);
    write(&mut out, context);
    ascii(out)
}

/// A `traceparent` an app or a peer passed on: `None` when empty or not
/// valid (ignored, as the spec says, never an error).
pub fn parse_given(value: &str) -> Option<TraceParent> {
    if value.is_empty() {
        return None;
    }
    parse(value.as_bytes())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    ascii(out)
}

/// Bytes this module wrote (ASCII) as a `String`.
fn ascii(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_default()
}

/// Appends `context`'s `traceparent` value (its 55 ASCII bytes) to `out`.
pub fn write(out: &mut Vec<u8>, context: TraceParent) {
    out.extend_from_slice(b"00-");
    push_hex(out, &context.trace_id);
    out.push(b'-');
    push_hex(out, &context.span_id);
    out.extend_from_slice(if context.sampled { b"-01" } else { b"-00" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_example_reads_and_writes_back() {
        let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let tp = parse(value.as_bytes()).expect("valid");
        assert!(tp.sampled);
        assert_eq!(hex(&tp.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(format(tp), value);
    }

    #[test]
    fn written_bytes_are_the_formatted_value() {
        let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        let tp = parse(value.as_bytes()).expect("valid");
        assert!(!tp.sampled);
        let mut out = b"x".to_vec();
        write(&mut out, tp);
        assert_eq!(&out[1..], value.as_bytes());
        assert_eq!(
            parse(b" 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03\t"),
            Some(TraceParent {
                sampled: true,
                ..tp
            })
        );
    }

    #[test]
    fn what_the_spec_says_to_ignore_is_ignored() {
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
