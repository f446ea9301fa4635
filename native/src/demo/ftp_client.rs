//! The demo's FTP client: suppaftp doing upload, list, download and a sha256 check in one
//! data mode.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use suppaftp::Status;
use suppaftp::tokio::AsyncFtpStream;
use suppaftp::types::FileType;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::debug;

/// How long any single FTP step may take before the demo calls it failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// The FTP data-connection modes the demo exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtpMode {
    /// Extended passive (RFC 2428): `EPSV` → `229`.
    Epsv,
    /// Passive (RFC 959): `PASV` → `227`.
    Pasv,
    /// Extended active (RFC 2428): `EPRT |1|addr|port|`.
    Eprt,
    /// Active (RFC 959): `PORT a,b,c,d,p1,p2`.
    Port,
}

impl FtpMode {
    /// All four modes, in the order the demo runs them.
    pub const ALL: [FtpMode; 4] = [FtpMode::Epsv, FtpMode::Pasv, FtpMode::Eprt, FtpMode::Port];

    /// The FTP verb that selects this mode.
    pub fn verb(self) -> &'static str {
        match self {
            FtpMode::Epsv => "EPSV",
            FtpMode::Pasv => "PASV",
            FtpMode::Eprt => "EPRT",
            FtpMode::Port => "PORT",
        }
    }

    /// True for the active modes (the server connects back to the client).
    pub fn is_active(self) -> bool {
        matches!(self, FtpMode::Eprt | FtpMode::Port)
    }
}

impl fmt::Display for FtpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that width specifiers such as `{mode:<5}` line columns up.
        f.pad(self.verb())
    }
}

/// What one step moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// STOR.
    Upload,
    /// LIST.
    List,
    /// RETR.
    Download,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Step::Upload => "upload",
            Step::List => "list",
            Step::Download => "download",
        })
    }
}

/// One measured data transfer, as the FTP client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// What it did.
    pub step: Step,
    /// The remote file name (empty for LIST).
    pub file: String,
    /// Payload bytes moved over the data connection.
    pub bytes: u64,
    /// Wall time from issuing the command to the server's completion reply.
    pub elapsed: Duration,
}

/// Errors of an FTP client run.
#[derive(Debug, thiserror::Error)]
pub enum FtpClientError {
    /// The FTP library reported an error.
    #[error("{step}: {source}")]
    Ftp {
        /// Which step failed.
        step: &'static str,
        /// The error.
        source: suppaftp::FtpError,
    },
    /// Local I/O (the data connection or the local file) failed.
    #[error("{step}: {source}")]
    Io {
        /// Which step failed.
        step: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A step took longer than the step timeout.
    #[error("{0}: timed out after {STEP_TIMEOUT:?}")]
    Timeout(&'static str),
    /// The listing did not name the uploaded file.
    #[error("LIST does not show {0}")]
    NotListed(String),
    /// The downloaded bytes differ from the uploaded ones.
    #[error("sha256 mismatch for {file}: sent {sent}, received {received}")]
    HashMismatch {
        /// The file.
        file: String,
        /// Hex digest of the uploaded data.
        sent: String,
        /// Hex digest of the downloaded data.
        received: String,
    },
}

/// A local file to send, with its digest computed in advance.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Path of the local file.
    pub path: std::path::PathBuf,
    /// Its size in bytes.
    pub len: u64,
    /// Its sha256, lower-case hex.
    pub sha256: String,
}

/// Hex-encodes a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn timed<T, E>(
    step: &'static str,
    fut: impl Future<Output = Result<T, E>>,
    wrap: impl FnOnce(&'static str, E) -> FtpClientError,
) -> Result<T, FtpClientError> {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(wrap(step, e)),
        Err(_) => Err(FtpClientError::Timeout(step)),
    }
}

fn ftp_err(step: &'static str, source: suppaftp::FtpError) -> FtpClientError {
    FtpClientError::Ftp { step, source }
}

fn io_err(step: &'static str, source: std::io::Error) -> FtpClientError {
    FtpClientError::Io { step, source }
}

/// The result of one mode's run: what was measured before any failure, and the failure.
#[derive(Debug)]
pub struct ModeOutcome {
    /// The control connection's local address (how the tunnel's events name this session).
    pub client_addr: Option<SocketAddr>,
    /// The transfers completed and verified (or measured, for the one that failed its check).
    pub transfers: Vec<Transfer>,
    /// Ok if every step passed.
    pub result: Result<(), FtpClientError>,
}

/// Connects to `addr`, logs in anonymously and, for each payload, uploads it in `mode`,
/// checks the listing names it, downloads it and compares sha256 digests.
pub async fn run_mode(addr: SocketAddr, mode: FtpMode, payloads: &[Payload]) -> ModeOutcome {
    let mut outcome = ModeOutcome {
        client_addr: None,
        transfers: Vec::new(),
        result: Ok(()),
    };
    outcome.result = run_mode_into(
        addr,
        mode,
        payloads,
        &mut outcome.client_addr,
        &mut outcome.transfers,
    )
    .await;
    outcome
}

async fn run_mode_into(
    addr: SocketAddr,
    mode: FtpMode,
    payloads: &[Payload],
    client_addr: &mut Option<SocketAddr>,
    transfers: &mut Vec<Transfer>,
) -> Result<(), FtpClientError> {
    let mut ftp = timed("connect", AsyncFtpStream::connect(addr), ftp_err).await?;
    *client_addr = ftp.get_ref().await.local_addr().ok();
    timed("login", ftp.login("anonymous", "demo@ftp-tunnel"), ftp_err).await?;
    timed("TYPE I", ftp.transfer_type(FileType::Binary), ftp_err).await?;
    match mode {
        FtpMode::Epsv => ftp.set_mode(suppaftp::Mode::ExtendedPassive),
        FtpMode::Pasv => ftp.set_mode(suppaftp::Mode::Passive),
        // suppaftp sends PORT on an IPv4 control connection (EPRT only on IPv6).
        FtpMode::Port => ftp = ftp.active_mode(STEP_TIMEOUT),
        // EPRT is driven by hand below; the library's mode is not consulted.
        FtpMode::Eprt => {}
    }

    for (i, payload) in payloads.iter().enumerate() {
        let name = format!("demo-{}-{i}.bin", mode.verb().to_ascii_lowercase());

        let start = Instant::now();
        let mut file = tokio::fs::File::open(&payload.path)
            .await
            .map_err(|e| io_err("open local file", e))?;
        let sent = if mode == FtpMode::Eprt {
            eprt_upload(&mut ftp, &name, &mut file).await?
        } else {
            timed("STOR", ftp.put_file(&name, &mut file), ftp_err).await?
        };
        transfers.push(Transfer {
            step: Step::Upload,
            file: name.clone(),
            bytes: sent,
            elapsed: start.elapsed(),
        });

        let start = Instant::now();
        let (listing, list_bytes) = if mode == FtpMode::Eprt {
            let raw = eprt_list(&mut ftp).await?;
            let len = raw.len() as u64;
            let text = String::from_utf8_lossy(&raw).into_owned();
            (text.lines().map(str::to_string).collect::<Vec<_>>(), len)
        } else {
            let lines = timed("LIST", ftp.list(None), ftp_err).await?;
            let len = lines.iter().map(|l| l.len() as u64 + 2).sum();
            (lines, len)
        };
        transfers.push(Transfer {
            step: Step::List,
            file: String::new(),
            bytes: list_bytes,
            elapsed: start.elapsed(),
        });
        if !listing.iter().any(|l| l.ends_with(&name)) {
            return Err(FtpClientError::NotListed(name));
        }

        let start = Instant::now();
        let (received, digest) = if mode == FtpMode::Eprt {
            eprt_retr(&mut ftp, &name).await?
        } else {
            let stream = timed("RETR", ftp.retr_as_stream(&name), ftp_err).await?;
            let mut stream = Box::pin(stream);
            let (n, digest) = timed("RETR data", hash_reader(&mut stream), io_err).await?;
            let stream = std::pin::Pin::into_inner(stream);
            timed("RETR reply", stream.finish(), ftp_err).await?;
            (n, digest)
        };
        transfers.push(Transfer {
            step: Step::Download,
            file: name.clone(),
            bytes: received,
            elapsed: start.elapsed(),
        });
        if digest != payload.sha256 || received != payload.len {
            return Err(FtpClientError::HashMismatch {
                file: name,
                sent: payload.sha256.clone(),
                received: digest,
            });
        }
    }
    // A failed QUIT after verified transfers does not make the mode fail.
    if let Err(e) = timed("QUIT", ftp.quit(), ftp_err).await {
        debug!(error = %e, "QUIT failed");
    }
    Ok(())
}

async fn hash_reader<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

/// Opens a listener on the control connection's local address and announces it with EPRT.
///
/// suppaftp only uses EPRT on IPv6 control connections, so for IPv4 the demo sends the
/// command itself (`AsyncFtpStream::eprt`) and accepts the data connection on its own socket.
async fn eprt_listen(ftp: &mut AsyncFtpStream) -> Result<TcpListener, FtpClientError> {
    let (mut local, peer) = {
        let sock = ftp.get_ref().await;
        let local = sock
            .local_addr()
            .map_err(|e| io_err("EPRT local address", e))?;
        let peer = sock
            .peer_addr()
            .map_err(|e| io_err("EPRT peer address", e))?;
        (local, peer)
    };
    local.set_port(0);
    let listener = TcpListener::bind(local)
        .await
        .map_err(|e| io_err("EPRT listen", e))?;
    let announce = listener
        .local_addr()
        .map_err(|e| io_err("EPRT listen", e))?;
    debug!(%announce, %peer, "EPRT");
    timed("EPRT", ftp.eprt(announce), ftp_err).await?;
    Ok(listener)
}

/// Accepts the server's data connection, only from the control connection's peer address
/// (the check suppaftp applies to PORT, so a stray local process cannot inject data).
async fn eprt_accept(
    ftp: &mut AsyncFtpStream,
    listener: &TcpListener,
) -> Result<tokio::net::TcpStream, FtpClientError> {
    let peer_ip = ftp
        .get_ref()
        .await
        .peer_addr()
        .map_err(|e| io_err("EPRT peer address", e))?
        .ip();
    let accept = async {
        loop {
            let (stream, from) = listener.accept().await?;
            if from.ip().to_canonical() == peer_ip.to_canonical() {
                return Ok::<_, std::io::Error>(stream);
            }
            debug!(%from, "ignoring data connection from an unexpected peer");
        }
    };
    timed("EPRT accept", accept, io_err).await
}

/// Sends a data command after EPRT and returns the accepted data connection.
async fn eprt_open(
    ftp: &mut AsyncFtpStream,
    step: &'static str,
    command: String,
) -> Result<tokio::net::TcpStream, FtpClientError> {
    let listener = eprt_listen(ftp).await?;
    timed(
        step,
        ftp.custom_command(command, &[Status::AboutToSend, Status::AlreadyOpen]),
        ftp_err,
    )
    .await?;
    eprt_accept(ftp, &listener).await
}

/// Reads the completion reply of a transfer whose data connection is closed.
async fn eprt_finish(ftp: &mut AsyncFtpStream, step: &'static str) -> Result<(), FtpClientError> {
    timed(
        step,
        ftp.read_response_in(&[Status::ClosingDataConnection, Status::RequestedFileActionOk]),
        ftp_err,
    )
    .await
    .map(drop)
}

async fn eprt_upload<R: AsyncRead + Unpin>(
    ftp: &mut AsyncFtpStream,
    name: &str,
    file: &mut R,
) -> Result<u64, FtpClientError> {
    let mut data = eprt_open(ftp, "STOR", format!("STOR {name}")).await?;
    let n = timed("STOR data", tokio::io::copy(file, &mut data), io_err).await?;
    timed("STOR close", data.shutdown(), io_err).await?;
    drop(data);
    eprt_finish(ftp, "STOR reply").await?;
    Ok(n)
}

async fn eprt_list(ftp: &mut AsyncFtpStream) -> Result<Vec<u8>, FtpClientError> {
    let mut data = eprt_open(ftp, "LIST", "LIST".to_string()).await?;
    let mut buf = Vec::new();
    timed("LIST data", data.read_to_end(&mut buf), io_err).await?;
    drop(data);
    eprt_finish(ftp, "LIST reply").await?;
    Ok(buf)
}

async fn eprt_retr(ftp: &mut AsyncFtpStream, name: &str) -> Result<(u64, String), FtpClientError> {
    let mut data = eprt_open(ftp, "RETR", format!("RETR {name}")).await?;
    let result = timed("RETR data", hash_reader(&mut data), io_err).await?;
    drop(data);
    eprt_finish(ftp, "RETR reply").await?;
    Ok(result)
}
