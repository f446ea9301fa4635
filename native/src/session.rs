//! One FTP control connection: the client's TCP socket, a `direct-tcpip` channel to the FTP
//! server, and a component instance between them that rewrites the control lines and asks
//! for data forwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use crate::forwards::{DataEvent, DataFinished, ForwardContext};
use crate::runtime::{Endpoint, Output, Runtime, SessionConfig, TunnelKind};
use crate::ssh::SshPool;
use crate::tunnel::{FtpSettings, TunnelEvent};

/// Largest read from the client's control connection at once (a stack buffer).
const CONTROL_READ: usize = 4 * 1024;

/// Everything the sessions of one tunnel share.
pub struct SessionShared {
    /// The SSH connections.
    pub pool: Arc<SshPool>,
    /// The compiled component.
    pub runtime: Runtime,
    /// FTP rules.
    pub ftp: FtpSettings,
    /// Where events are published.
    pub events: broadcast::Sender<TunnelEvent>,
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The FTP server could not be reached through the SSH server.
    #[error("cannot reach the FTP server {host}:{port} through SSH: {reason}")]
    ServerUnreachable {
        /// Destination host.
        host: String,
        /// Destination port.
        port: u16,
        /// As the SSH layer said it.
        reason: String,
    },
    /// The component failed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// A socket failed.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs one control connection until either side closes it.
pub async fn run_session(
    shared: Arc<SessionShared>,
    id: u64,
    client: TcpStream,
    client_peer: SocketAddr,
    server_host: String,
    server_port: u16,
) -> Result<(), SessionError> {
    let _ = client.set_nodelay(true);
    let local = client.local_addr()?;
    // The component first: should it fail, no channel to the FTP server is left open.
    let (data_tx, mut data_rx) = mpsc::unbounded_channel::<DataEvent>();
    let forwards = ForwardContext::new(shared.pool.clone(), data_tx, shared.ftp.data_timeout);
    let config = SessionConfig {
        tunnel: TunnelKind::Local,
        client_peer: client_peer.ip().to_canonical().to_string(),
        server: Endpoint {
            host: server_host.clone(),
            port: server_port,
        },
        passive_bind: shared
            .ftp
            .passive_bind
            .unwrap_or_else(|| local.ip().to_canonical())
            .to_string(),
        active_bind: shared.ftp.active_bind.clone(),
        trust_passive_address: shared.ftp.trust_passive_address,
        allow_foreign_data_address: shared.ftp.allow_foreign_data_address,
        max_line: shared.ftp.max_line,
    };
    let mut instance = shared.runtime.start_session(forwards, &config).await?;
    let channel = shared
        .pool
        .control()
        .open_direct_tcpip(&server_host, server_port, client_peer)
        .await
        .map_err(|e| SessionError::ServerUnreachable {
            host: server_host.clone(),
            port: server_port,
            reason: e.to_string(),
        });
    let (client_read, mut client_write) = client.into_split();
    let channel = match channel {
        Ok(channel) => channel,
        Err(error) => {
            let reply = format!("421 Service not available: {error}\r\n");
            let _ = client_write.write_all(reply.as_bytes()).await;
            return Err(error);
        }
    };
    info!(session = id, client = %client_peer, server = %format!("{server_host}:{server_port}"), "FTP session opened");
    let _ = shared.events.send(TunnelEvent::SessionOpened {
        session: id,
        client: client_peer,
    });

    // No read buffer lives across an await: an idle session holds no buffer at all (the
    // client side is read only once readable, the channel hands over whole messages).
    let (mut server_read, server_write) = channel.split();
    let outcome: Result<(), SessionError> = async {
        loop {
            // A finished transfer is logged after its completion reply went out: the log
            // write is not on the path of the reply.
            let mut finished = None;
            let mut output = tokio::select! {
                ready = client_read.readable() => {
                    ready?;
                    let Some(bytes) = read_ready(&client_read)? else { continue };
                    if bytes.is_empty() { break; }
                    instance.from_client(&bytes).await?
                }
                message = server_read.wait() => match message {
                    Some(ChannelMsg::Data { data }) => instance.from_server(&data).await?,
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                    Some(_) => continue,
                },
                Some(event) = data_rx.recv() => match event {
                    DataEvent::Connected(forward) => instance.data_connected(forward).await?,
                    DataEvent::Finished(event) => {
                        let output = instance.data_finished(event.id).await?;
                        finished = Some(event);
                        output
                    }
                },
            };
            if !output.to_server.is_empty() {
                server_write
                    .data_bytes(std::mem::take(&mut output.to_server))
                    .await
                    .map_err(|e| {
                        std::io::Error::other(format!("SSH channel to the FTP server: {e}"))
                    })?;
            }
            if !output.to_client.is_empty() {
                client_write.write_all(&output.to_client).await?;
            }
            publish_notes(&shared, id, &output);
            if let Some(event) = &finished {
                publish_transfer(&shared, id, event);
            }
        }
        Ok(())
    }
    .await;
    if let Err(SessionError::Runtime(error)) = &outcome {
        warn!(session = id, "{error}");
        let _ = client_write
            .write_all(b"421 Service not available: ftp-tunnel's FTP rewrite failed.\r\n")
            .await;
    }
    let _ = server_write.eof().await;
    let _ = server_write.close().await;
    let _ = client_write.shutdown().await;
    // Dropping the instance closes every forward the session still held.
    tokio::time::timeout(Duration::from_secs(1), instance.close())
        .await
        .ok();
    info!(session = id, "FTP session closed");
    let _ = shared
        .events
        .send(TunnelEvent::SessionClosed { session: id });
    outcome
}

/// Reads what the client sent, if anything is there yet; `Some(empty)` at end of stream.
fn read_ready(client: &OwnedReadHalf) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; CONTROL_READ];
    match client.try_read(&mut buf) {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

fn publish_notes(shared: &SessionShared, session: u64, output: &Output) {
    for note in &output.notes {
        info!(
            session,
            kind = %note.kind,
            "{} {:?} -> {:?}",
            if note.kind == "rewrite" { "rewrote" } else { "answered" },
            note.original,
            note.replacement
        );
        let _ = shared.events.send(TunnelEvent::Rewrite {
            session,
            kind: note.kind.clone(),
            original: note.original.clone(),
            rewritten: note.replacement.clone(),
        });
    }
}

fn publish_transfer(shared: &SessionShared, session: u64, event: &DataFinished) {
    let Ok(stats) = &event.result else {
        return;
    };
    info!(
        "data transfer finished session={session} forward={} mode={} to_server={} to_client={} ms={}",
        event.id,
        event.mode.as_str(),
        stats.to_channel,
        stats.from_channel,
        event.elapsed.as_millis()
    );
    let _ = shared.events.send(TunnelEvent::TransferFinished {
        session,
        forward: event.id,
        mode: event.mode,
        to_server: stats.to_channel,
        to_client: stats.from_channel,
        elapsed: event.elapsed,
    });
}
