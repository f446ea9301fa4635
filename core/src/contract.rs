//! The vocabulary between a [`Session`](crate::session::Session) and the host that drives
//! it: what the session is configured with, the actions it hands out, and the answers the
//! host gives later. Every host (the WASI component, the npm package, the Envoy filter)
//! maps these types one for one; the WIT package `ftp-tunnel:plugin@0.3.0` mirrors them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::framing::LineFramer;

/// Identifies one data path the session asked for; chosen by the session, never reused
/// within a session.
pub type ForwardId = u32;

/// Identifies one command the session asked the host to check; chosen by the session.
pub type CheckId = u32;

/// The rules and addresses one session works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The FTP client's address: the control connection's peer (for a remote tunnel, the
    /// originator address the SSH server reported).
    pub client_peer: IpAddr,
    /// The FTP server's host as the side that connects to it reaches it (name or IP literal).
    pub server_host: String,
    /// Connect passive data connections to the address a passive reply names (FXP,
    /// load-balanced servers) instead of `server_host`. Off by default: SSRF.
    pub trust_passive_address: bool,
    /// Accept PORT/EPRT/LPRT naming a host other than `client_peer`. Off by default: bounce.
    pub allow_foreign_data_address: bool,
    /// Longest control line interpreted; longer lines are relayed untouched.
    pub max_line: usize,
    /// Ask the host about every client command ([`Action::CheckCommand`]) before acting on
    /// it: for policies and audit logs. Off by default.
    pub check_commands: bool,
}

/// Why a [`SessionConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Lines of up to 512 bytes must be interpreted (RFC 959).
    #[error("max_line {0} is below the 512 bytes FTP lines need")]
    MaxLineTooSmall(usize),
    /// The FTP server's host is empty or contains control characters.
    #[error("FTP server host {0:?} is empty or contains control characters")]
    BadServerHost(String),
}

impl SessionConfig {
    /// Checks what a host may have got wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_line < 512 {
            return Err(ConfigError::MaxLineTooSmall(self.max_line));
        }
        if self.server_host.is_empty() || self.server_host.chars().any(char::is_control) {
            return Err(ConfigError::BadServerHost(self.server_host.clone()));
        }
        Ok(())
    }

    /// Safe defaults for a client at `client_peer` and a server at `server_host`.
    pub fn new(client_peer: IpAddr, server_host: impl Into<String>) -> Self {
        Self {
            client_peer,
            server_host: server_host.into(),
            trust_passive_address: false,
            allow_foreign_data_address: false,
            max_line: LineFramer::DEFAULT_MAX_LINE,
            check_commands: false,
        }
    }
}

/// Which way a data connection is set up. The host picks the mechanism that serves it
/// from the tunnel's direction; the session does not know or care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataMode {
    /// PASV/EPSV/LPSV: the FTP client connects to the address the rewritten reply names.
    Passive,
    /// PORT/EPRT/LPRT: the FTP server connects to the address the rewritten command names.
    Active,
}

impl DataMode {
    /// Lower-case name, used in logs and across the WIT boundary.
    pub fn as_str(self) -> &'static str {
        match self {
            DataMode::Passive => "passive",
            DataMode::Active => "active",
        }
    }
}

/// A data path the host is asked to open: a place that accepts one connection, carried to
/// `target_host:target_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPathRequest {
    /// Passive or active.
    pub mode: DataMode,
    /// Where the data connection is carried to: the FTP server's data port (passive) or the
    /// FTP client's data listener (active). A name or an IP literal.
    pub target_host: String,
    /// The port on `target_host`.
    pub target_port: u16,
    /// The only peer the data connection may come from, where the session knows it: the FTP
    /// client in passive mode; in active mode the FTP server, if `server_host` is an IP
    /// literal.
    pub expect_peer: Option<IpAddr>,
}

/// Why the host could not open a data path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// The SSH server refused it (forwarding prohibited, no such port, ...).
    Refused(String),
    /// A policy denied it.
    Denied(String),
    /// It could not be set up on the host (no free port, too many data paths, ...).
    Failed(String),
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::Refused(reason) => write!(f, "the SSH server refused it: {reason}"),
            ForwardError::Denied(reason) => write!(f, "denied by policy: {reason}"),
            ForwardError::Failed(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for ForwardError {}

/// Why a data path's connection did not deliver a whole transfer: the host's report in
/// [`Session::handle_data_finished`](crate::session::Session::handle_data_finished). A
/// transfer whose data path failed never gets a `2xx` completion reply through the session:
/// the server may have written a small file into buffers and called it complete, but the
/// client received nothing, so the client hears `426` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataFailure {
    /// No data connection was made: none came before the host's deadline, or the target
    /// could not be reached.
    NotConnected(String),
    /// The data connection broke before every byte was delivered.
    Broken(String),
}

impl fmt::Display for DataFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataFailure::NotConnected(reason) => f.write_str(reason),
            DataFailure::Broken(reason) => write!(f, "the data connection broke: {reason}"),
        }
    }
}

impl std::error::Error for DataFailure {}

/// A client command the host is asked to allow or deny (see
/// [`SessionConfig::check_commands`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandCheck {
    /// Answer with [`Session::handle_command_verdict`](crate::session::Session::handle_command_verdict).
    pub id: CheckId,
    /// The verb in upper case, e.g. `STOR`.
    pub verb: String,
    /// The rest of the line, trimmed; `***` for PASS.
    pub argument: String,
}

/// The host's answer to a [`CommandCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on as usual.
    Allow,
    /// Refuse with `550 denied by policy: <reason>`; the command never reaches the server.
    Deny(String),
}

/// What kind of event a [`Note`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// A line was replaced by one naming a data path.
    Rewrite,
    /// A command was refused locally by a security rule.
    Refused,
    /// A line could not be parsed; an error reply was given instead.
    Malformed,
    /// The host could not open a data path.
    ForwardFailed,
    /// A command was denied by the host's verdict.
    Denied,
    /// A transfer command got its final reply: `original` is the command, `replacement` the
    /// reply, `forward` the data path that carried it (if any).
    Transfer,
}

impl NoteKind {
    /// Stable lower-case name, used in logs and across the WIT boundary.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Rewrite => "rewrite",
            NoteKind::Refused => "refused",
            NoteKind::Malformed => "malformed",
            NoteKind::ForwardFailed => "forward-failed",
            NoteKind::Denied => "denied",
            NoteKind::Transfer => "transfer",
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
    /// The line sent instead, without its line ending, sanitised.
    pub replacement: String,
    /// The data path this is about, if any.
    pub forward: Option<ForwardId>,
}

/// One thing the host must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the FTP server's control connection.
    ToServer(Vec<u8>),
    /// Write these bytes to the FTP client's control connection.
    ToClient(Vec<u8>),
    /// Open a data path and answer, now or later, with
    /// [`Session::handle_forward_opened`](crate::session::Session::handle_forward_opened).
    /// Each id is asked for once.
    OpenForward {
        /// The session's name for it.
        id: ForwardId,
        /// What to open.
        request: DataPathRequest,
    },
    /// Close a data path (its listener or remote forward, and any data connection of it).
    /// The host reports nothing more about it. Comes at most once per data path answered as
    /// opened (also when the answer came after a later data command superseded it), never
    /// for one that failed or was never asked; what is still open when the control
    /// connection ends, the host closes.
    CloseForward {
        /// The data path to close.
        id: ForwardId,
    },
    /// Allow or deny this command, answering with
    /// [`Session::handle_command_verdict`](crate::session::Session::handle_command_verdict).
    CheckCommand(CommandCheck),
    /// Log this.
    Note(Note),
}

/// The address a host reports for an opened data path.
pub type Listening = Result<SocketAddr, ForwardError>;
