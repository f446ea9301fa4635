//! One FTP control connection: its two ends (a TCP socket and an SSH channel, which is which
//! depends on the tunnel's direction), a component instance between them that rewrites the
//! control lines, and the session's data paths. The loop feeds the component whatever
//! arrives (bytes from either end, answers from data paths) and carries out the actions it
//! returns, in order.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ftp_tunnel_core::contract::{DataMode as CoreMode, Verdict as CoreVerdict};
use russh::client::Msg;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use crate::audit::SessionInfo;
use crate::control_io::{self, ControlReader, ControlWriter};
use crate::datapath::{DataEvent, DataFinished, DataPaths, DataPlan};
use crate::events::TunnelEvent;
use crate::gate::{Controls, SessionGate};
use crate::limits::Admission;
use crate::runtime::wit::{self, Action, ForwardError, Verdict};
use crate::runtime::{Runtime, SessionInstance};
use crate::settings::{Direction, FtpSettings};
use crate::ssh::SshPool;

/// Everything the sessions of one tunnel share.
pub struct SessionShared {
    /// The SSH connections.
    pub pool: Arc<SshPool>,
    /// The compiled component.
    pub runtime: Runtime,
    /// FTP rules.
    pub ftp: FtpSettings,
    /// What is alive against the tunnel's limits.
    pub admission: Arc<Admission>,
    /// Policies and audit log (none by default).
    pub controls: Controls,
    /// The SSH user the tunnel logged in as (for policies and the audit log).
    pub ssh_user: String,
    /// Where events are published.
    pub events: broadcast::Sender<TunnelEvent>,
}

/// A new control connection, as its tunnel accepted it.
pub enum Accepted {
    /// `-L ftp/`: an FTP client connected here; the FTP server is reached through SSH.
    Local {
        /// The client's socket.
        client: TcpStream,
        /// The client's address.
        peer: SocketAddr,
    },
    /// `-R ftp/`: an FTP client connected to the SSH server's listener; the FTP server is
    /// reached here.
    Remote {
        /// The `forwarded-tcpip` channel carrying the client's connection.
        client: russh::Channel<Msg>,
        /// The client's address as the SSH server reported it.
        originator: SocketAddr,
        /// Where the `-R` listener binds on the SSH server (data listeners bind there too).
        remote_bind: String,
    },
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The FTP server could not be reached.
    #[error("cannot reach the FTP server {host}:{port}: {reason}")]
    ServerUnreachable {
        /// Destination host.
        host: String,
        /// Destination port.
        port: u16,
        /// As the SSH layer or the OS said it.
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
    accepted: Accepted,
    server_host: String,
    server_port: u16,
) -> Result<(), SessionError> {
    let client_peer = match &accepted {
        Accepted::Local { peer, .. } => *peer,
        Accepted::Remote { originator, .. } => *originator,
    };
    // The component first: should it fail, nothing is opened towards the FTP server.
    let mut config = shared.ftp.session_config(client_peer, &server_host);
    // Commands are deferred to the host only when something here wants them; without
    // policies or an audit log the component answers them itself, as before.
    config.check_commands = shared.controls.check_commands();
    let instance = shared.runtime.start_session(&config).await;
    let gate = shared.controls.session(SessionInfo {
        session: id,
        ssh_user: shared.ssh_user.clone(),
        client: client_peer.to_string(),
        server: format!("{}:{server_port}", bracketed(&server_host)),
    });
    let (client, plan_base) = match accepted {
        Accepted::Local { client, .. } => {
            let local = client.local_addr()?.ip().to_canonical();
            (control_io::tcp(client), PlanBase::Local { local })
        }
        Accepted::Remote {
            client,
            remote_bind,
            ..
        } => (
            control_io::channel(client),
            PlanBase::Remote { remote_bind },
        ),
    };
    let (client_read, mut client_write) = client;
    let instance = match instance {
        Ok(instance) => instance,
        Err(error) => {
            refuse(&mut client_write, "ftp-tunnel's FTP rewrite failed").await;
            let error = SessionError::from(error);
            gate.ended(&error.to_string());
            return Err(error);
        }
    };
    let server = connect_server(&shared, &plan_base, &server_host, server_port, client_peer).await;
    let ((server_read, server_write), server_local) = match server {
        Ok(server) => server,
        Err(error) => {
            refuse(&mut client_write, &error.to_string()).await;
            instance.close().await;
            gate.ended(&error.to_string());
            return Err(error);
        }
    };
    let plan = plan_base.plan(&shared.ftp, server_local, &server_host);
    info!(session = id, client = %client_peer, server = %format!("{server_host}:{server_port}"), "FTP session opened");
    let _ = shared.events.send(TunnelEvent::SessionOpened {
        session: id,
        client: client_peer,
    });
    let (data_tx, data_rx) = mpsc::unbounded_channel();
    let paths = DataPaths::new(plan, shared.pool.clone(), shared.admission.clone(), data_tx);
    let mut session = Running {
        shared: &shared,
        id,
        instance,
        gate,
        paths,
        data_rx,
        client_read,
        client_write,
        server_read,
        server_write,
    };
    let outcome = session.run().await;
    let Running {
        instance,
        paths,
        gate,
        mut client_write,
        server_write,
        ..
    } = session;
    gate.ended(&match &outcome {
        Ok(()) => "closed".to_owned(),
        Err(error) => error.to_string(),
    });
    if let Err(SessionError::Runtime(error)) = &outcome {
        warn!(session = id, "{error}");
        refuse(&mut client_write, "ftp-tunnel's FTP rewrite failed").await;
    }
    // Every data path of the session closes with it.
    drop(paths);
    server_write.close().await;
    client_write.close().await;
    tokio::time::timeout(Duration::from_secs(1), instance.close())
        .await
        .ok();
    info!(session = id, "FTP session closed");
    let _ = shared
        .events
        .send(TunnelEvent::SessionClosed { session: id });
    outcome
}

/// Tells the FTP client that it will not be served, and why.
async fn refuse(client: &mut ControlWriter, reason: &str) {
    let reply = format!("421 Service not available: {reason}\r\n");
    let _ = client.send(reply.into_bytes()).await;
}

/// What a session's data plan depends on before the FTP server is connected.
enum PlanBase {
    /// `-L`: the address the client reached us on.
    Local { local: IpAddr },
    /// `-R`: where the control listener binds on the SSH server.
    Remote { remote_bind: String },
}

impl PlanBase {
    fn plan(self, ftp: &FtpSettings, server_local: Option<IpAddr>, server_host: &str) -> DataPlan {
        let loopback_like_server = match server_host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        match self {
            PlanBase::Local { local } => {
                // Active mode: the FTP server connects to a listener on the SSH server, of
                // the server's own address family unless configured otherwise.
                let remote_bind = ftp
                    .active_bind
                    .clone()
                    .unwrap_or_else(|| loopback_like_server.to_string());
                DataPlan {
                    direction: Direction::Local,
                    local_bind: ftp.passive_bind.unwrap_or(local),
                    remote_name: nameable(&remote_bind).unwrap_or(loopback_like_server),
                    remote_bind,
                    timeout: ftp.data_timeout,
                }
            }
            PlanBase::Remote { remote_bind } => DataPlan {
                direction: Direction::Remote,
                // Active mode: the FTP server connects to us from where we reached it.
                local_bind: ftp
                    .passive_bind
                    .or(server_local)
                    .unwrap_or(loopback_like_server),
                remote_name: nameable(&remote_bind).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                remote_bind,
                timeout: ftp.data_timeout,
            },
        }
    }
}

/// `host` as an address to name in a rewritten line, if it is a specific IP address.
fn nameable(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
        .filter(|ip| !ip.is_unspecified())
}

/// Connects the FTP server's end: through SSH (`-L`) or here (`-R`); also returns our
/// address on a connection made here.
async fn connect_server(
    shared: &SessionShared,
    base: &PlanBase,
    host: &str,
    port: u16,
    client_peer: SocketAddr,
) -> Result<((ControlReader, ControlWriter), Option<IpAddr>), SessionError> {
    let unreachable = |reason: String| SessionError::ServerUnreachable {
        host: host.to_owned(),
        port,
        reason,
    };
    match base {
        PlanBase::Local { .. } => {
            let channel = shared
                .pool
                .control()
                .open_direct_tcpip(host, port, client_peer)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            Ok((control_io::channel(channel), None))
        }
        PlanBase::Remote { .. } => {
            let tcp = TcpStream::connect((host, port))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let local = tcp.local_addr().ok().map(|a| a.ip().to_canonical());
            Ok((control_io::tcp(tcp), local))
        }
    }
}

/// A session whose both ends are connected.
struct Running<'a> {
    shared: &'a SessionShared,
    id: u64,
    instance: SessionInstance,
    gate: SessionGate,
    paths: DataPaths,
    data_rx: mpsc::UnboundedReceiver<DataEvent>,
    client_read: ControlReader,
    client_write: ControlWriter,
    server_read: ControlReader,
    server_write: ControlWriter,
}

impl Running<'_> {
    async fn run(&mut self) -> Result<(), SessionError> {
        loop {
            // A finished transfer is logged after its completion reply went out: the log
            // write is not on the path of the reply.
            let mut finished = None;
            let actions = tokio::select! {
                bytes = self.client_read.recv() => match bytes? {
                    Some(bytes) => self.instance.from_client(&bytes).await?,
                    None => return Ok(()),
                },
                bytes = self.server_read.recv() => match bytes? {
                    Some(bytes) => self.instance.from_server(&bytes).await?,
                    None => return Ok(()),
                },
                Some(event) = self.data_rx.recv() => match event {
                    DataEvent::Opened { id, result } => self.instance.forward_opened(id, result).await?,
                    DataEvent::Connected(id) => self.instance.data_connected(id).await?,
                    DataEvent::Finished(event) => {
                        self.paths.finished(event.id);
                        if let Ok(bytes) = &event.result {
                            self.gate.data_finished(
                                event.id,
                                core_mode(event.mode),
                                bytes.to_server,
                                bytes.to_client,
                                event.elapsed,
                            );
                        }
                        let outcome = event.result.as_ref().map(|_| ());
                        let actions = self.instance.data_finished(event.id, outcome).await?;
                        finished = Some(event);
                        actions
                    }
                },
            };
            self.carry_out(actions).await?;
            if let Some(event) = &finished {
                publish_transfer(self.shared, self.id, event);
            }
        }
    }

    /// Carries out the component's actions in order, with what answering them brings.
    async fn carry_out(&mut self, actions: Vec<Action>) -> Result<(), SessionError> {
        let mut work = VecDeque::from(actions);
        while let Some(action) = work.pop_front() {
            match action {
                Action::ToServer(bytes) => self.server_write.send(bytes).await?,
                Action::ToClient(bytes) => self.client_write.send(bytes).await?,
                Action::OpenDataPath((id, request)) => {
                    // Asked before anything is opened; a denial fails the PASV/EPSV/PORT/EPRT
                    // as a refused forward does.
                    let verdict = self
                        .gate
                        .check_forward(
                            core_mode(request.mode),
                            &request.target_host,
                            request.target_port,
                        )
                        .await;
                    match verdict {
                        CoreVerdict::Allow => self.paths.open(id, request),
                        CoreVerdict::Deny(reason) => {
                            let denied = Err(ForwardError::Denied(reason));
                            work.extend(self.instance.forward_opened(id, denied).await?);
                        }
                    }
                }
                Action::CloseDataPath(id) => self.paths.close(id),
                Action::CheckCommand(check) => {
                    let verdict = match self.gate.check_command(&check.verb, &check.argument).await
                    {
                        CoreVerdict::Allow => Verdict::Allow,
                        CoreVerdict::Deny(reason) => Verdict::Deny(reason),
                    };
                    let more = self.instance.command_verdict(check.id, &verdict).await?;
                    work.extend(more);
                }
                Action::Note(note) => {
                    if note.kind == wit::NoteKind::Transfer {
                        self.gate
                            .transfer_reply(note.forward, &note.original, &note.replacement);
                    }
                    publish_note(self.shared, self.id, &note);
                }
            }
        }
        Ok(())
    }
}

/// The contract's data mode as the core (and the audit log) spell it.
fn core_mode(mode: wit::DataMode) -> CoreMode {
    match mode {
        wit::DataMode::Passive => CoreMode::Passive,
        wit::DataMode::Active => CoreMode::Active,
    }
}

/// A host name or address as it appears before `:PORT` (IPv6 in brackets).
fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn note_kind(kind: wit::NoteKind) -> &'static str {
    match kind {
        wit::NoteKind::Rewrite => "rewrite",
        wit::NoteKind::Refused => "refused",
        wit::NoteKind::Malformed => "malformed",
        wit::NoteKind::ForwardFailed => "forward-failed",
        wit::NoteKind::Denied => "denied",
        wit::NoteKind::Transfer => "transfer",
    }
}

fn publish_note(shared: &SessionShared, session: u64, note: &wit::Note) {
    let kind = note_kind(note.kind);
    if note.kind != wit::NoteKind::Transfer {
        info!(
            session,
            kind,
            "{} {:?} -> {:?}",
            if kind == "rewrite" {
                "rewrote"
            } else {
                "answered"
            },
            note.original,
            note.replacement
        );
    }
    let _ = shared.events.send(TunnelEvent::Rewrite {
        session,
        kind: kind.to_owned(),
        original: note.original.clone(),
        rewritten: note.replacement.clone(),
    });
}

fn publish_transfer(shared: &SessionShared, session: u64, event: &DataFinished) {
    let Ok(bytes) = &event.result else {
        return;
    };
    let mode = core_mode(event.mode);
    info!(
        "data transfer finished session={session} forward={} mode={} to_server={} to_client={} ms={}",
        event.id,
        mode.as_str(),
        bytes.to_server,
        bytes.to_client,
        event.elapsed.as_millis()
    );
    let _ = shared.events.send(TunnelEvent::TransferFinished {
        session,
        forward: event.id,
        mode,
        to_server: bytes.to_server,
        to_client: bytes.to_client,
        elapsed: event.elapsed,
    });
}
