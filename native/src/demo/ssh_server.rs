//! A small in-process SSH server (russh's server side) for the demo and for fast tests.
//!
//! It authenticates exactly one public key and supports only port forwarding:
//! `direct-tcpip` (connect to the target and pump), `tcpip-forward` (listen, port 0 = pick,
//! and open a `forwarded-tcpip` channel back for every accepted connection) and
//! `cancel-tcpip-forward`. No shell, no exec, no SFTP.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use russh::keys::ssh_key::{self, LineEnding, private::Ed25519Keypair};
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelOpenFailure};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Errors of the in-process SSH server.
#[derive(Debug, thiserror::Error)]
pub enum SshServerError {
    /// Binding the listening socket failed.
    #[error("cannot bind the SSH server to {addr}: {source}")]
    Bind {
        /// The address that was requested.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Encoding a key failed.
    #[error("cannot encode an SSH key: {0}")]
    Key(#[from] ssh_key::Error),
}

/// Generates a fresh ed25519 key pair.
///
/// The seed comes from the OS RNG through `rand` 0.9, which avoids depending on the
/// `rand_core` version that `ssh-key` itself is built against.
pub fn generate_ed25519() -> PrivateKey {
    let seed: [u8; 32] = rand::random();
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

/// The private key in OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted.
pub fn private_key_openssh(key: &PrivateKey) -> Result<String, SshServerError> {
    Ok(key.to_openssh(LineEnding::LF)?.to_string())
}

/// Counters of what the server did, so a caller can show the data really went through SSH.
#[derive(Debug, Default)]
pub struct SshServerStats {
    direct_tcpip: AtomicU64,
    forwards_requested: AtomicU64,
    forwards_cancelled: AtomicU64,
    forwarded_tcpip: AtomicU64,
    auth_rejected: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SshServerStatsSnapshot {
    /// `direct-tcpip` channels accepted (client-side listeners, passive mode).
    pub direct_tcpip: u64,
    /// `tcpip-forward` requests granted (remote forwards, active mode).
    pub forwards_requested: u64,
    /// `cancel-tcpip-forward` requests that closed a listener.
    pub forwards_cancelled: u64,
    /// `forwarded-tcpip` channels opened back to the client.
    pub forwarded_tcpip: u64,
    /// Authentication attempts refused (wrong key or method).
    pub auth_rejected: u64,
}

impl SshServerStats {
    fn snapshot(&self) -> SshServerStatsSnapshot {
        SshServerStatsSnapshot {
            direct_tcpip: self.direct_tcpip.load(Ordering::Relaxed),
            forwards_requested: self.forwards_requested.load(Ordering::Relaxed),
            forwards_cancelled: self.forwards_cancelled.load(Ordering::Relaxed),
            forwarded_tcpip: self.forwarded_tcpip.load(Ordering::Relaxed),
            auth_rejected: self.auth_rejected.load(Ordering::Relaxed),
        }
    }
}

/// A running in-process SSH server; dropping it stops accepting new connections.
pub struct SshServer {
    addr: SocketAddr,
    host_public: PublicKey,
    stats: Arc<SshServerStats>,
    accept_task: JoinHandle<()>,
}

impl SshServer {
    /// Binds `bind` (port 0 = pick) and serves SSH with `host_key`, accepting only
    /// `authorized_key` (any user name).
    pub async fn start(
        bind: SocketAddr,
        host_key: PrivateKey,
        authorized_key: PublicKey,
    ) -> Result<SshServer, SshServerError> {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| SshServerError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SshServerError::Bind { addr: bind, source })?;
        let host_public = host_key.public_key().clone();
        let config = Arc::new(russh::server::Config {
            keys: vec![host_key],
            // The only client is our own; a constant-time rejection delay buys nothing here
            // and would slow the first "none" probe of every connection.
            auth_rejection_time: Duration::from_millis(10),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(Duration::from_secs(600)),
            nodelay: true,
            ..Default::default()
        });
        let stats = Arc::new(SshServerStats::default());
        let authorized = Arc::new(authorized_key);
        let task_stats = stats.clone();
        let accept_task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error = %e, "SSH server accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                debug!(%peer, "SSH connection");
                let handler = ForwardingHandler {
                    authorized: authorized.clone(),
                    stats: task_stats.clone(),
                    forwards: HashMap::new(),
                };
                let config = config.clone();
                tokio::spawn(async move {
                    match russh::server::run_stream(config, stream, handler).await {
                        Ok(session) => {
                            if let Err(e) = session.await {
                                debug!(%peer, error = %e, "SSH session ended with an error");
                            }
                        }
                        Err(e) => debug!(%peer, error = %e, "SSH handshake failed"),
                    }
                });
            }
        });
        debug!(%addr, "in-process SSH server listening");
        Ok(SshServer {
            addr,
            host_public,
            stats,
            accept_task,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's host public key.
    pub fn host_public_key(&self) -> &PublicKey {
        &self.host_public
    }

    /// A known_hosts line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> Result<String, SshServerError> {
        let key = self.host_public.to_openssh()?;
        // Drop the comment so the line has exactly the three standard fields.
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        let host = self.addr.ip().to_string();
        Ok(format!("[{host}]:{} {}", self.addr.port(), key.join(" ")))
    }

    /// The server's counters so far.
    pub fn stats(&self) -> SshServerStatsSnapshot {
        self.stats.snapshot()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        // Sessions already running end when their client disconnects.
        self.accept_task.abort();
    }
}

/// Per-connection handler: authentication plus the three forwarding requests.
struct ForwardingHandler {
    authorized: Arc<PublicKey>,
    stats: Arc<SshServerStats>,
    /// Remote-forward listeners by (requested address, bound port).
    forwards: HashMap<(String, u32), JoinHandle<()>>,
}

impl ForwardingHandler {
    fn key_ok(&self, key: &PublicKey) -> bool {
        key.key_data() == self.authorized.key_data()
    }

    fn reject(&self) -> Auth {
        self.stats.auth_rejected.fetch_add(1, Ordering::Relaxed);
        Auth::reject()
    }
}

impl Drop for ForwardingHandler {
    fn drop(&mut self) {
        for (_, task) in self.forwards.drain() {
            task.abort();
        }
    }
}

/// Maps a `tcpip-forward` bind address to a loopback socket address: this server is a
/// local demo, so the wildcard forms still bind loopback only.
fn forward_bind_addr(address: &str, port: u32) -> Option<SocketAddr> {
    let port = u16::try_from(port).ok()?;
    let ip = match address {
        "" | "localhost" | "0.0.0.0" | "::" | "*" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other.trim_matches(['[', ']']).parse().ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// Pumps bytes both ways between a TCP stream and an SSH channel, half-closing each
/// direction as the other side reaches EOF.
async fn pump(mut tcp: TcpStream, channel: Channel<Msg>) {
    let mut stream = channel.into_stream();
    match tokio::io::copy_bidirectional(&mut tcp, &mut stream).await {
        Ok((up, down)) => debug!(up, down, "pump finished"),
        Err(e) => debug!(error = %e, "pump ended with an error"),
    }
}

impl russh::server::Handler for ForwardingHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_ok(offer.public_key) {
            Auth::Accept
        } else {
            self.reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.key_ok(key.public_key) {
            debug!(user, "SSH client authenticated");
            Ok(Auth::Accept)
        } else {
            Ok(self.reject())
        }
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Ok(port) = u16::try_from(port_to_connect) else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        let target = format!("{host_to_connect}:{port}");
        let stats = self.stats.clone();
        // Connect outside the session loop so a slow target does not stall other channels.
        tokio::spawn(async move {
            let connect =
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&target));
            match connect.await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    stats.direct_tcpip.fetch_add(1, Ordering::Relaxed);
                    debug!(%target, "direct-tcpip connected");
                    reply.accept().await;
                    pump(tcp, channel).await;
                }
                Ok(Err(e)) => {
                    debug!(%target, error = %e, "direct-tcpip connect failed");
                    reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
                Err(_) => {
                    debug!(%target, "direct-tcpip connect timed out");
                    reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
            }
        });
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(bind) = forward_bind_addr(address, *port) else {
            return Ok(false);
        };
        let listener = match TcpListener::bind(bind).await {
            Ok(l) => l,
            Err(e) => {
                debug!(%bind, error = %e, "tcpip-forward bind failed");
                return Ok(false);
            }
        };
        let bound = match listener.local_addr() {
            Ok(a) => a,
            Err(_) => return Ok(false),
        };
        *port = u32::from(bound.port());
        self.stats
            .forwards_requested
            .fetch_add(1, Ordering::Relaxed);
        debug!(%bound, "tcpip-forward listening");
        let handle = session.handle();
        let stats = self.stats.clone();
        // The forwarded-tcpip channel names the address as the client requested it, so the
        // client can match it to its forward (RFC 4254 §7.2).
        let connected_address = address.to_string();
        let connected_port = *port;
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        debug!(error = %e, "forward accept failed");
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let handle = handle.clone();
                let stats = stats.clone();
                let connected_address = connected_address.clone();
                tokio::spawn(async move {
                    let opened = handle
                        .channel_open_forwarded_tcpip(
                            connected_address,
                            connected_port,
                            peer.ip().to_string(),
                            u32::from(peer.port()),
                        )
                        .await;
                    match opened {
                        Ok(channel) => {
                            stats.forwarded_tcpip.fetch_add(1, Ordering::Relaxed);
                            pump(tcp, channel).await;
                        }
                        Err(e) => debug!(error = %e, "forwarded-tcpip refused by the client"),
                    }
                });
            }
        });
        if let Some(old) = self.forwards.insert((address.to_string(), *port), task) {
            old.abort();
        }
        Ok(true)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        match self.forwards.remove(&(address.to_string(), port)) {
            Some(task) => {
                task.abort();
                self.stats
                    .forwards_cancelled
                    .fetch_add(1, Ordering::Relaxed);
                debug!(address, port, "tcpip-forward cancelled");
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_stay_on_loopback() {
        assert_eq!(
            forward_bind_addr("", 0),
            Some("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            forward_bind_addr("0.0.0.0", 80),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            forward_bind_addr("[::1]", 5),
            Some("[::1]:5".parse().unwrap())
        );
        assert_eq!(forward_bind_addr("127.0.0.1", 70000), None);
        assert_eq!(forward_bind_addr("not an address", 1), None);
    }
}
