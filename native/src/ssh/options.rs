//! Connection options, shaped after the OpenSSH client's.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Give each data forward an SSH connection of its own (`-o SeparateDataConnections`)
    /// instead of a channel on the one connection. Off by default; see
    /// [`SshPool`](super::SshPool) for when it helps.
    pub separate_data_connections: bool,
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
