//! Moving bytes between a TCP connection and an SSH channel.
//!
//! The channel side is always the FTP server's (a `direct-tcpip` channel to its data port in
//! passive mode, a `forwarded-tcpip` channel from it in active mode); the TCP side is the FTP
//! client's. A data transfer is over when the server's side has ended and everything it sent
//! has reached the client: the server only closes its data connection after the last byte of
//! a download, or after the upload's EOF it received from us. The client's side is not waited
//! for, because some clients keep their data socket open until they have read `226` — which
//! ftp-tunnel holds until the transfer is over.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use russh::Channel;
use russh::client::Msg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Copy buffer per direction. Each TCP read becomes channel packets of up to the peer's
/// maximum packet size (32 KiB from OpenSSH); an 8 KiB buffer would send 8 KiB packets,
/// measured 25% slower.
const BUF: usize = 256 * 1024;

/// Bytes moved by one data connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpStats {
    /// From the TCP side into the channel.
    pub to_channel: u64,
    /// From the channel to the TCP side.
    pub from_channel: u64,
}

/// Carries one data connection between the FTP client's TCP stream and the FTP server's SSH
/// channel, with half-close passed on both ways, until the server's side has ended and its
/// bytes are delivered (see the module documentation).
pub async fn pump(tcp: TcpStream, channel: Channel<Msg>) -> std::io::Result<PumpStats> {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set on data connection");
    }
    // into_stream writes whole buffers as max-size packets and sends EOF on shutdown;
    // dropping it sends CHANNEL_CLOSE.
    let (mut from_server, mut to_server) = tokio::io::split(channel.into_stream());
    let (mut from_client, mut to_client) = tcp.into_split();
    let uploaded = AtomicU64::new(0);
    let mut upstream = pin!(copy_then_shutdown(
        &mut from_client,
        &mut to_server,
        &uploaded
    ));
    let downloaded = AtomicU64::new(0);
    let downstream = copy_then_shutdown(&mut from_server, &mut to_client, &downloaded);
    let mut downstream = pin!(downstream);
    let mut upstream_done = false;
    let result = loop {
        tokio::select! {
            result = &mut upstream, if !upstream_done => {
                upstream_done = true;
                if let Err(error) = result {
                    // The client may reset its socket once it has what it wanted; the
                    // server's side decides when the transfer is over.
                    tracing::debug!(%error, "client side of a data connection failed");
                }
            }
            result = &mut downstream => break result,
        }
    };
    let stats = PumpStats {
        to_channel: uploaded.load(Ordering::Relaxed),
        from_channel: downloaded.load(Ordering::Relaxed),
    };
    tracing::trace!(?stats, "pump done");
    result.map(|()| stats)
}

/// Copies until EOF, counting, then shuts the writer down (passes the half-close on).
async fn copy_then_shutdown<R, W>(
    reader: &mut R,
    writer: &mut W,
    count: &AtomicU64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let mut filled = reader.read(&mut buf).await?;
        if filled == 0 {
            break;
        }
        // An SSH channel yields one packet per read: take whatever else is already there,
        // so that a write carries many packets (fewer syscalls) without waiting for more.
        let mut eof = false;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]).now_or_never() {
                Some(Ok(0)) => {
                    eof = true;
                    break;
                }
                Some(Ok(n)) => filled += n,
                Some(Err(error)) => return Err(error),
                None => break,
            }
        }
        writer.write_all(&buf[..filled]).await?;
        count.fetch_add(filled as u64, Ordering::Relaxed);
        if eof {
            break;
        }
    }
    writer.flush().await?;
    writer.shutdown().await
}
