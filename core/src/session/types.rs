//! The session's public vocabulary: its configuration, and what it asks of the host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::framing::LineFramer;

/// Identifies one data forward the session asked for; chosen by the session.
pub type ForwardId = u32;

/// The rules and addresses one session works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The FTP client's address: the control connection's peer.
    pub client_peer: IpAddr,
    /// The FTP server's host as the far side of the tunnel reaches it (name or IP literal).
    pub server_host: String,
    /// Where passive-mode listeners bind, on the FTP client's side.
    pub passive_bind: IpAddr,
    /// Where active-mode forwards bind, on the FTP server's side (name or IP literal).
    pub active_bind: String,
    /// Connect passive data connections to the address a passive reply names (FXP,
    /// load-balanced servers) instead of `server_host`. Off by default: SSRF.
    pub trust_passive_address: bool,
    /// Accept PORT/EPRT/LPRT naming a host other than `client_peer`. Off by default: bounce.
    pub allow_foreign_data_address: bool,
    /// Longest control line interpreted; longer lines are relayed untouched.
    pub max_line: usize,
}

impl SessionConfig {
    /// Safe defaults for a client at `client_peer` and a server at `server_host`.
    pub fn new(client_peer: IpAddr, server_host: impl Into<String>) -> Self {
        Self {
            client_peer,
            server_host: server_host.into(),
            passive_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            active_bind: "127.0.0.1".to_owned(),
            trust_passive_address: false,
            allow_foreign_data_address: false,
            max_line: LineFramer::DEFAULT_MAX_LINE,
        }
    }
}

/// A data forward the host is asked to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardRequest {
    /// Passive mode: listen on our side at `bind` (port 0: any), accept one connection from
    /// `expect_peer` and carry it to `connect_host:connect_port` through the SSH server.
    Local {
        /// Listening address (port 0).
        bind: SocketAddr,
        /// Data host as the SSH server resolves it.
        connect_host: String,
        /// Data port on that host.
        connect_port: u16,
        /// The only peer allowed to connect.
        expect_peer: IpAddr,
    },
    /// Active mode: the SSH server listens at `bind_host:0`; the connection arriving there
    /// is connected to `deliver_to`, the FTP client's own data listener.
    Remote {
        /// Bind address on the SSH server's side.
        bind_host: String,
        /// Where the FTP client listens.
        deliver_to: SocketAddr,
    },
}

/// What kind of event a [`Note`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// A line was replaced by one naming a forward.
    Rewrite,
    /// A command was refused locally by a security rule.
    Refused,
    /// A line could not be parsed; an error reply was given instead.
    Malformed,
    /// The host could not open a forward.
    ForwardFailed,
}

impl NoteKind {
    /// Stable lower-case name, used in logs and across the WIT boundary.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Rewrite => "rewrite",
            NoteKind::Refused => "refused",
            NoteKind::Malformed => "malformed",
            NoteKind::ForwardFailed => "forward-failed",
        }
    }
}

/// Something worth a log line: the line received and what went out instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What happened.
    pub kind: NoteKind,
    /// The line as received, sanitised.
    pub original: String,
    /// The line sent instead, without its line ending.
    pub replacement: String,
}

/// One thing the host must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the FTP server's control connection.
    ToServer(Vec<u8>),
    /// Write these bytes to the FTP client's control connection.
    ToClient(Vec<u8>),
    /// Open a data forward and answer, now or later, with
    /// [`Session::handle_forward_opened`](super::Session::handle_forward_opened). Each id is
    /// asked for once.
    OpenForward {
        /// The session's name for it.
        id: ForwardId,
        /// What to open.
        request: ForwardRequest,
    },
    /// Close a forward (listener, remote forward and any data connection of it). Comes at
    /// most once per forward answered as opened, never for one that failed or was never
    /// asked; what is still open when the control connection ends, the host closes.
    CloseForward {
        /// The forward to close.
        id: ForwardId,
    },
    /// Log this.
    Note(Note),
}
