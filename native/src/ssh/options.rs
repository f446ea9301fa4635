//! Connection options, shaped after the OpenSSH client's.

use std::path::PathBuf;
use std::time::Duration;

use super::algorithms::Algorithms;

/// OpenSSH's StrictHostKeyChecking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// Only hosts already in known_hosts are accepted.
    Yes,
    /// Unknown hosts are accepted and appended to known_hosts; changed keys are refused.
    AcceptNew,
    /// Unknown hosts are accepted and appended; changed keys are still refused, because this
    /// tool exists to forward ports, which OpenSSH disables for a changed key even with `no`.
    No,
    /// Ask on the terminal for unknown hosts; without a terminal, refuse.
    Ask,
}

impl std::str::FromStr for StrictHostKeyChecking {
    type Err = String;

    /// Parses the values OpenSSH accepts (`yes`, `accept-new`, `no`/`off`, `ask`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(Self::Yes),
            "accept-new" => Ok(Self::AcceptNew),
            "no" | "off" | "false" => Ok(Self::No),
            "ask" => Ok(Self::Ask),
            other => Err(format!(
                "invalid StrictHostKeyChecking value {other:?} (expected yes, accept-new, no or ask)"
            )),
        }
    }
}

/// Everything needed to open (and re-open) an SSH connection.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Remote user name.
    pub user: String,
    /// Private keys to offer; empty means `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` that exist.
    pub identity_files: Vec<PathBuf>,
    /// The known_hosts file to verify (and, where allowed, record) host keys in.
    pub known_hosts: PathBuf,
    /// What to do with unknown host keys.
    pub strict_host_key_checking: StrictHostKeyChecking,
    /// Limit for the TCP connect and the SSH handshake (not counting a host key prompt).
    pub connect_timeout: Duration,
    /// `Ciphers` / `-c`, `MACs` / `-m`, `KexAlgorithms`, `HostKeyAlgorithms`.
    pub algorithms: Algorithms,
    /// `Compression` / `-C`: offer zlib first.
    pub compression: bool,
    /// `AddressFamily` / `-4` / `-6`.
    pub address_family: AddressFamily,
    /// `HashKnownHosts`: record new host keys under a hashed name.
    pub hash_known_hosts: bool,
    /// `ServerAliveInterval` (`None` = the built-in keepalive) and `ServerAliveCountMax`.
    pub server_alive: Option<(Duration, usize)>,
    /// `ProxyJump` / `-J`: the host to reach this one through (itself possibly behind
    /// another).
    pub jump: Option<Box<SshOptions>>,
    /// How to log in: agent, identity files, passwords.
    pub auth: AuthSettings,
    /// Give each data forward an SSH connection of its own (`-o SeparateDataConnections`)
    /// instead of a channel on the one connection. Off by default; see
    /// [`SshPool`](super::SshPool) for when it helps.
    pub separate_data_connections: bool,
}

/// OpenSSH's `AddressFamily` (`-4` / `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFamily {
    /// IPv4 or IPv6, whichever the name resolves to.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    Inet,
    /// IPv6 only (`-6`).
    Inet6,
}

impl AddressFamily {
    /// Whether an address of this family may be tried.
    pub fn allows(self, addr: &std::net::SocketAddr) -> bool {
        match self {
            Self::Any => true,
            Self::Inet => addr.is_ipv4(),
            Self::Inet6 => addr.is_ipv6(),
        }
    }
}

/// Where the ssh-agent is (`IdentityAgent`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentSocket {
    /// `$SSH_AUTH_SOCK` (the default).
    #[default]
    FromEnv,
    /// `IdentityAgent none`: do not use an agent.
    Disabled,
    /// A socket path.
    Path(PathBuf),
}

/// Authentication settings, after OpenSSH's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The agent to ask for keys.
    pub agent: AgentSocket,
    /// `IdentitiesOnly`: of the agent's keys, offer only those whose file is configured.
    pub identities_only: bool,
    /// `PreferredAuthentications`, in order.
    pub preferred: Vec<String>,
    /// `NumberOfPasswordPrompts`.
    pub password_prompts: u32,
    /// `BatchMode`: never prompt.
    pub batch_mode: bool,
    /// `PubkeyAuthentication`.
    pub pubkey: bool,
    /// `PasswordAuthentication`.
    pub password: bool,
    /// `KbdInteractiveAuthentication`.
    pub kbd_interactive: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            agent: AgentSocket::FromEnv,
            identities_only: false,
            preferred: ["publickey", "keyboard-interactive", "password"]
                .map(String::from)
                .to_vec(),
            password_prompts: 3,
            batch_mode: false,
            pubkey: true,
            password: true,
            kbd_interactive: true,
        }
    }
}

impl SshOptions {
    /// Options with OpenSSH's defaults for everything but host, port and user.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            user: user.into(),
            identity_files: Vec::new(),
            known_hosts: default_ssh_dir().join("known_hosts"),
            strict_host_key_checking: StrictHostKeyChecking::Ask,
            connect_timeout: Duration::from_secs(30),
            algorithms: Algorithms::default(),
            compression: false,
            address_family: AddressFamily::Any,
            hash_known_hosts: false,
            server_alive: None,
            jump: None,
            auth: AuthSettings::default(),
            separate_data_connections: false,
        }
    }

    /// The identity files to try, and whether they were configured (`true`) or are the
    /// default ones that exist (`false`).
    pub fn effective_identity_files(&self) -> (Vec<PathBuf>, bool) {
        if !self.identity_files.is_empty() {
            return (self.identity_files.clone(), true);
        }
        let dir = default_ssh_dir();
        let found = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.exists())
            .collect();
        (found, false)
    }
}

/// `~/.ssh` (or `./.ssh` when there is no home directory, which then simply holds nothing).
pub fn default_ssh_dir() -> PathBuf {
    std::env::home_dir().unwrap_or_default().join(".ssh")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssh_values() {
        assert_eq!("yes".parse(), Ok(StrictHostKeyChecking::Yes));
        assert_eq!("Accept-New".parse(), Ok(StrictHostKeyChecking::AcceptNew));
        assert_eq!("off".parse(), Ok(StrictHostKeyChecking::No));
        assert_eq!("ask".parse(), Ok(StrictHostKeyChecking::Ask));
        assert!("maybe".parse::<StrictHostKeyChecking>().is_err());
    }
}
