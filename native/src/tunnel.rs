//! A running tunnel: one SSH connection, a listener per `-L` forward and a remote listener
//! per `-R` forward, and a task per accepted connection (an FTP session or a plain TCP
//! forward).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::admin::{AdminError, AdminSettings};
use crate::control_io::{self, ControlWriter};
use crate::events::TunnelEvent;
use crate::limits::{AcceptBackoff, Admission, bind_listener, too_many_sessions_reply};
use crate::pump::{DataChannel, pump, pump_server_on_tcp};
use crate::runtime::{Runtime, RuntimeError};
use crate::session::{Accepted, SessionShared, run_session};
use crate::settings::FtpSettings;
use crate::spec::{ForwardKind, ForwardSpec};
use crate::ssh::{RemoteForward, SshError, SshOptions, SshPool};

/// Where `-R` listeners bind on the SSH server when the spec names no address.
const DEFAULT_REMOTE_BIND: &str = "127.0.0.1";

/// What a tunnel is asked to do.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// The SSH server and how to log in.
    pub ssh: SshOptions,
    /// `-L` forwards.
    pub forwards: Vec<ForwardSpec>,
    /// `-R` forwards.
    pub remote_forwards: Vec<ForwardSpec>,
    /// FTP rules.
    pub ftp: FtpSettings,
    /// Policies, a replacement rewrite component, the audit log (all off by default).
    pub admin: AdminSettings,
}

/// Why a tunnel could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// SSH failed (connect, auth, host key, or lost later).
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The component could not be loaded.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A policy, the plugin or the audit log could not be set up.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A listener could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address asked for.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The SSH connection was lost while running.
    #[error("connection to {host} lost: {reason}")]
    ConnectionLost {
        /// The SSH server.
        host: String,
        /// What the SSH layer said.
        reason: String,
    },
}

/// How long a refused client is given to take its `421`.
const REFUSAL_WRITE: Duration = Duration::from_secs(2);

/// A started tunnel; call [`Tunnel::run`] to serve.
pub struct Tunnel {
    shared: Arc<SessionShared>,
    listeners: Vec<(TcpListener, ForwardSpec)>,
    remote: Vec<(RemoteForward, ForwardSpec)>,
    host: String,
}

impl Tunnel {
    /// Connects and authenticates, loads the component, binds every `-L` listener and asks
    /// the SSH server for every `-R` listener.
    pub async fn start(config: TunnelConfig) -> Result<Tunnel, TunnelError> {
        // Everything the admin configured is checked before anything connects: a bad policy
        // or plugin is one startup error, never a tunnel running with less than was asked.
        let runtime = match config.admin.read_plugin()? {
            Some(wasm) => {
                let path = config.admin.plugin.clone().unwrap_or_default();
                let runtime =
                    Runtime::from_bytes(&wasm).map_err(|error| AdminError::PluginRefused {
                        path: path.clone(),
                        reason: format!("{error:#}"),
                    })?;
                info!(
                    "rewrite component: {} (instead of the built-in one)",
                    path.display()
                );
                runtime
            }
            None => Runtime::new()?,
        };
        let controls = config.admin.controls().await?;
        let pool = SshPool::connect(config.ssh.clone()).await?;
        let mut listeners = Vec::new();
        for spec in &config.forwards {
            let address = spec.bind_address.as_deref().unwrap_or("127.0.0.1");
            let listener = bind_listener(address, spec.bind_port)
                .await
                .map_err(|source| TunnelError::Listen {
                    address: format!("{address}:{}", spec.bind_port),
                    source,
                })?;
            listeners.push((listener, spec.clone()));
        }
        let mut remote = Vec::new();
        for spec in &config.remote_forwards {
            let bind = spec.bind_address.as_deref().unwrap_or(DEFAULT_REMOTE_BIND);
            let forward = pool.control().remote_forward(bind, spec.bind_port).await?;
            remote.push((forward, spec.clone()));
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Tunnel {
            shared: Arc::new(SessionShared {
                pool,
                runtime,
                admission: Arc::new(Admission::new(config.ftp.limits)),
                ftp: config.ftp,
                controls,
                ssh_user: config.ssh.user.clone(),
                events,
            }),
            listeners,
            remote,
            host: config.ssh.host,
        })
    }

    /// Logs where every forward listens ("listening on ADDR:PORT", which scripts and tests
    /// read). A binary calls it only once it handles its shutdown signals: whoever reads the
    /// line may signal at once, and must find the signal handled.
    pub fn announce(&self) {
        for (local, (_, spec)) in self.listen_addrs().into_iter().zip(&self.listeners) {
            info!("listening on {local} ({spec} via {})", self.host);
        }
        for (forward, spec) in &self.remote {
            let bind = spec.bind_address.as_deref().unwrap_or(DEFAULT_REMOTE_BIND);
            info!(
                "SSH server {} listening on {}:{} (-R {spec})",
                self.host,
                bracketed(bind),
                forward.port()
            );
        }
    }

    /// Where each `-L` forward listens, in the order given.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .map(|(listener, _)| {
                listener
                    .local_addr()
                    .unwrap_or_else(|_| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
            })
            .collect()
    }

    /// The port each `-R` forward listens on at the SSH server, in the order given.
    pub fn remote_ports(&self) -> Vec<u16> {
        self.remote
            .iter()
            .map(|(forward, _)| forward.port())
            .collect()
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TunnelEvent> {
        self.shared.events.subscribe()
    }

    /// Serves until `shutdown` completes (Ok) or the SSH connection is lost (Err). Every
    /// session and forward is closed before it returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), TunnelError> {
        let next_session = Arc::new(AtomicU64::new(1));
        let mut tasks = JoinSet::new();
        for (listener, spec) in self.listeners {
            tasks.spawn(serve_listener(
                self.shared.clone(),
                listener,
                spec,
                next_session.clone(),
            ));
        }
        for (forward, spec) in self.remote {
            tasks.spawn(serve_remote(
                self.shared.clone(),
                forward,
                spec,
                next_session.clone(),
            ));
        }
        let control = self.shared.pool.control().clone();
        let result = tokio::select! {
            () = shutdown => Ok(()),
            closed = control.closed() => Err(match closed {
                Ok(()) => TunnelError::ConnectionLost {
                    host: self.host.clone(),
                    reason: "closed by the server".to_owned(),
                },
                // Already says which connection and why.
                Err(error) => TunnelError::Ssh(error),
            }),
        };
        tasks.shutdown().await;
        // A polite disconnect, but never a hang on a dead connection: exit is promised quickly.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.shared.pool.disconnect()).await;
        result
    }
}

/// Accepts `-L` connections.
async fn serve_listener(
    shared: Arc<SessionShared>,
    listener: TcpListener,
    spec: ForwardSpec,
    next_session: Arc<AtomicU64>,
) {
    // Sessions live in this set so that stopping the listener task stops them all.
    let mut sessions = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    let name = spec.to_string();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        backoff.failed(&name, &error).await;
                        continue;
                    }
                };
                backoff.succeeded();
                let id = next_session.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                let spec = spec.clone();
                let Some(permit) = shared.admission.session() else {
                    debug!(connection = id, %peer, "{spec}: MaxSessions reached, refused");
                    sessions.spawn(refuse_past_max_sessions(shared, spec.kind, control_io::tcp(client).1));
                    continue;
                };
                sessions.spawn(async move {
                    let _permit = permit;
                    match spec.kind {
                        ForwardKind::Ftp => {
                            let accepted = Accepted::Local { client, peer };
                            if let Err(error) = run_session(shared, id, accepted, spec.host, spec.host_port).await {
                                warn!(session = id, "{error}");
                            }
                        }
                        ForwardKind::Tcp => plain_local(&shared, id, client, peer, &spec).await,
                    }
                });
            }
            Some(_) = sessions.join_next() => {}
        }
    }
}

/// Accepts `-R` connections (`forwarded-tcpip` channels of one remote listener).
async fn serve_remote(
    shared: Arc<SessionShared>,
    mut forward: RemoteForward,
    spec: ForwardSpec,
    next_session: Arc<AtomicU64>,
) {
    let remote_bind = spec
        .bind_address
        .clone()
        .unwrap_or_else(|| DEFAULT_REMOTE_BIND.to_owned());
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            arrived = forward.accept() => {
                let Some((channel, originator, originator_port)) = arrived else { break };
                let Ok(ip) = originator.parse::<IpAddr>() else {
                    warn!(%originator, "-R {spec}: refused a connection whose originator is not an IP address");
                    drop(DataChannel::from(channel));
                    continue;
                };
                let originator = SocketAddr::new(ip.to_canonical(), u16::try_from(originator_port).unwrap_or(0));
                let id = next_session.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                let spec = spec.clone();
                let remote_bind = remote_bind.clone();
                let Some(permit) = shared.admission.session() else {
                    debug!(connection = id, %originator, "-R {spec}: MaxSessions reached, refused");
                    sessions.spawn(refuse_past_max_sessions(shared, spec.kind, control_io::channel(channel).1));
                    continue;
                };
                sessions.spawn(async move {
                    let _permit = permit;
                    match spec.kind {
                        ForwardKind::Ftp => {
                            let accepted = Accepted::Remote { client: channel, originator, remote_bind };
                            if let Err(error) = run_session(shared, id, accepted, spec.host, spec.host_port).await {
                                warn!(session = id, "{error}");
                            }
                        }
                        ForwardKind::Tcp => plain_remote(id, channel, &spec).await,
                    }
                });
            }
            Some(_) = sessions.join_next() => {}
        }
    }
    forward.cancel().await;
}

/// Tells a connection past `MaxSessions` so (a `421`, for FTP) and closes it. Bounded: a
/// client that does not read cannot hold the refusal.
async fn refuse_past_max_sessions(
    shared: Arc<SessionShared>,
    kind: ForwardKind,
    mut client: ControlWriter,
) {
    if kind == ForwardKind::Ftp {
        let reply = too_many_sessions_reply(shared.admission.limits());
        let _ = tokio::time::timeout(REFUSAL_WRITE, client.send(reply.into_bytes())).await;
    }
    let _ = tokio::time::timeout(REFUSAL_WRITE, client.close()).await;
}

/// `-L tcp/`: a plain `direct-tcpip` forward, as `ssh -L`.
async fn plain_local(
    shared: &SessionShared,
    id: u64,
    client: TcpStream,
    peer: SocketAddr,
    spec: &ForwardSpec,
) {
    // The shared connection (or, with -o SeparateDataConnections, one of its own).
    let lease = match shared.pool.lease_data().await {
        Ok(lease) => lease,
        Err(error) => {
            warn!(connection = id, "{spec}: {error}");
            return;
        }
    };
    let channel = match lease
        .open_direct_tcpip(&spec.host, spec.host_port, peer)
        .await
    {
        Ok(channel) => channel,
        Err(error) => {
            warn!(connection = id, "{spec}: {error}");
            return;
        }
    };
    match pump(client, channel).await {
        Ok(stats) => debug!(
            connection = id,
            to_server = stats.to_channel,
            to_client = stats.from_channel,
            "tcp forward closed"
        ),
        Err(error) => debug!(connection = id, "tcp forward failed: {error}"),
    }
    drop(lease);
}

/// `-R tcp/`: a `forwarded-tcpip` channel connected here, as `ssh -R`.
async fn plain_remote(id: u64, channel: russh::Channel<russh::client::Msg>, spec: &ForwardSpec) {
    // Closed when dropped, also if the target cannot be reached.
    let channel = DataChannel::from(channel);
    let tcp = match TcpStream::connect((spec.host.as_str(), spec.host_port)).await {
        Ok(tcp) => tcp,
        Err(error) => {
            warn!(
                connection = id,
                "-R {spec}: cannot reach {}:{}: {error}", spec.host, spec.host_port
            );
            return;
        }
    };
    match pump_server_on_tcp(tcp, channel).await {
        Ok(stats) => debug!(
            connection = id,
            to_client = stats.to_channel,
            to_server = stats.from_channel,
            "tcp forward closed"
        ),
        Err(error) => debug!(connection = id, "tcp forward failed: {error}"),
    }
}

/// An address as it appears before `:PORT` (IPv6 in brackets).
fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
