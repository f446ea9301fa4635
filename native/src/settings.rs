//! FTP settings of a tunnel, and the one place where they become a session's configuration
//! for the rewrite component.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::limits::Limits;
use crate::runtime::wit;

/// Which way FTP crosses the SSH connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `-L ftp/`: FTP client on our side, FTP server beyond the SSH server.
    Local,
    /// `-R ftp/`: FTP client beyond the SSH server, FTP server on our side.
    Remote,
}

/// FTP rules and tuning for every session of a tunnel.
#[derive(Debug, Clone)]
pub struct FtpSettings {
    /// Connect passive data connections to the address the server's reply names.
    pub trust_passive_address: bool,
    /// Accept PORT/EPRT/LPRT naming a host other than the client's own.
    pub allow_foreign_data_address: bool,
    /// Where listeners on our side bind; `None` = the address the FTP control connection
    /// reached us on (`-L`), or the address we reached the FTP server from (`-R`).
    pub passive_bind: Option<IpAddr>,
    /// Where remote listeners for data bind on the SSH server in `-L` active mode; `None` =
    /// loopback of the FTP server's address family. (For `-R` passive mode they bind where
    /// the `-R` control listener binds.)
    pub active_bind: Option<String>,
    /// How long a data path waits for its connection.
    pub data_timeout: Duration,
    /// Longest control line interpreted.
    pub max_line: u32,
    /// Caps on sessions and data paths.
    pub limits: Limits,
}

impl Default for FtpSettings {
    fn default() -> Self {
        Self {
            trust_passive_address: false,
            allow_foreign_data_address: false,
            passive_bind: None,
            active_bind: None,
            data_timeout: Duration::from_secs(60),
            max_line: 8192,
            limits: Limits::default(),
        }
    }
}

impl FtpSettings {
    /// The rewrite component's configuration for one control connection from `client_peer`
    /// to the FTP server `server_host`.
    pub fn session_config(&self, client_peer: SocketAddr, server_host: &str) -> wit::SessionConfig {
        wit::SessionConfig {
            client_peer: wit::ip(client_peer.ip().to_canonical()),
            server_host: server_host.to_owned(),
            trust_passive_address: self.trust_passive_address,
            allow_foreign_data_address: self.allow_foreign_data_address,
            max_line: self.max_line,
            check_commands: false,
        }
    }
}
