//! Hex digits on the hot paths: read through a table (a lookup per digit, no
//! branch) and written from one. Trace ids, `traceparent` and request ids
//! are read here.

/// The lowercase hex digits, by value.
pub(crate) const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Marks a byte that is not a hex digit in a table of `table`'s.
const NOT_HEX: u8 = 0x80;

/// Lowercase hex digits only, as W3C writes them.
pub(crate) const LOWER: [u8; 256] = table(false);
/// Hex digits of either case (lymph's trace and request ids).
pub(crate) const ANY: [u8; 256] = table(true);

/// Each byte's value as a hex digit, or `NOT_HEX`.
const fn table(upper_too: bool) -> [u8; 256] {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 16 {
        table[DIGITS[i] as usize] = i as u8;
        if upper_too {
            table[DIGITS[i].to_ascii_uppercase() as usize] = i as u8;
        }
        i += 1;
    }
    table
}

/// The number of up to 32 hex digits, each read through `table` (`LOWER`
/// or `ANY`); `None` if one is not a digit of it.
pub(crate) fn value(digits: &[u8], table: &[u8; 256]) -> Option<u128> {
    let mut n = 0u128;
    let mut bad = 0u8;
    for b in digits {
        let v = table[usize::from(*b)];
        bad |= v;
        n = (n << 4) | u128::from(v & 0x0f);
    }
    (bad & NOT_HEX == 0).then_some(n)
}

/// Appends the lowercase hex of `bytes` to `out`.
pub(crate) fn push(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_refuses_the_rest() {
        let mut out = Vec::new();
        push(&mut out, &[0x0a, 0xf7, 0x65]);
        assert_eq!(out, b"0af765");
        assert_eq!(value(&out, &LOWER), Some(0x0a_f765));
        assert_eq!(value(b"0AF765", &ANY), Some(0x0a_f765));
        assert_eq!(value(b"0AF765", &LOWER), None);
        assert_eq!(value(b"0g", &ANY), None);
        assert_eq!(value(b"", &ANY), Some(0));
    }
}
