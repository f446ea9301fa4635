//! What a tunnel publishes, for whoever watches (the demo, tests, an audit log).

use std::net::SocketAddr;
use std::time::Duration;

use ftp_tunnel_core::session::DataMode;

/// Something that happened in a tunnel.
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
        /// The note's kind: "rewrite", "refused", "malformed", "forward-failed", ...
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
        /// Data path id within the session.
        forward: u32,
        /// Passive or active.
        mode: DataMode,
        /// Bytes from the FTP client to the FTP server.
        to_server: u64,
        /// Bytes from the FTP server to the FTP client.
        to_client: u64,
        /// How long the data connection lasted.
        elapsed: Duration,
    },
}
