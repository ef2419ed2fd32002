//! A connection's write side with a stall limit: a client that takes nothing
//! of its response for the limit gets its connection cut (hyper has no write
//! timeout), so a reader that never reads cannot hold a connection slot.
//! Progress of any size resets the clock; no timer exists while writes flow.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Wraps a stream; writes that stay pending for `limit` fail with `TimedOut`.
pub(super) struct WriteStall<S> {
    inner: S,
    limit: Duration,
    /// Armed at the first pending write, dropped at the next progress: one
    /// allocation per stall, none while the client keeps reading.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStall<S> {
    pub(super) fn new(inner: S, limit: Duration) -> WriteStall<S> {
        WriteStall {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After the inner write said `Pending`: has the client read nothing for the limit?
    fn check_stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing of its response for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Ready(done) => {
                self.stalled = None;
                Poll::Ready(done)
            }
            Poll::Pending => self.check_stall(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(result, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_reader_that_never_reads_is_cut_after_the_limit() {
        // A 1 KiB duplex pipe whose other end never reads: writes stall.
        let (near, _far) = tokio::io::duplex(1024);
        let mut stream = WriteStall::new(near, Duration::from_millis(200));
        let started = tokio::time::Instant::now();
        let err =
            tokio::time::timeout(Duration::from_secs(10), stream.write_all(&[0u8; 64 * 1024]))
                .await
                .expect("cut well within 10 s")
                .expect_err("a stalled write must fail");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_slow_but_steady_reader_is_not_cut() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut stream = WriteStall::new(near, Duration::from_secs(2));
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut sink = vec![0u8; 1024];
            let mut total = 0;
            while total < 16 * 1024 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                total += far.read(&mut sink).await.expect("read");
            }
            total
        });
        tokio::time::timeout(Duration::from_secs(10), stream.write_all(&[0u8; 16 * 1024]))
            .await
            .expect("done well within 10 s")
            .expect("each stall is shorter than the limit");
        assert_eq!(reader.await.expect("reader"), 16 * 1024);
    }
}
