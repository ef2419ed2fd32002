//! Reading a request's body: its frames are copied, as they arrive, into one
//! buffer that grows up to `rpc.max_body_bytes`, and the whole body must come
//! within `web.body_timeout`. Memory held is the body's bytes plus a constant,
//! however the client slices it.
//!
//! Why copy: hyper hands each socket read out as a `Bytes` that shares its
//! read buffer (8 KiB and up). Keeping those frames in a list, as
//! `Limited::collect` does, pins a whole read buffer per frame: a body sent a
//! byte per write cost ~30-180 bytes of memory per body byte. Copying drops
//! each frame at once, so hyper reuses its buffer for the next read.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body;

/// The first allocation of a body of unknown length; it doubles from there.
const FIRST_CAPACITY: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub(super) enum BodyError {
    #[error("request body over {max} bytes")]
    TooLarge { max: usize },
    #[error("request body not received within {0:?}")]
    TooSlow(Duration),
    #[error("cannot read the request body: {0}")]
    Broken(String),
}

/// The whole body, at most `max` bytes, within `within`. `declared` is the
/// request's `Content-Length` (already checked against `max`): the buffer
/// never grows past it.
pub(super) async fn read<B>(
    body: B,
    declared: Option<u64>,
    max: usize,
    within: Duration,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    tokio::time::timeout(within, collect(body, declared, max))
        .await
        .unwrap_or(Err(BodyError::TooSlow(within)))
}

async fn collect<B>(mut body: B, declared: Option<u64>, max: usize) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let ceiling = declared.map_or(max, |n| usize::try_from(n).unwrap_or(max).min(max));
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        // Trailers carry nothing the app is given.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.len() > max - buf.len() {
            return Err(BodyError::TooLarge { max });
        }
        let needed = buf.len() + data.len();
        if needed > buf.capacity() {
            // Doubling keeps the copies few; the cap keeps a declared or
            // limited body from reserving more than it may hold.
            let target = needed
                .max(buf.capacity() * 2)
                .max(FIRST_CAPACITY)
                .min(ceiling.max(needed));
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(&data);
        // `data` drops here: hyper's read buffer is no longer shared.
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::StreamBody;
    use hyper::body::Frame;

    use super::*;

    type Frames = tokio_stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>;

    /// A body arriving as `pieces`, one frame each.
    fn body_of(pieces: Vec<&'static [u8]>) -> StreamBody<Frames> {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = pieces
            .into_iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(tokio_stream::iter(frames))
    }

    const LONG: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn tiny_frames_become_one_buffer_of_the_body_size() {
        let pieces: Vec<&'static [u8]> = vec![b"a"; 1000];
        let body = read(body_of(pieces), Some(1000), 4096, LONG).await;
        let body = body.expect("a body");
        assert_eq!(body.len(), 1000);
        assert!(body.iter().all(|&b| b == b'a'));

        let chunked = read(body_of(vec![b"ab"; 10_000]), None, 1 << 20, LONG).await;
        assert_eq!(chunked.expect("a body").len(), 20_000);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_however_it_comes() {
        let over = read(body_of(vec![b"abc"; 11]), None, 32, LONG).await;
        assert!(
            matches!(over, Err(BodyError::TooLarge { max: 32 })),
            "{over:?}"
        );
        let exact = read(body_of(vec![b"ab"; 16]), None, 32, LONG).await;
        assert_eq!(exact.expect("32 bytes fit").len(), 32);
    }

    #[tokio::test]
    async fn a_body_slower_than_the_timeout_is_cut() {
        let stalled = StreamBody::new(tokio_stream::pending::<Result<Frame<Bytes>, Infallible>>());
        let slow = read(stalled, Some(10), 1024, Duration::from_millis(50)).await;
        assert!(matches!(slow, Err(BodyError::TooSlow(_))), "{slow:?}");
    }
}
