//! The demo's FTP server: libunftp serving a directory on loopback, all four data modes.
//!
//! libunftp 0.24 does passive mode (PASV, EPSV) and, once enabled with
//! `ActivePassiveMode::ActiveAndPassive`, active mode through `PORT` only: it has no `EPRT`
//! command (upstream issue koenw/firetrap#20, still open). So that the demo can also show the
//! tunnel handling `EPRT`, the server's public address is a tiny line filter in front of
//! libunftp that rewrites `EPRT |1|a.b.c.d|port|` into the equivalent `PORT` and relays
//! everything else byte for byte. It is not an FTP server: libunftp still answers every
//! command and opens every data connection. The number of lines it rewrote is reported.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ftp_tunnel_core::command::parse_command;
use ftp_tunnel_core::endpoint::{format_port, parse_eprt_arg};
use ftp_tunnel_core::framing::LineFramer;
use libunftp::options::ActivePassiveMode;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use unftp_sbe_fs::Filesystem;

/// Longest command line the EPRT filter interprets; longer lines are relayed untouched.
const MAX_LINE: usize = LineFramer::DEFAULT_MAX_LINE;

/// Errors of the demo FTP server.
#[derive(Debug, thiserror::Error)]
pub enum FtpServerError {
    /// The directory to serve cannot be opened.
    #[error("cannot serve {path}: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A listening socket could not be bound.
    #[error("cannot bind the FTP server: {0}")]
    Bind(std::io::Error),
}

/// A running libunftp server (plus its EPRT filter); dropping it stops both listeners.
pub struct FtpServer {
    addr: SocketAddr,
    eprt_rewrites: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl FtpServer {
    /// Serves `root` anonymously on 127.0.0.1 (ports picked by the OS).
    pub async fn start(root: &Path) -> Result<FtpServer, FtpServerError> {
        let root = root.to_path_buf();
        // Open once up front so a bad root is an error here, not inside libunftp's generator.
        Filesystem::new(root.clone()).map_err(|source| FtpServerError::Root {
            path: root.clone(),
            source,
        })?;

        let inner = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(FtpServerError::Bind)?;
        let libunftp_addr = inner.local_addr().map_err(FtpServerError::Bind)?;
        let outer = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(FtpServerError::Bind)?;
        let addr = outer.local_addr().map_err(FtpServerError::Bind)?;

        let serve_root = root.clone();
        let libunftp_task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match inner.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error = %e, "FTP server accept failed");
                        continue;
                    }
                };
                // libunftp writes replies in pieces; without this Nagle holds them for an ACK.
                let _ = stream.set_nodelay(true);
                let root = serve_root.clone();
                tokio::spawn(async move {
                    let server = libunftp::ServerBuilder::new(Box::new(move || {
                        // The root was opened successfully at start and the demo owns it, so
                        // failing here means the directory vanished under us.
                        Filesystem::new(root.clone()).expect("FTP root directory disappeared")
                    }))
                    .greeting("ftp-tunnel demo FTP server (libunftp)")
                    // libunftp logs every command at INFO through slog with large span dumps;
                    // the demo's own report says what happened, so drop them.
                    .logger(slog::Logger::root(slog::Discard, slog::o!()))
                    .active_passive_mode(ActivePassiveMode::ActiveAndPassive)
                    .build();
                    match server {
                        Ok(server) => {
                            if let Err(e) = server.service(stream).await {
                                debug!(%peer, error = ?e, "FTP session ended with an error");
                            }
                        }
                        Err(e) => warn!(error = %e, "cannot build the libunftp server"),
                    }
                });
            }
        });

        let eprt_rewrites = Arc::new(AtomicU64::new(0));
        let counter = eprt_rewrites.clone();
        let filter_task = tokio::spawn(async move {
            loop {
                let (client, peer) = match outer.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error = %e, "FTP filter accept failed");
                        continue;
                    }
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay_with_eprt_filter(client, libunftp_addr, counter).await {
                        debug!(%peer, error = %e, "FTP control relay ended");
                    }
                });
            }
        });
        debug!(%addr, %libunftp_addr, root = %root.display(), "demo FTP server listening");
        Ok(FtpServer {
            addr,
            eprt_rewrites,
            tasks: vec![libunftp_task, filter_task],
        })
    }

    /// The address FTP clients (and the tunnel) connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many `EPRT` commands the filter turned into `PORT` so far.
    pub fn eprt_rewrites(&self) -> u64 {
        self.eprt_rewrites.load(Ordering::Relaxed)
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Relays one control connection to libunftp, rewriting IPv4 `EPRT` commands into `PORT`.
async fn relay_with_eprt_filter(
    client: TcpStream,
    server_addr: SocketAddr,
    counter: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let server = TcpStream::connect(server_addr).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, mut client_write) = client.into_split();
    let (mut server_read, server_write) = server.into_split();
    let replies = async move {
        let r = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
        r.map(drop)
    };
    let commands = filter_commands(client_read, server_write, counter);
    let (a, b) = tokio::join!(replies, commands);
    a.and(b)
}

/// Copies command lines from `input` to `output`, rewriting `EPRT |1|...|` lines.
async fn filter_commands<R, W>(
    input: R,
    mut output: W,
    counter: Arc<AtomicU64>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded read: a line longer than MAX_LINE is relayed in chunks, uninterpreted.
        let n = (&mut input)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            break;
        }
        match eprt_to_port(&line) {
            Some(port_line) => {
                counter.fetch_add(1, Ordering::Relaxed);
                debug!(eprt = %String::from_utf8_lossy(&line).trim_end(), port = %port_line.trim_end(), "EPRT rewritten for libunftp");
                output.write_all(port_line.as_bytes()).await?;
            }
            None => output.write_all(&line).await?,
        }
    }
    output.shutdown().await
}

/// `EPRT |1|a.b.c.d|port|` (any delimiter) → `PORT a,b,c,d,p1,p2\r\n`; anything else → None.
fn eprt_to_port(line: &[u8]) -> Option<String> {
    let content = line.strip_suffix(b"\n")?;
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    let command = parse_command(content)?;
    if command.verb != "EPRT" {
        return None;
    }
    match parse_eprt_arg(&command.arg).ok()? {
        SocketAddr::V4(addr) => Some(format_port(addr)),
        SocketAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eprt_ipv4_becomes_port() {
        assert_eq!(
            eprt_to_port(b"EPRT |1|127.0.0.1|5001|\r\n").as_deref(),
            Some("PORT 127,0,0,1,19,137\r\n")
        );
        assert_eq!(
            eprt_to_port(b"eprt !1!10.1.2.3!80!\n").as_deref(),
            Some("PORT 10,1,2,3,0,80\r\n")
        );
    }

    #[test]
    fn other_lines_are_untouched() {
        for line in [
            &b"EPRT |2|::1|5000|\r\n"[..],
            b"EPRT |1|127.0.0.1|0|\r\n",
            b"EPRT |1|127.0.0.1|65536|\r\n",
            b"EPRT |1|300.0.0.1|21|\r\n",
            b"EPRT |1|127.0.0.1|21\r\n",
            b"EPRT\r\n",
            b"PORT 127,0,0,1,1,1\r\n",
            b"RETR EPRT |1|1.2.3.4|5|\r\n",
            b"EPRT |1|127.0.0.1|21|",
            b"\xff\xf4EPRT\r\n",
        ] {
            assert_eq!(eprt_to_port(line), None, "{line:?}");
        }
    }
}
