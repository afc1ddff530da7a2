//! A new connection's first bytes, read within a deadline, then handed back to hyper.
//!
//! hyper-util's auto builder reads the first bytes of a connection to tell HTTP/2 with prior
//! knowledge from HTTP/1.1, and it has no timeout while it does so; hyper's header timeout
//! only starts once the HTTP/1.1 parser runs. A client that connects and sends nothing, or
//! trickles the 24-byte HTTP/2 preface one byte at a time, would otherwise hold its
//! connection forever. So the server reads those bytes itself under the header timeout
//! ([`read_opening`]) and puts them back in front of the stream ([`Rewound`]), where the
//! auto builder finds them at once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why a connection's opening bytes were not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpeningError {
    /// The client sent nothing, or not enough to tell its protocol, within the deadline.
    #[error("no request within {0:?}")]
    TimedOut(Duration),
    /// The client closed the connection before sending anything.
    #[error("closed before sending anything")]
    Closed,
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads until the bytes received tell HTTP/1.1 (they stop matching the HTTP/2 preface) from
/// HTTP/2 (the whole preface), within `deadline`. Returns the bytes read.
pub(crate) async fn read_opening<I: AsyncRead + Unpin>(
    io: &mut I,
    deadline: Duration,
) -> Result<Bytes, OpeningError> {
    let mut buf = [0u8; H2_PREFACE.len()];
    let mut filled = 0;
    let read = async {
        loop {
            let n = io.read(&mut buf[filled..]).await?;
            if n == 0 {
                return if filled == 0 {
                    Err(OpeningError::Closed)
                } else {
                    // Half a request then EOF: let hyper see it and answer or close.
                    Ok(())
                };
            }
            filled += n;
            if filled == H2_PREFACE.len() || buf[..filled] != H2_PREFACE[..filled] {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok(())) => Ok(Bytes::copy_from_slice(&buf[..filled])),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(OpeningError::TimedOut(deadline)),
    }
}

/// Whether a connection's opening bytes are the HTTP/2 preface (prior knowledge, or after
/// ALPN `h2`).
pub(crate) fn is_http2(opening: &[u8]) -> bool {
    opening == H2_PREFACE
}

/// A stream with bytes already read from it put back in front.
#[derive(Debug)]
pub(crate) struct Rewound<I> {
    /// Read before the stream itself; empty (and unallocated) once consumed.
    prefix: Bytes,
    inner: I,
}

impl<I> Rewound<I> {
    pub(crate) fn new(prefix: Bytes, inner: I) -> Self {
        Self { prefix, inner }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewound<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewound<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Vectored writes carry a subscriber's queued frames in one system call.
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn http1_is_told_by_its_first_byte() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let opening = read_opening(&mut server, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!opening.is_empty() && b"GET / HTTP/1.1\r\n".starts_with(&opening));
        let mut rewound = Rewound::new(opening, server);
        drop(client);
        let mut all = Vec::new();
        rewound.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn the_http2_preface_is_read_whole() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(&H2_PREFACE[..10]).await.unwrap();
        let reading = tokio::spawn(async move {
            read_opening(&mut server, Duration::from_secs(5))
                .await
                .unwrap()
        });
        tokio::task::yield_now().await;
        client.write_all(&H2_PREFACE[10..]).await.unwrap();
        assert_eq!(reading.await.unwrap(), H2_PREFACE);
    }

    #[tokio::test]
    async fn silence_and_a_trickled_preface_time_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let error = read_opening(&mut server, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(error, OpeningError::TimedOut(_)), "{error:?}");

        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"PRI * ").await.unwrap();
        let error = read_opening(&mut server, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(error, OpeningError::TimedOut(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_client_closing_at_once_is_told_apart() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        let error = read_opening(&mut server, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(error, OpeningError::Closed), "{error:?}");
    }
}
