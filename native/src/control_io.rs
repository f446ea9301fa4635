//! Either end of an FTP control connection: a TCP socket on our side, or an SSH channel
//! (`direct-tcpip` to the FTP server for `-L`, `forwarded-tcpip` from the FTP client for
//! `-R`). One shape for both, so that the session loop does not care which side is which.
//!
//! No read buffer lives across an await: an idle session holds none (a socket is read only
//! once readable, into a stack buffer; a channel hands over whole messages).

use bytes::Bytes;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Largest read from a control socket at once (a stack buffer).
const CONTROL_READ: usize = 4 * 1024;

/// The reading half of a control connection end.
pub enum ControlReader {
    /// A TCP socket.
    Tcp(OwnedReadHalf),
    /// An SSH channel.
    Channel(ChannelReadHalf),
}

/// The writing half of a control connection end.
pub enum ControlWriter {
    /// A TCP socket.
    Tcp(OwnedWriteHalf),
    /// An SSH channel.
    Channel(ChannelWriteHalf<Msg>),
}

/// Splits a TCP socket into control halves.
pub fn tcp(stream: TcpStream) -> (ControlReader, ControlWriter) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    (ControlReader::Tcp(read), ControlWriter::Tcp(write))
}

/// Splits an SSH channel into control halves.
pub fn channel(channel: Channel<Msg>) -> (ControlReader, ControlWriter) {
    let (read, write) = channel.split();
    (ControlReader::Channel(read), ControlWriter::Channel(write))
}

impl ControlReader {
    /// The next bytes; `None` at end of stream. Cancel-safe: nothing is lost when the
    /// future is dropped before it completes.
    pub async fn recv(&mut self) -> std::io::Result<Option<Bytes>> {
        match self {
            ControlReader::Tcp(read) => loop {
                read.readable().await?;
                let mut buf = [0u8; CONTROL_READ];
                match read.try_read(&mut buf) {
                    Ok(0) => return Ok(None),
                    Ok(n) => return Ok(Some(Bytes::copy_from_slice(&buf[..n]))),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            },
            ControlReader::Channel(read) => loop {
                match read.wait().await {
                    Some(ChannelMsg::Data { data }) => return Ok(Some(data)),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Ok(None),
                    Some(_) => continue,
                }
            },
        }
    }
}

impl ControlWriter {
    /// Writes all of `bytes`.
    pub async fn send(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        match self {
            ControlWriter::Tcp(write) => write.write_all(&bytes).await,
            ControlWriter::Channel(write) => write
                .data_bytes(Bytes::from(bytes))
                .await
                .map_err(|e| std::io::Error::other(format!("SSH channel: {e}"))),
        }
    }

    /// Ends this direction and closes the connection end.
    pub async fn close(self) {
        match self {
            ControlWriter::Tcp(mut write) => {
                let _ = write.shutdown().await;
            }
            ControlWriter::Channel(write) => {
                let _ = write.eof().await;
                let _ = write.close().await;
            }
        }
    }
}
