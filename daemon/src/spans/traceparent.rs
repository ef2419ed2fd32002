//! W3C Trace Context's `traceparent`: `00-<trace id, 32 hex>-<parent span
//! id, 16 hex>-<flags>`. The HTTP gateway reads and answers it; apps and
//! daemons pass it to each other in the same form (`docs/wire.md` §3.5).

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
    let text = std::str::from_utf8(value).ok()?.trim();
    let mut parts = text.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "00" || flags.len() != 2 {
        return None;
    }
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(trace, 32) || !lower_hex(span, 16) || !lower_hex(flags, 2) {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok().filter(|n| *n != 0)?;
    let span_id = u64::from_str_radix(span, 16).ok().filter(|n| *n != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceParent {
        trace_id: trace_id.to_be_bytes(),
        span_id: span_id.to_be_bytes(),
        sampled: flags & 1 == 1,
    })
}

/// The `traceparent` value of `context`.
pub fn format(context: TraceParent) -> String {
    format!(
        "00-{}-{}-{}",
        hex(&context.trace_id),
        hex(&context.span_id),
        if context.sampled { "01" } else { "00" }
    )
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
