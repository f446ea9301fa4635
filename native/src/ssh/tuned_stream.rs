//! The SSH connection's TCP socket, tuned for bulk transfer with small interactive replies.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A `TcpStream` that re-arms `TCP_QUICKACK` after every read.
///
/// Linux clears quick-ack mode by itself after a few segments, and then delays ACKs by up
/// to 40 ms; with SSH window adjustments and FTP's small control replies this stalled
/// transfers measurably on these machines. Setting it again after each read keeps ACKs
/// immediate. Elsewhere this is a plain pass-through.
#[derive(Debug)]
pub struct TunedStream {
    inner: TcpStream,
}

impl TunedStream {
    /// Wraps a connected stream, setting `TCP_NODELAY` (russh's `connect_stream` ignores
    /// `Config::nodelay`) and `TCP_QUICKACK`.
    pub fn new(inner: TcpStream) -> Self {
        if let Err(e) = inner.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let s = Self { inner };
        s.quickack();
        s
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn quickack(&self) {
        // Best effort: failure only costs latency, and must not break the connection.
        let _ = socket2::SockRef::from(&self.inner).set_tcp_quickack(true);
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn quickack(&self) {}
}

impl AsyncRead for TunedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.quickack();
        }
        r
    }
}

impl AsyncWrite for TunedStream {
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
