//! One authenticated SSH connection, with `direct-tcpip` channels and remote forwards.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Msg};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use russh::{ChannelOpenFailure, Disconnect, Preferred, cipher, compression};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::auth::{Credential, Login, authenticate};
pub use super::error::SshError;
use super::handler::{ClientHandler, ForwardedChannel, HostKeyPolicy, Routes};
use super::known_hosts;
use super::options::SshOptions;
use super::tuned_stream::TunedStream;

/// Read buffer under russh's packet reader.
const SSH_READ_BUFFER: usize = 256 * 1024;

/// Per-channel window: measured here as the best throughput/memory trade-off.
const WINDOW_SIZE: u32 = 2 * 1024 * 1024;
/// Rekey after this many bytes each way. AES-GCM and chacha20-poly1305 are safe far beyond
/// russh's 1 GiB default (OpenSSH rekeys AES after 2^32 blocks = 64 GiB), and each rekey
/// stalls every channel for a round trip.
const REKEY_BYTES: u64 = 16 << 30;
/// A dead server is noticed after about KEEPALIVE_INTERVAL * (KEEPALIVE_MAX + 1).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_MAX: usize = 3;
/// Forwarded channels waiting for `RemoteForward::accept`; more are refused, not queued.
const FORWARD_BACKLOG: usize = 16;

/// What a pool's later connections reuse from its first one.
#[derive(Clone)]
pub(crate) struct Pinned {
    pub(crate) host_key: PublicKey,
    pub(crate) auth_key: Credential,
}

/// One authenticated SSH connection.
pub struct SshConnection {
    handle: client::Handle<ClientHandler>,
    addr: String,
    host_key: PublicKey,
    auth_key: Credential,
    /// The jump host's connection (`ProxyJump`), which carries this one.
    _jump: Option<Arc<SshConnection>>,
    routes: Routes,
    closed_rx: watch::Receiver<Option<String>>,
    closing: AtomicBool,
}

impl std::fmt::Debug for SshConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshConnection")
            .field("addr", &self.addr)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl SshConnection {
    /// Connects, verifies the host key against known_hosts and authenticates with the
    /// identity files.
    pub async fn connect(opts: &SshOptions) -> Result<Arc<SshConnection>, SshError> {
        Self::connect_with(opts, None).await.map(Arc::new)
    }

    pub(crate) fn pinned(&self) -> Pinned {
        Pinned {
            host_key: self.host_key.clone(),
            auth_key: self.auth_key.clone(),
        }
    }

    pub(crate) async fn connect_with(
        opts: &SshOptions,
        pinned: Option<Pinned>,
    ) -> Result<SshConnection, SshError> {
        let addr = display_addr(&opts.host, opts.port);
        // Keys first: a bad identity file should not cost a network round trip.
        let login = match &pinned {
            Some(p) => Login::pinned(p.auth_key.clone()),
            None => Login::prepare(opts)?,
        };
        let policy = match &pinned {
            Some(p) => HostKeyPolicy::Pinned(p.host_key.clone()),
            None => HostKeyPolicy::KnownHosts {
                path: opts.known_hosts.clone(),
                strict: opts.strict_host_key_checking,
                hash: opts.hash_known_hosts,
            },
        };
        // russh reads each packet with two exact reads (length, then body): a buffer below it
        // turns that into one large recv for many packets, and one TCP_QUICKACK re-arm each.
        let (jump, via_jump, direct) = match &opts.jump {
            Some(j) => {
                let (conn, stream) = super::jump::open(j, &opts.host, opts.port).await?;
                (Some(conn), Some(stream), None)
            }
            None => {
                let tcp = connect_tcp(opts, opts.connect_timeout).await?;
                (
                    None,
                    None,
                    Some(tokio::io::BufReader::with_capacity(SSH_READ_BUFFER, tcp)),
                )
            }
        };

        let (closed_tx, closed_rx) = watch::channel(None);
        let routes: Routes = Arc::default();
        let prompting = Arc::new(AtomicBool::new(false));
        let seen_key = Arc::new(Mutex::new(None));
        let handler = ClientHandler {
            host: opts.host.clone(),
            port: opts.port,
            policy,
            prompting: Arc::clone(&prompting),
            seen_key: Arc::clone(&seen_key),
            routes: Arc::clone(&routes),
            closed: closed_tx,
        };
        let config = Arc::new(client_config(opts, pinned.as_ref()));

        let handshake = async {
            let connected = match (via_jump, direct) {
                (Some(s), _) => client::connect_stream(config, s, handler).await,
                (None, Some(s)) => client::connect_stream(config, s, handler).await,
                (None, None) => unreachable!("one stream is always set"),
            };
            let mut handle = connected.map_err(|e| match e {
                SshError::Protocol(e) => SshError::Handshake {
                    addr: addr.clone(),
                    reason: e.to_string(),
                },
                other => other,
            })?;
            let auth_key = authenticate(&mut handle, opts, login, &prompting).await?;
            Ok::<_, SshError>((handle, auth_key))
        };
        let (handle, auth_key) = with_deadline(handshake, opts.connect_timeout, &prompting)
            .await
            .ok_or_else(|| SshError::Timeout {
                addr: addr.clone(),
                after: opts.connect_timeout,
            })??;
        let host_key = seen_key
            .lock()
            .ok()
            .and_then(|mut k| k.take())
            .ok_or_else(|| SshError::Handshake {
                addr: addr.clone(),
                reason: "no host key was verified".to_string(),
            })?;
        tracing::debug!(%addr, user = %opts.user, "ssh connection authenticated");
        Ok(SshConnection {
            handle,
            addr,
            host_key,
            auth_key,
            _jump: jump,
            routes,
            closed_rx,
            closing: AtomicBool::new(false),
        })
    }

    /// `host:port` of the server, for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection is known to be gone.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.closed_rx.borrow().is_some()
    }

    /// `direct-tcpip` channel to host:port as the SSH server sees it; `originator` is
    /// reported to the server.
    pub async fn open_direct_tcpip(
        &self,
        host: &str,
        port: u16,
        originator: SocketAddr,
    ) -> Result<russh::Channel<Msg>, SshError> {
        self.handle
            .channel_open_direct_tcpip(
                host,
                u32::from(port),
                originator.ip().to_string(),
                u32::from(originator.port()),
            )
            .await
            .map_err(|e| match e {
                russh::Error::ChannelOpenFailure(reason) => SshError::ChannelOpen {
                    target: display_addr(host, port),
                    reason: describe_open_failure(&reason),
                },
                e => self.lost_or(e),
            })
    }

    /// `tcpip-forward`: asks the server to listen on bind_host:bind_port (0 = server picks).
    /// Dropping the returned [`RemoteForward`] sends `cancel-tcpip-forward` (spawned, best
    /// effort).
    pub async fn remote_forward(
        self: &Arc<Self>,
        bind_host: &str,
        bind_port: u16,
    ) -> Result<RemoteForward, SshError> {
        let (tx, rx) = mpsc::channel(FORWARD_BACKLOG);
        // A fixed port can see a connection before the reply reaches us: route it first.
        if bind_port != 0 {
            self.set_route(u32::from(bind_port), Some(tx.clone()));
        }
        let result = self
            .handle
            .tcpip_forward(bind_host, u32::from(bind_port))
            .await;
        let refused = || SshError::ForwardRefused {
            bind_host: bind_host.to_string(),
            bind_port,
        };
        let port = match result {
            Ok(p) if bind_port == 0 => u16::try_from(p).ok().filter(|p| *p != 0),
            Ok(_) => Some(bind_port),
            Err(e) => {
                if bind_port != 0 {
                    self.set_route(u32::from(bind_port), None);
                }
                return Err(match e {
                    russh::Error::RequestDenied => refused(),
                    e => self.lost_or(e),
                });
            }
        };
        let Some(port) = port else {
            // The server bound something we cannot name; release it again.
            let conn = Arc::clone(self);
            let host = bind_host.to_string();
            tokio::spawn(async move {
                let _ = conn.handle.cancel_tcpip_forward(host, 0).await;
            });
            return Err(refused());
        };
        self.set_route(u32::from(port), Some(tx));
        tracing::debug!(addr = %self.addr, bind_host, port, "remote forward open");
        Ok(RemoteForward {
            conn: Arc::clone(self),
            bind_host: bind_host.to_string(),
            port,
            rx,
            cancelled: false,
        })
    }

    fn set_route(&self, port: u32, tx: Option<mpsc::Sender<ForwardedChannel>>) {
        if let Ok(mut routes) = self.routes.lock() {
            match tx {
                Some(tx) => routes.insert(port, tx),
                None => routes.remove(&port),
            };
        }
    }

    /// Resolves when the connection is lost or closed: `Ok(())` if [`disconnect`] closed it.
    ///
    /// [`disconnect`]: SshConnection::disconnect
    pub async fn closed(&self) -> Result<(), SshError> {
        let mut rx = self.closed_rx.clone();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_default(),
            Err(_) => "the SSH session ended".to_string(),
        };
        if self.closing.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(SshError::Disconnected {
                addr: self.addr.clone(),
                reason,
            })
        }
    }

    /// Sends SSH_MSG_DISCONNECT; [`closed`](SshConnection::closed) then resolves with `Ok`.
    pub async fn disconnect(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }

    fn lost_or(&self, e: russh::Error) -> SshError {
        match e {
            russh::Error::Disconnect | russh::Error::SendError => SshError::Disconnected {
                addr: self.addr.clone(),
                reason: self
                    .closed_rx
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "the SSH session ended".to_string()),
            },
            e => SshError::Protocol(e),
        }
    }
}

/// A remote (server-side) listener from `tcpip-forward`.
pub struct RemoteForward {
    conn: Arc<SshConnection>,
    bind_host: String,
    port: u16,
    rx: mpsc::Receiver<ForwardedChannel>,
    /// Set once `cancel` has run, so that Drop does not cancel again.
    cancelled: bool,
}

impl std::fmt::Debug for RemoteForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteForward")
            .field("bind_host", &self.bind_host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl RemoteForward {
    /// The port the server actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bind address as requested.
    pub fn bind_host(&self) -> &str {
        &self.bind_host
    }

    /// Next `forwarded-tcpip` channel the server opened for this forward, with the
    /// originator address and port; `None` once the connection is gone.
    pub async fn accept(&mut self) -> Option<(russh::Channel<Msg>, String, u32)> {
        tokio::select! {
            c = self.rx.recv() => c,
            _ = self.conn.closed() => self.rx.try_recv().ok(),
        }
    }

    /// Stops the server listening (`cancel-tcpip-forward`) and waits for its answer. Unlike a
    /// plain drop, which cancels from a spawned task that briefly shares the connection, the
    /// connection is free again when this returns, so a pool can hand it out at once.
    pub async fn cancel(mut self) {
        self.cancelled = true;
        self.conn.set_route(u32::from(self.port), None);
        if self.conn.is_closed() {
            return;
        }
        let port = u32::from(self.port);
        if let Err(e) = self
            .conn
            .handle
            .cancel_tcpip_forward(&self.bind_host, port)
            .await
        {
            tracing::debug!(host = self.bind_host, port, error = %e, "cancel-tcpip-forward failed");
        }
    }
}

impl Drop for RemoteForward {
    fn drop(&mut self) {
        if self.cancelled {
            return;
        }
        self.conn.set_route(u32::from(self.port), None);
        if self.conn.is_closed() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let conn = Arc::clone(&self.conn);
            let host = std::mem::take(&mut self.bind_host);
            let port = u32::from(self.port);
            rt.spawn(async move {
                if let Err(e) = conn.handle.cancel_tcpip_forward(&host, port).await {
                    tracing::debug!(host, port, error = %e, "cancel-tcpip-forward failed");
                }
            });
        }
    }
}

fn display_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn describe_open_failure(reason: &ChannelOpenFailure) -> String {
    match reason {
        ChannelOpenFailure::AdministrativelyProhibited => {
            "administratively prohibited (sshd's AllowTcpForwarding or PermitOpen forbids it)"
                .into()
        }
        ChannelOpenFailure::ConnectFailed => {
            "connect failed (nothing listening there, or not reachable from the SSH server)".into()
        }
        ChannelOpenFailure::UnknownChannelType => "the server does not support direct-tcpip".into(),
        ChannelOpenFailure::ResourceShortage => "resource shortage on the server".into(),
        ChannelOpenFailure::Other { code, reason } => format!("{reason} (code {code})"),
    }
}

/// Runs `fut` with a deadline that does not tick while the user is being asked a question.
async fn with_deadline<F: Future>(
    fut: F,
    limit: Duration,
    prompting: &AtomicBool,
) -> Option<F::Output> {
    tokio::pin!(fut);
    let mut deadline = Instant::now() + limit;
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            () = tokio::time::sleep_until(deadline) => {
                if !prompting.load(Ordering::SeqCst) {
                    return None;
                }
                deadline = Instant::now() + limit;
            }
        }
    }
}

async fn connect_tcp(opts: &SshOptions, limit: Duration) -> Result<TunedStream, SshError> {
    let (host, port) = (opts.host.as_str(), opts.port);
    let addr = display_addr(host, port);
    let deadline = Instant::now() + limit;
    let timeout = || SshError::Timeout {
        addr: addr.clone(),
        after: limit,
    };
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err(timeout()),
            Ok(Err(source)) => {
                return Err(SshError::Resolve {
                    host: host.to_string(),
                    source,
                });
            }
            Ok(Ok(a)) => a.collect(),
        };
    let resolved = addrs.len();
    let addrs: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| opts.address_family.allows(a))
        .collect();
    if resolved > 0 && addrs.is_empty() {
        // OpenSSH's words for `-4` with an IPv6-only host (and `-6` the other way round).
        return Err(SshError::Resolve {
            host: host.to_string(),
            source: std::io::Error::other("Address family for hostname not supported"),
        });
    }
    let mut last = None;
    for sa in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(sa)).await {
            Err(_) => return Err(timeout()),
            Ok(Ok(s)) => return Ok(TunedStream::new(s)),
            Ok(Err(e)) => {
                tracing::debug!(%sa, error = %e, "connect failed");
                last = Some(e);
            }
        }
    }
    Err(SshError::Connect {
        addr,
        source: last.unwrap_or_else(|| std::io::Error::other("the name resolved to no address")),
    })
}

fn client_config(opts: &SshOptions, pinned: Option<&Pinned>) -> client::Config {
    // AES-GCM is fastest with AES-NI; without it chacha20-poly1305 wins.
    let aes_ni = {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            std::arch::is_x86_feature_detected!("aes")
        }
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        {
            false
        }
    };
    let mut ciphers = if aes_ni {
        vec![
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::CHACHA20_POLY1305,
        ]
    } else {
        vec![
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
        ]
    };
    ciphers.extend([
        cipher::AES_256_CTR,
        cipher::AES_192_CTR,
        cipher::AES_128_CTR,
    ]);

    // Host key algorithms already recorded for this host come first, as OpenSSH orders them.
    let mut key_algs: Vec<Algorithm> = match pinned {
        Some(p) => vec![p.host_key.algorithm()],
        None => known_hosts::known_algorithms(&opts.known_hosts, &opts.host, opts.port),
    };
    let expand = |a: Algorithm| match a {
        Algorithm::Rsa { .. } => vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ],
        a => vec![a],
    };
    key_algs = key_algs.into_iter().flat_map(expand).collect();
    for a in Preferred::DEFAULT.key.iter() {
        if !key_algs.contains(a) {
            key_algs.push(a.clone());
        }
    }

    let rekey = usize::try_from(REKEY_BYTES).unwrap_or(usize::MAX);
    client::Config {
        window_size: WINDOW_SIZE,
        limits: russh::Limits {
            rekey_write_limit: rekey,
            rekey_read_limit: rekey,
            rekey_time_limit: Duration::from_secs(3600),
        },
        keepalive_interval: match opts.server_alive {
            Some((interval, _)) if interval.is_zero() => None,
            Some((interval, _)) => Some(interval),
            None => Some(KEEPALIVE_INTERVAL),
        },
        keepalive_max: opts.server_alive.map_or(KEEPALIVE_MAX, |(_, max)| max),
        nodelay: true,
        preferred: opts.algorithms.apply(Preferred {
            cipher: ciphers.into(),
            key: key_algs.into(),
            compression: if opts.compression {
                vec![
                    compression::ZLIB_LEGACY,
                    compression::ZLIB,
                    compression::NONE,
                ]
                .into()
            } else {
                vec![compression::NONE].into()
            },
            ..Preferred::DEFAULT
        }),
        ..client::Config::default()
    }
}
