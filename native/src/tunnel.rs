//! A running tunnel: the SSH connections, one listener per `-L` forward, and a task per
//! accepted connection (an FTP session or a plain TCP forward).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::forwards::DataMode;
use crate::pump::pump;
use crate::runtime::{Runtime, RuntimeError};
use crate::session::{SessionShared, run_session};
use crate::spec::{ForwardKind, ForwardSpec};
use crate::ssh::{SshError, SshOptions, SshPool};

/// FTP rules and tuning for every session of a tunnel.
#[derive(Debug, Clone)]
pub struct FtpSettings {
    /// Connect passive data connections to the address the server's reply names.
    pub trust_passive_address: bool,
    /// Accept PORT/EPRT/LPRT naming a host other than the client's own.
    pub allow_foreign_data_address: bool,
    /// Where passive listeners bind; `None` = the address the client reached us on.
    pub passive_bind: Option<IpAddr>,
    /// Where remote (active-mode) forwards bind on the SSH server.
    pub active_bind: String,
    /// How long a data forward waits for its connection.
    pub data_timeout: Duration,
    /// Longest control line interpreted.
    pub max_line: u32,
}

impl Default for FtpSettings {
    fn default() -> Self {
        Self {
            trust_passive_address: false,
            allow_foreign_data_address: false,
            passive_bind: None,
            active_bind: "127.0.0.1".to_owned(),
            data_timeout: Duration::from_secs(60),
            max_line: 8192,
        }
    }
}

/// What a tunnel is asked to do.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// The SSH server and how to log in.
    pub ssh: SshOptions,
    /// `-L` forwards.
    pub forwards: Vec<ForwardSpec>,
    /// FTP rules.
    pub ftp: FtpSettings,
}

/// Something that happened, for whoever watches (the demo, tests, an audit log).
#[derive(Debug, Clone)]
pub enum TunnelEvent {
    /// A control connection was accepted.
    SessionOpened {
        /// Session number.
        session: u64,
        /// The FTP client.
        client: SocketAddr,
    },
    /// A control connection ended.
    SessionClosed {
        /// Session number.
        session: u64,
    },
    /// The component replaced or answered a line.
    Rewrite {
        /// Session number.
        session: u64,
        /// "rewrite", "refused", "malformed" or "forward-failed".
        kind: String,
        /// The line received.
        original: String,
        /// What went out instead.
        rewritten: String,
    },
    /// A data connection ended.
    TransferFinished {
        /// Session number.
        session: u64,
        /// Forward id within the session.
        forward: u32,
        /// Passive or active.
        mode: DataMode,
        /// Bytes from the FTP client to the FTP server over SSH.
        to_server: u64,
        /// Bytes from the FTP server to the FTP client over SSH.
        to_client: u64,
        /// How long the data connection lasted.
        elapsed: Duration,
    },
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

/// A started tunnel; call [`Tunnel::run`] to serve.
pub struct Tunnel {
    shared: Arc<SessionShared>,
    listeners: Vec<(TcpListener, ForwardSpec)>,
    host: String,
}

impl Tunnel {
    /// Connects and authenticates, loads the component and binds every listener.
    pub async fn start(config: TunnelConfig) -> Result<Tunnel, TunnelError> {
        let runtime = Runtime::new()?;
        let pool = SshPool::connect(config.ssh.clone()).await?;
        let mut listeners = Vec::new();
        for spec in &config.forwards {
            let address = spec.bind_address.as_deref().unwrap_or("127.0.0.1");
            let listener =
                TcpListener::bind((address, spec.bind_port))
                    .await
                    .map_err(|source| TunnelError::Listen {
                        address: format!("{address}:{}", spec.bind_port),
                        source,
                    })?;
            let local = listener
                .local_addr()
                .map_err(|source| TunnelError::Listen {
                    address: address.to_owned(),
                    source,
                })?;
            info!("listening on {local} ({spec} via {})", config.ssh.host);
            listeners.push((listener, spec.clone()));
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Tunnel {
            shared: Arc::new(SessionShared {
                pool,
                runtime,
                ftp: config.ftp,
                events,
            }),
            listeners,
            host: config.ssh.host,
        })
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
        let control = self.shared.pool.control().clone();
        let result = tokio::select! {
            () = shutdown => Ok(()),
            closed = control.closed() => Err(TunnelError::ConnectionLost {
                host: self.host.clone(),
                reason: match closed {
                    Ok(()) => "closed by the server".to_owned(),
                    Err(error) => error.to_string(),
                },
            }),
        };
        tasks.shutdown().await;
        // A polite disconnect, but never a hang on a dead connection: exit is promised quickly.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.shared.pool.disconnect()).await;
        result
    }
}

async fn serve_listener(
    shared: Arc<SessionShared>,
    listener: TcpListener,
    spec: ForwardSpec,
    next_session: Arc<AtomicU64>,
) {
    // Sessions live in this set so that stopping the listener task stops them all.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        warn!("accept on {spec} failed: {error}");
                        continue;
                    }
                };
                let id = next_session.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                let spec = spec.clone();
                sessions.spawn(async move {
                    match spec.kind {
                        ForwardKind::Ftp => {
                            if let Err(error) = run_session(shared, id, client, peer, spec.host, spec.host_port).await {
                                warn!(session = id, "{error}");
                            }
                        }
                        ForwardKind::Tcp => plain_forward(&shared, id, client, peer, &spec).await,
                    }
                });
            }
            Some(_) = sessions.join_next() => {}
        }
    }
}

/// `tcp/` forwards: a plain `direct-tcpip` forward, as `ssh -L`.
async fn plain_forward(
    shared: &SessionShared,
    id: u64,
    client: TcpStream,
    peer: SocketAddr,
    spec: &ForwardSpec,
) {
    // A data connection of its own: a slow reader here must not stall FTP control channels.
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
