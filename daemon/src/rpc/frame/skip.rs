//! A non-allocating, non-recursive MessagePack skip-parser: finds where one
//! value ends so the codec can check opaque bodies without decoding them.

/// Why a byte string is not exactly one MessagePack value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SkipError {
    /// The value claims more bytes (or items) than the input holds.
    #[error("a value claims more bytes than there are")]
    Truncated,
    /// `0xc1`, the one marker MessagePack never uses.
    #[error("the unused marker 0xc1")]
    InvalidMarker,
    /// Bytes follow the value.
    #[error("bytes after the value")]
    Trailing,
}

/// Returns the offset just past the value starting at `start`.
///
/// Work is linear in the input: each pending item needs at least one byte, so
/// a length that claims more items than bytes remain is rejected at once.
pub(crate) fn skip_value(buf: &[u8], start: usize) -> Result<usize, SkipError> {
    let mut pos = start;
    let mut pending: usize = 1;
    while pending > 0 {
        let remaining = buf.len().saturating_sub(pos);
        if pending > remaining {
            return Err(SkipError::Truncated);
        }
        let marker = buf[pos];
        pos += 1;
        pending -= 1;
        let (skip, children) = match marker {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
            0x90..=0x9f => (0, usize::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xc1 => return Err(SkipError::InvalidMarker),
            0xc4 | 0xd9 => (read_len(buf, &mut pos, 1)?, 0),
            0xc5 | 0xda => (read_len(buf, &mut pos, 2)?, 0),
            0xc6 | 0xdb => (read_len(buf, &mut pos, 4)?, 0),
            // ext 8/16/32: a length, then the type byte, then the data
            0xc7 => (read_len(buf, &mut pos, 1)? + 1, 0),
            0xc8 => (read_len(buf, &mut pos, 2)? + 1, 0),
            0xc9 => (read_len(buf, &mut pos, 4)?.saturating_add(1), 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            // fixext 1/2/4/8/16: the type byte plus the data
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, read_len(buf, &mut pos, 2)?),
            0xdd => (0, read_len(buf, &mut pos, 4)?),
            0xde => (0, read_len(buf, &mut pos, 2)?.saturating_mul(2)),
            0xdf => (0, read_len(buf, &mut pos, 4)?.saturating_mul(2)),
        };
        if skip > buf.len() - pos {
            return Err(SkipError::Truncated);
        }
        pos += skip;
        pending = pending.saturating_add(children);
    }
    Ok(pos)
}

/// Checks that `buf` is exactly one MessagePack value.
pub(crate) fn check_one_value(buf: &[u8]) -> Result<(), SkipError> {
    if skip_value(buf, 0)? == buf.len() {
        Ok(())
    } else {
        Err(SkipError::Trailing)
    }
}

/// The number of entries of the map starting at `pos` and the offset of its
/// first key, or `None` when the value there is not a map.
pub(crate) fn map_header(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let marker = *buf.get(pos)?;
    let mut at = pos + 1;
    let len = match marker {
        0x80..=0x8f => usize::from(marker & 0x0f),
        0xde => read_len(buf, &mut at, 2).ok()?,
        0xdf => read_len(buf, &mut at, 4).ok()?,
        _ => return None,
    };
    Some((len, at))
}

/// The bytes of the str or bin value starting at `pos`, or `None` for other types.
pub(crate) fn text_bytes(buf: &[u8], pos: usize) -> Option<&[u8]> {
    let marker = *buf.get(pos)?;
    let mut at = pos + 1;
    let len = match marker {
        0xa0..=0xbf => usize::from(marker & 0x1f),
        0xc4 | 0xd9 => read_len(buf, &mut at, 1).ok()?,
        0xc5 | 0xda => read_len(buf, &mut at, 2).ok()?,
        0xc6 | 0xdb => read_len(buf, &mut at, 4).ok()?,
        _ => return None,
    };
    buf.get(at..at.checked_add(len)?)
}

/// Reads a big-endian length of `width` bytes at `pos` and advances past it.
fn read_len(buf: &[u8], pos: &mut usize, width: usize) -> Result<usize, SkipError> {
    let bytes = buf.get(*pos..*pos + width).ok_or(SkipError::Truncated)?;
    *pos += width;
    let value = bytes
        .iter()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
    usize::try_from(value).map_err(|_| SkipError::Truncated)
}
