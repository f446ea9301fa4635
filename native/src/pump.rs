//! Moving bytes between a TCP connection and an SSH channel.
//!
//! The channel side is always the FTP server's (a `direct-tcpip` channel to its data port in
//! passive mode, a `forwarded-tcpip` channel from it in active mode); the TCP side is the FTP
//! client's. A data transfer is over when the server's side has ended and everything it sent
//! has reached the client: the server only closes its data connection after the last byte of
//! a download, or after the upload's EOF it received from us. The client's side is not waited
//! for, because some clients keep their data socket open until they have read `226` — which
//! ftp-tunnel holds until the transfer is over.
//!
//! Neither direction copies the data in user space: downloads hand the channel's packets to
//! the socket as they are, several per `writev`; uploads read into a shared buffer whose
//! filled part becomes the channel's packets. A transfer allocates nothing until it moves a
//! byte, which matters for many small files.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use futures::FutureExt;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Upload buffer. A read of the client's socket becomes channel packets of up to the peer's
/// maximum packet size (32 KiB from OpenSSH); reads much smaller than that would send small
/// packets, measured 25% slower.
const UPLOAD_BUF: usize = 256 * 1024;

/// Most channel packets handed to one `writev` (far below `IOV_MAX`).
const MAX_BATCH: usize = 64;

/// Bytes moved by one data connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpStats {
    /// From the TCP side into the channel.
    pub to_channel: u64,
    /// From the channel to the TCP side.
    pub from_channel: u64,
}

/// An SSH channel for one data connection, closed (`CHANNEL_CLOSE`) when dropped: also when
/// no client ever connects or the task carrying it is aborted, so that sshd never keeps a
/// connection to the FTP server's data port open for a channel nobody uses.
pub struct DataChannel {
    read: ChannelReadHalf,
    write: CloseOnDrop,
}

impl From<Channel<Msg>> for DataChannel {
    fn from(channel: Channel<Msg>) -> Self {
        let (read, write) = channel.split();
        Self {
            read,
            write: CloseOnDrop(Some(write)),
        }
    }
}

/// Carries one data connection between the FTP client's TCP stream and the FTP server's SSH
/// channel, with half-close passed on both ways, until the server's side has ended and its
/// bytes are delivered (see the module documentation). The channel is closed when this
/// returns or is dropped.
pub async fn pump(tcp: TcpStream, channel: impl Into<DataChannel>) -> std::io::Result<PumpStats> {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set on data connection");
    }
    let DataChannel {
        read: mut from_server,
        write: mut to_server,
    } = channel.into();
    let (mut from_client, mut to_client) = tcp.into_split();
    let uploaded = AtomicU64::new(0);
    let downloaded = AtomicU64::new(0);
    let last = until_server_side_ends(
        download(&mut from_server, &mut to_client, &downloaded),
        upload(&mut from_client, to_server.half(), &uploaded),
    )
    .await;
    // The server's side has ended. Close the channel before the last bytes go to the client:
    // vsftpd sends its completion reply only once its last data is acknowledged, and in
    // captures that happened only with the FIN sshd sends when our close arrives; the close
    // no longer waits for the client.
    to_server.close().await;
    // Lets the SSH connection's task send the close before this task goes on.
    tokio::task::yield_now().await;
    let result = match last {
        Ok(mut batch) => finish_download(&mut to_client, &mut batch, &downloaded).await,
        Err(error) => Err(error),
    };
    let stats = PumpStats {
        to_channel: uploaded.load(Ordering::Relaxed),
        from_channel: downloaded.load(Ordering::Relaxed),
    };
    tracing::trace!(?stats, "pump done");
    result.map(|()| stats)
}

/// Carries one data connection whose FTP server is on our side (`-R` tunnels): the server's
/// TCP stream and the client's SSH channel. Over when the server's side has ended and its
/// bytes went into the channel; the channel is then closed, after its EOF.
pub async fn pump_server_on_tcp(
    tcp: TcpStream,
    channel: impl Into<DataChannel>,
) -> std::io::Result<PumpStats> {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set on data connection");
    }
    let DataChannel {
        read: mut from_client,
        write: mut to_client,
    } = channel.into();
    let (mut from_server, mut to_server) = tcp.into_split();
    let uploaded = AtomicU64::new(0);
    let downloaded = AtomicU64::new(0);
    // The server's bytes go to the client; the transfer ends with them.
    let result = until_server_side_ends(
        upload(&mut from_server, to_client.half(), &downloaded),
        async {
            let mut batch = download(&mut from_client, &mut to_server, &uploaded).await?;
            finish_download(&mut to_server, &mut batch, &uploaded).await
        },
    )
    .await;
    to_client.close().await;
    let stats = PumpStats {
        to_channel: downloaded.load(Ordering::Relaxed),
        from_channel: uploaded.load(Ordering::Relaxed),
    };
    result.map(|()| stats)
}

/// Runs both directions of a data connection until `server_side` (the FTP server's bytes
/// on their way to the client) has ended; `client_side` runs alongside meanwhile. A failure
/// of the client's side is only logged: the client may reset its socket once it has what it
/// wanted, and the server's side decides when the transfer is over.
async fn until_server_side_ends<T>(
    server_side: impl Future<Output = std::io::Result<T>>,
    client_side: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<T> {
    let mut server_side = pin!(server_side);
    let mut client_side = pin!(client_side);
    let mut client_done = false;
    loop {
        tokio::select! {
            result = &mut client_side, if !client_done => {
                client_done = true;
                if let Err(error) = result {
                    tracing::debug!(%error, "client side of a data connection failed");
                }
            }
            result = &mut server_side => return result,
        }
    }
}

/// Client to server: reads into a buffer whose filled part is handed to the channel as it
/// is, then sends EOF.
async fn upload(
    from_client: &mut OwnedReadHalf,
    to_server: &ChannelWriteHalf<Msg>,
    count: &AtomicU64,
) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    loop {
        // Reclaims the buffer once the channel has sent (and dropped) earlier chunks.
        buf.reserve(UPLOAD_BUF);
        let n = from_client.read_buf(&mut buf).await?;
        if n == 0 {
            break;
        }
        let chunk = buf.split().freeze();
        to_server.data_bytes(chunk).await.map_err(channel_error)?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
    to_server.eof().await.map_err(channel_error)
}

/// Server to client: writes the channel's packets to the socket, as many at once as have
/// arrived, until the channel ends. Returns the packets that arrived with the end, not yet
/// written (see [`finish_download`]).
async fn download(
    from_server: &mut ChannelReadHalf,
    to_client: &mut OwnedWriteHalf,
    count: &AtomicU64,
) -> std::io::Result<VecDeque<Bytes>> {
    let mut batch: VecDeque<Bytes> = VecDeque::new();
    loop {
        match from_server.wait().await {
            Some(ChannelMsg::Data { data }) => batch.push_back(data),
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Ok(batch),
            Some(_) => continue,
        }
        // Whatever else has already arrived goes out in the same write.
        while batch.len() < MAX_BATCH {
            match from_server.wait().now_or_never() {
                Some(Some(ChannelMsg::Data { data })) => batch.push_back(data),
                Some(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => return Ok(batch),
                Some(Some(_)) => continue,
                None => break,
            }
        }
        write_counted(to_client, &mut batch, count).await?;
    }
}

/// Delivers the last packets of a download and shuts the socket's sending side down.
async fn finish_download(
    to_client: &mut OwnedWriteHalf,
    batch: &mut VecDeque<Bytes>,
    count: &AtomicU64,
) -> std::io::Result<()> {
    write_counted(to_client, batch, count).await?;
    to_client.flush().await?;
    to_client.shutdown().await
}

async fn write_counted(
    to: &mut OwnedWriteHalf,
    batch: &mut VecDeque<Bytes>,
    count: &AtomicU64,
) -> std::io::Result<()> {
    let bytes: usize = batch.iter().map(Bytes::len).sum();
    write_all_vectored(to, batch).await?;
    count.fetch_add(bytes as u64, Ordering::Relaxed);
    Ok(())
}

/// Writes every buffer of `batch`, in order, leaving it empty.
async fn write_all_vectored(
    to: &mut OwnedWriteHalf,
    batch: &mut VecDeque<Bytes>,
) -> std::io::Result<()> {
    while !batch.is_empty() {
        let slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
        let mut written = to.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let Some(front) = batch.front_mut() else {
                break;
            };
            if written >= front.len() {
                written -= front.len();
                batch.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}

fn channel_error(error: russh::Error) -> std::io::Error {
    std::io::Error::other(format!("SSH channel: {error}"))
}

/// The channel's sending half, closed (`CHANNEL_CLOSE`) when dropped, also when the pump is
/// aborted: a data connection that is gone must not leave its channel open on a pooled SSH
/// connection.
struct CloseOnDrop(Option<ChannelWriteHalf<Msg>>);

impl CloseOnDrop {
    fn half(&self) -> &ChannelWriteHalf<Msg> {
        // Some until `close` or drop.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }

    async fn close(&mut self) {
        if let Some(half) = self.0.take() {
            let _ = half.close().await;
        }
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(half) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Drop cannot await; the send needs room in the session's queue.
            runtime.spawn(async move {
                let _ = half.close().await;
            });
        }
    }
}
