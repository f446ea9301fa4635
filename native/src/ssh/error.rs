//! The SSH layer's error type: every message is one line a user can act on.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong with an SSH connection, a channel or a forward.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host name did not resolve.
    #[error("ssh: could not resolve hostname {host}: {source}")]
    Resolve {
        /// The host name as given.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The TCP connection failed.
    #[error("ssh: connect to {addr}: {source}")]
    Connect {
        /// `host:port` (or the address tried).
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The TCP connect or the SSH handshake took longer than the connect timeout.
    #[error("ssh: connection to {addr} timed out after {}s", after.as_secs_f32())]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The SSH handshake (version exchange, key exchange) failed.
    #[error("ssh: handshake with {addr} failed: {reason}")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// What russh reported.
        reason: String,
    },
    /// The server's host key is not in known_hosts and policy forbids accepting it.
    #[error(
        "ssh: host key verification failed: no host key is known for {host} in {}; the server offers {fingerprint} (StrictHostKeyChecking forbids adding it)",
        known_hosts.display()
    )]
    HostKeyUnknown {
        /// `host` or `[host]:port`, as known_hosts names it.
        host: String,
        /// Key type and SHA256 fingerprint of the offered key.
        fingerprint: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
    },
    /// The server's host key differs from the one recorded: possibly a man-in-the-middle.
    #[error(
        "ssh: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The server {host} now offers {fingerprint}. Offending key in {}:{line} (remove it if the change is expected). Host key verification failed.",
        known_hosts.display()
    )]
    HostKeyChanged {
        /// `host` or `[host]:port`.
        host: String,
        /// Key type and SHA256 fingerprint of the offered key.
        fingerprint: String,
        /// The known_hosts file holding the recorded key.
        known_hosts: PathBuf,
        /// 1-based line of the recorded key.
        line: usize,
    },
    /// The server's host key is marked `@revoked`.
    #[error("ssh: host key {fingerprint} for {host} is marked as revoked in {}:{line}", known_hosts.display())]
    HostKeyRevoked {
        /// `host` or `[host]:port`.
        host: String,
        /// Key type and SHA256 fingerprint of the offered key.
        fingerprint: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// 1-based line of the `@revoked` entry.
        line: usize,
    },
    /// The user declined an unknown host key, or there was no terminal to ask on.
    #[error("ssh: host key verification failed for {host} ({fingerprint}): {why}")]
    HostKeyRejected {
        /// `host` or `[host]:port`.
        host: String,
        /// Key type and SHA256 fingerprint of the offered key.
        fingerprint: String,
        /// Why: the answer, or the missing terminal.
        why: String,
    },
    /// A connection of the pool met a different host key than the first connection.
    #[error(
        "ssh: host key for {host} differs from the one the first connection verified ({fingerprint}); refusing"
    )]
    HostKeyMismatch {
        /// `host` or `[host]:port`.
        host: String,
        /// Key type and SHA256 fingerprint of the offered key.
        fingerprint: String,
    },
    /// A private key file could not be used.
    #[error("ssh: cannot load identity {}: {reason}", path.display())]
    KeyLoad {
        /// The key file.
        path: PathBuf,
        /// Missing, unreadable, encrypted, unsupported, …
        reason: String,
    },
    /// No identity file was configured and none of the default ones exists.
    #[error("ssh: no identity to authenticate with: none of {} exists (use an identity file option)", searched.join(", "))]
    NoIdentity {
        /// The default paths looked at.
        searched: Vec<String>,
    },
    /// Every method the server allows was tried and failed, in OpenSSH's words.
    #[error("ssh: {user}@{host}: Permission denied ({methods}).")]
    AuthFailed {
        /// Remote user.
        user: String,
        /// Server host.
        host: String,
        /// The methods the server last said it accepts.
        methods: String,
    },
    /// The jump host (`ProxyJump` / `-J`) could not be reached or could not reach the target.
    #[error("{source} (through jump host {via})")]
    Jump {
        /// `user@host:port` of the jump host.
        via: String,
        /// What failed there.
        source: Box<SshError>,
    },
    /// The ssh-agent failed while signing.
    #[error("ssh: agent: {0}")]
    Agent(String),
    /// The server refused `tcpip-forward`.
    #[error(
        "ssh: the server refused remote port forwarding on {bind_host}:{bind_port} (sshd's AllowTcpForwarding is probably 'local' or 'no', or the port is in use)"
    )]
    ForwardRefused {
        /// Requested bind address.
        bind_host: String,
        /// Requested port (0 = any).
        bind_port: u16,
    },
    /// The server refused a `direct-tcpip` channel.
    #[error("ssh: the server could not open a channel to {target}: {reason}")]
    ChannelOpen {
        /// `host:port` as the server sees it.
        target: String,
        /// The refusal reason.
        reason: String,
    },
    /// The connection is gone.
    #[error("ssh: connection to {addr} lost: {reason}")]
    Disconnected {
        /// `host:port`.
        addr: String,
        /// Why, as far as known.
        reason: String,
    },
    /// Any other protocol-level failure reported by russh.
    #[error("ssh: protocol error: {0}")]
    Protocol(#[from] russh::Error),
}
