//! The per-control-connection state machine.
//!
//! A [`Session`] is fed the bytes of one FTP control connection, both directions, and the
//! host's answers about data forwards; it hands out [`Action`]s: bytes to relay, forwards to
//! open or close, notes to log. It never does I/O and never reads a clock, in the manner of
//! quinn-proto and rustls: the host drives it and carries out what it asks.
//!
//! Lines are processed one at a time per direction. A direction *waits* while the session
//! needs the host before it can go on: a passive reply waits for its listener (the rewritten
//! reply must name it), a PORT/EPRT/LPRT waits for its remote forward, and a transfer's
//! completion reply waits until the data connection has delivered its last byte, so that a
//! client never sees `226` before its data. Bytes that arrive meanwhile stay queued in that
//! direction's framer.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use crate::command::{parse_command, sanitize_for_reply};
pub use crate::contract::{
    Action, CheckId, CommandCheck, ConfigError, DataMode, DataPathRequest, ForwardError, ForwardId, Note,
    NoteKind, SessionConfig, Verdict,
};
use crate::endpoint::{
    EndpointError, PassiveTarget, format_227, format_228, format_229, format_eprt, format_lprt,
    format_port, parse_eprt_arg, parse_lprt_arg, parse_passive_reply, parse_port_arg,
};
use crate::framing::{Line, LineFramer};
use crate::reply::{ReplyLine, ReplyTracker, reply_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PassiveCommand {
    Pasv,
    Epsv,
    Lpsv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActiveCommand {
    Port,
    Eprt,
    Lprt,
}

impl ActiveCommand {
    fn verb(self) -> &'static str {
        match self {
            ActiveCommand::Port => "PORT",
            ActiveCommand::Eprt => "EPRT",
            ActiveCommand::Lprt => "LPRT",
        }
    }
}

/// What the reply to a command sent to the server means to us.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Passive(PassiveCommand),
    Active(ForwardId),
    /// A transfer command, sanitised, for the [`NoteKind::Transfer`] note.
    Transfer(String),
    EpsvAll,
    Feat,
    Other,
}

/// Why the server direction is waiting.
#[derive(Debug)]
enum ServerWait {
    /// For the listener that the rewritten passive reply will name.
    PassiveForward {
        id: ForwardId,
        command: PassiveCommand,
        original: String,
    },
    /// For the data connection to finish before relaying its completion reply.
    TransferEnd {
        id: ForwardId,
        held: Vec<u8>,
        command: String,
    },
    /// For an active-mode data connection to reach the client before relaying the
    /// transfer's preliminary reply: curl treats control data that arrives before the data
    /// connection as an error, and through a tunnel the server's `150` can overtake it.
    DataConnect { id: ForwardId, held: Vec<u8> },
}

/// Why the client direction is waiting: for the data path an active command will name.
#[derive(Debug)]
struct ActiveWait {
    id: ForwardId,
    command: ActiveCommand,
    original: String,
}

/// Why the client direction is waiting.
#[derive(Debug)]
enum ClientWait {
    /// For the data path an active command will name.
    Active(ActiveWait),
    /// For the host's verdict on this command line.
    Verdict { id: CheckId, line: Line },
}

#[derive(Debug, Clone, Copy)]
struct DataForward {
    id: ForwardId,
    finished: bool,
    /// The data connection reached the FTP client (always true for passive mode, where the
    /// client connects to us).
    connected: bool,
}

/// One FTP control connection's rewrite state. See the module documentation.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    from_client: LineFramer,
    from_server: LineFramer,
    replies: ReplyTracker,
    expected: VecDeque<Expect>,
    greeted: bool,
    epsv_all: bool,
    in_feat_reply: bool,
    server_wait: Option<ServerWait>,
    client_wait: Option<ClientWait>,
    data: Option<DataForward>,
    next_forward: ForwardId,
    next_check: CheckId,
    actions: VecDeque<Action>,
}

impl Session {
    /// A session for one new control connection, if its configuration makes sense.
    pub fn try_new(config: SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// A session for one new control connection; a `max_line` below 512 is raised to 512.
    /// Hosts that take a configuration from outside use [`Session::try_new`].
    pub fn new(config: SessionConfig) -> Self {
        let max_line = config.max_line.max(512);
        Self {
            config,
            from_client: LineFramer::new(max_line),
            from_server: LineFramer::new(max_line),
            replies: ReplyTracker::new(),
            expected: VecDeque::new(),
            greeted: false,
            epsv_all: false,
            in_feat_reply: false,
            server_wait: None,
            client_wait: None,
            data: None,
            next_forward: 1,
            next_check: 1,
            actions: VecDeque::new(),
        }
    }

    /// The configuration this session runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Bytes the FTP client sent.
    pub fn handle_client_bytes(&mut self, bytes: &[u8]) {
        self.from_client.push(bytes);
        self.run();
    }

    /// Bytes the FTP server sent.
    pub fn handle_server_bytes(&mut self, bytes: &[u8]) {
        self.from_server.push(bytes);
        self.run();
    }

    /// The host's answer to [`Action::OpenForward`]: the address that accepts the data
    /// connection, or why there is none. A successful answer nobody waits for (late, repeated,
    /// or for an id never asked) is answered with [`Action::CloseForward`].
    pub fn handle_forward_opened(
        &mut self,
        id: ForwardId,
        result: Result<SocketAddr, ForwardError>,
    ) {
        match self.server_wait {
            Some(ServerWait::PassiveForward { id: waiting, .. }) if waiting == id => {
                if let Some(ServerWait::PassiveForward {
                    command, original, ..
                }) = self.server_wait.take()
                {
                    self.finish_passive(id, command, original, result);
                }
            }
            _ => {
                if let Some(ClientWait::Active(wait)) = self
                    .client_wait
                    .take_if(|w| matches!(w, ClientWait::Active(w) if w.id == id))
                {
                    self.finish_active(wait, result);
                } else if result.is_ok() {
                    // Nobody waits for it any more: do not leave it open.
                    self.actions.push_back(Action::CloseForward { id });
                }
            }
        }
        self.run();
    }

    /// The host's answer to [`Action::CheckCommand`]. An answer for a command the session
    /// does not wait for is ignored.
    pub fn handle_command_verdict(&mut self, id: CheckId, verdict: Verdict) {
        let Some(ClientWait::Verdict { line, .. }) = self
            .client_wait
            .take_if(|w| matches!(w, ClientWait::Verdict { id: waiting, .. } if *waiting == id))
        else {
            return;
        };
        match verdict {
            Verdict::Allow => self.on_checked_line(line),
            Verdict::Deny(reason) => {
                let reason = sanitize_for_reply(reason.as_bytes());
                let reply = format!("550 denied by policy: {reason}\r\n");
                let original = sanitize_for_reply(line.content());
                self.refuse(NoteKind::Denied, &original, reply);
            }
        }
        self.run();
    }

    /// The data connection of forward `id` is over and everything it carried was delivered,
    /// or it failed, or no connection came in time.
    pub fn handle_data_finished(&mut self, id: ForwardId) {
        if let Some(data) = self.data.as_mut().filter(|d| d.id == id) {
            data.finished = true;
        }
        self.release_preliminary(id);
        if matches!(self.server_wait, Some(ServerWait::TransferEnd { id: waiting, .. }) if waiting == id)
        {
            self.release_transfer_end();
        }
        self.run();
    }

    /// The data connection of active-mode forward `id` has reached the FTP client.
    pub fn handle_data_connected(&mut self, id: ForwardId) {
        if let Some(data) = self.data.as_mut().filter(|d| d.id == id) {
            data.connected = true;
        }
        self.release_preliminary(id);
        self.run();
    }

    fn release_preliminary(&mut self, id: ForwardId) {
        if let Some(ServerWait::DataConnect { held, .. }) = self
            .server_wait
            .take_if(|w| matches!(w, ServerWait::DataConnect { id: waiting, .. } if *waiting == id))
        {
            self.send_client(held);
        }
    }

    /// The next thing for the host to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Takes every pending action at once.
    pub fn drain_actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.actions.drain(..)
    }

    fn run(&mut self) {
        loop {
            let mut progressed = false;
            if self.server_wait.is_none()
                && let Some(line) = self.from_server.next_line()
            {
                self.on_server_line(line);
                progressed = true;
            }
            if self.client_wait.is_none()
                && let Some(line) = self.from_client.next_line()
            {
                self.on_client_line(line);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
    }

    fn new_forward_id(&mut self) -> ForwardId {
        let id = self.next_forward;
        self.next_forward = self.next_forward.wrapping_add(1).max(1);
        id
    }

    fn send_client(&mut self, bytes: impl Into<Vec<u8>>) {
        self.actions.push_back(Action::ToClient(bytes.into()));
    }

    fn send_server(&mut self, bytes: impl Into<Vec<u8>>) {
        self.actions.push_back(Action::ToServer(bytes.into()));
    }

    fn note(&mut self, kind: NoteKind, original: &str, replacement: &str) {
        self.note_about(kind, original, replacement, None);
    }

    fn note_about(
        &mut self,
        kind: NoteKind,
        original: &str,
        replacement: &str,
        forward: Option<ForwardId>,
    ) {
        self.actions.push_back(Action::Note(Note {
            kind,
            original: original.to_owned(),
            replacement: sanitize_for_reply(replacement.trim_end().as_bytes()),
            forward,
        }));
    }

    fn close_data(&mut self) {
        if let Some(data) = self.data.take() {
            self.actions.push_back(Action::CloseForward { id: data.id });
        }
    }

    // ----- client → server ---------------------------------------------------------------

    fn on_client_line(&mut self, line: Line) {
        if line.overlong {
            self.send_server(line.raw);
            return;
        }
        if line.content().contains(&0) {
            // A server may read the line only up to the NUL: what it then sees was never
            // checked here (a PORT behind a NUL would bounce), so it is not relayed.
            let reply = "500 Command refused: it contains a NUL byte.\r\n".to_owned();
            let original = sanitize_for_reply(line.content());
            return self.refuse(NoteKind::Malformed, &original, reply);
        }
        if self.config.check_commands
            && let Some(command) = parse_command(line.content())
        {
            let id = self.next_check;
            self.next_check = self.next_check.wrapping_add(1).max(1);
            let argument = if command.verb == "PASS" {
                "***".to_owned()
            } else {
                command.arg
            };
            self.actions.push_back(Action::CheckCommand(CommandCheck {
                id,
                verb: command.verb,
                argument,
            }));
            self.client_wait = Some(ClientWait::Verdict { id, line });
            return;
        }
        self.on_checked_line(line);
    }

    /// A client line that passed the host's check (or needed none).
    fn on_checked_line(&mut self, line: Line) {
        let Some(command) = parse_command(line.content()) else {
            if !line.content().iter().all(u8::is_ascii_whitespace) {
                self.expected.push_back(Expect::Other);
            }
            self.send_server(line.raw);
            return;
        };
        let expect = match command.verb.as_str() {
            "PASV" if !self.epsv_all => Expect::Passive(PassiveCommand::Pasv),
            "LPSV" if !self.epsv_all => Expect::Passive(PassiveCommand::Lpsv),
            "EPSV" if command.arg.eq_ignore_ascii_case("ALL") => Expect::EpsvAll,
            "EPSV" => Expect::Passive(PassiveCommand::Epsv),
            "PORT" => return self.on_active_command(ActiveCommand::Port, &line, &command.arg),
            "EPRT" => return self.on_active_command(ActiveCommand::Eprt, &line, &command.arg),
            "LPRT" => return self.on_active_command(ActiveCommand::Lprt, &line, &command.arg),
            "RETR" | "STOR" | "STOU" | "APPE" | "LIST" | "NLST" | "MLSD" => {
                Expect::Transfer(sanitize_for_reply(line.content()))
            }
            "FEAT" => Expect::Feat,
            "AUTH" => return self.refuse_auth(&line),
            "ABOR" => {
                // The data channel ends now; a reply held for it is stale.
                match self.server_wait {
                    Some(ServerWait::TransferEnd { .. }) => self.release_transfer_end(),
                    Some(ServerWait::DataConnect { id, .. }) => {
                        self.release_preliminary(id);
                        self.close_data();
                    }
                    _ => self.close_data(),
                }
                Expect::Other
            }
            _ => Expect::Other,
        };
        self.expected.push_back(expect);
        self.send_server(line.raw);
    }

    fn refuse_auth(&mut self, line: &Line) {
        let reply = "534 ftp-tunnel refuses AUTH: the SSH connection already encrypts this \
                     session, and TLS would hide the data ports from the tunnel.\r\n";
        self.refuse(
            NoteKind::Refused,
            &sanitize_for_reply(line.content()),
            reply.to_owned(),
        );
    }

    fn on_active_command(&mut self, command: ActiveCommand, line: &Line, arg: &str) {
        let original = sanitize_for_reply(line.content());
        let parsed = match command {
            ActiveCommand::Port => parse_port_arg(arg).map(SocketAddr::V4),
            ActiveCommand::Eprt => parse_eprt_arg(arg),
            ActiveCommand::Lprt => parse_lprt_arg(arg),
        };
        let verb = command.verb();
        let address = match parsed {
            Ok(address) if address.port() != 0 => address,
            Err(EndpointError::UnsupportedProtocol(_)) => {
                let reply = "522 Network protocol not supported, use (1,2)\r\n".to_owned();
                return self.refuse(NoteKind::Malformed, &original, reply);
            }
            Ok(_) | Err(_) => {
                let reply = format!("501 Syntax error in {verb} argument; nothing was sent.\r\n");
                return self.refuse(NoteKind::Malformed, &original, reply);
            }
        };
        // IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
        let peer = self.config.client_peer.to_canonical();
        // lftp names `::` (EPRT |2|::|port|) for "the address you see me at".
        let address = if address.ip().is_unspecified() {
            SocketAddr::new(peer, address.port())
        } else {
            address
        };
        let named = address.ip().to_canonical();
        if named != peer && !self.config.allow_foreign_data_address {
            let reply = format!(
                "504 {verb} refused: {named} is not this FTP client's address ({peer}); \
                 ftp-tunnel does not relay FTP bounce.\r\n"
            );
            return self.refuse(NoteKind::Refused, &original, reply);
        }
        // A new data address replaces the previous one.
        self.close_data();
        let id = self.new_forward_id();
        // The FTP server connects to the data path; it is the expected peer where its
        // address is known.
        let expect_peer = self.config.server_host.parse::<IpAddr>().ok();
        self.actions.push_back(Action::OpenForward {
            id,
            request: DataPathRequest {
                mode: DataMode::Active,
                target_host: address.ip().to_string(),
                target_port: address.port(),
                expect_peer,
            },
        });
        self.client_wait = Some(ClientWait::Active(ActiveWait {
            id,
            command,
            original,
        }));
    }

    fn refuse(&mut self, kind: NoteKind, original: &str, reply: String) {
        self.note(kind, original, &reply);
        self.send_client(reply);
    }

    fn finish_active(&mut self, wait: ActiveWait, result: Result<SocketAddr, ForwardError>) {
        let ActiveWait {
            id,
            command,
            original,
        } = wait;
        let listening = match result {
            Ok(listening) => listening,
            Err(error) => {
                let reply = format!(
                    "425 Can't open data connection: ftp-tunnel could not open the active-mode \
                     data path ({}). Use passive mode.\r\n",
                    sanitize_for_reply(error.to_string().as_bytes())
                );
                return self.refuse(NoteKind::ForwardFailed, &original, reply);
            }
        };
        let line = match (command, listening) {
            (ActiveCommand::Port, SocketAddr::V4(v4)) => format_port(v4),
            (ActiveCommand::Lprt, address) => format_lprt(address),
            (_, address) => format_eprt(address),
        };
        self.note_about(NoteKind::Rewrite, &original, &line, Some(id));
        self.send_server(line);
        self.expected.push_back(Expect::Active(id));
        self.data = Some(DataForward {
            id,
            finished: false,
            connected: false,
        });
    }

    // ----- server → client ---------------------------------------------------------------

    fn on_server_line(&mut self, line: Line) {
        if line.overlong {
            self.send_client(line.raw);
            return;
        }
        match self.replies.classify(line.content()) {
            ReplyLine::Start { code } => {
                self.in_feat_reply = code == 211 && self.expected.front() == Some(&Expect::Feat);
                self.send_client(line.raw);
            }
            ReplyLine::Continuation => {
                if !(self.in_feat_reply && hides_tls_feature(line.content())) {
                    self.send_client(line.raw);
                }
            }
            ReplyLine::Unrecognized => self.send_client(line.raw),
            ReplyLine::Final { code } => {
                self.in_feat_reply = false;
                self.on_final_reply(code, line);
            }
        }
    }

    fn on_final_reply(&mut self, code: u16, line: Line) {
        if !self.greeted && matches!(code, 120 | 220 | 421) {
            self.greeted = code != 120;
            return self.send_client(line.raw);
        }
        self.greeted = true;
        if (100..200).contains(&code) {
            let waits_for_connection = matches!(self.expected.front(), Some(Expect::Transfer(_)))
                && self.data.is_some_and(|d| !d.connected && !d.finished);
            if let (true, Some(data)) = (waits_for_connection, self.data) {
                self.server_wait = Some(ServerWait::DataConnect {
                    id: data.id,
                    held: line.raw,
                });
                return;
            }
            return self.send_client(line.raw);
        }
        let expect = self.expected.pop_front().unwrap_or(Expect::Other);
        match expect {
            Expect::Passive(command) if matches!(code, 227..=229) => {
                self.on_passive_reply(command, code, line)
            }
            Expect::Active(id) => {
                if !(200..300).contains(&code) && self.data.is_some_and(|d| d.id == id) {
                    self.close_data();
                }
                self.send_client(line.raw);
            }
            Expect::Transfer(command) => self.on_transfer_end(code, line, command),
            Expect::EpsvAll => {
                if (200..300).contains(&code) {
                    self.epsv_all = true;
                }
                self.send_client(line.raw);
            }
            Expect::Passive(_) | Expect::Feat | Expect::Other => self.send_client(line.raw),
        }
    }

    fn on_transfer_end(&mut self, code: u16, line: Line, command: String) {
        match self.data {
            Some(data) if (200..300).contains(&code) && !data.finished => {
                self.server_wait = Some(ServerWait::TransferEnd {
                    id: data.id,
                    held: line.raw,
                    command,
                });
            }
            _ => {
                self.transfer_note(&command, &line.raw);
                self.send_client(line.raw);
                self.close_data();
            }
        }
    }

    fn release_transfer_end(&mut self) {
        if let Some(ServerWait::TransferEnd { held, command, .. }) = self.server_wait.take() {
            self.transfer_note(&command, &held);
            self.send_client(held);
        }
        self.close_data();
    }

    /// Records a transfer command's final reply, with the data path that carried it.
    fn transfer_note(&mut self, command: &str, reply: &[u8]) {
        let forward = self.data.map(|data| data.id);
        let reply = String::from_utf8_lossy(reply).into_owned();
        self.note_about(NoteKind::Transfer, command, &reply, forward);
    }

    fn on_passive_reply(&mut self, command: PassiveCommand, code: u16, line: Line) {
        let original = sanitize_for_reply(line.content());
        let text = reply_text(line.content()).into_owned();
        let target = match parse_passive_reply(code, &text) {
            Ok(target) => target,
            Err(error) => {
                let reply = format!(
                    "425 Can't open data connection: the FTP server's passive reply is \
                     malformed ({error}): {original}\r\n"
                );
                return self.refuse(NoteKind::Malformed, &original, reply);
            }
        };
        let server_host = self.config.server_host.clone();
        let (target_host, target_port) = match target {
            PassiveTarget::Address(address) if self.config.trust_passive_address => {
                (address.ip().to_string(), address.port())
            }
            PassiveTarget::Address(address) => (server_host, address.port()),
            PassiveTarget::PortOnly(port) | PassiveTarget::ControlPeer(port) => (server_host, port),
        };
        self.close_data();
        let id = self.new_forward_id();
        self.actions.push_back(Action::OpenForward {
            id,
            request: DataPathRequest {
                mode: DataMode::Passive,
                target_host,
                target_port,
                expect_peer: Some(self.config.client_peer),
            },
        });
        self.server_wait = Some(ServerWait::PassiveForward {
            id,
            command,
            original,
        });
    }

    fn finish_passive(
        &mut self,
        id: ForwardId,
        command: PassiveCommand,
        original: String,
        result: Result<SocketAddr, ForwardError>,
    ) {
        let listening = match result {
            Ok(listening) => listening,
            Err(error) => {
                let reply = format!(
                    "425 Can't open data connection: ftp-tunnel could not open the passive \
                     data path ({}).\r\n",
                    sanitize_for_reply(error.to_string().as_bytes())
                );
                return self.refuse(NoteKind::ForwardFailed, &original, reply);
            }
        };
        let reply = match (command, listening) {
            (PassiveCommand::Pasv, SocketAddr::V4(v4)) => format_227(v4),
            (PassiveCommand::Pasv, SocketAddr::V6(_)) => {
                // 227 can only name an IPv4 address (RFC 2428 section 3): an error, never
                // another reply code that no client asked for.
                self.actions.push_back(Action::CloseForward { id });
                let reply = "522 PASV cannot name this IPv6 data address; use EPSV.\r\n";
                return self.refuse(NoteKind::Refused, &original, reply.to_owned());
            }
            (PassiveCommand::Lpsv, address) => format_228(address),
            (PassiveCommand::Epsv, address) => format_229(address.port()),
        };
        self.note_about(NoteKind::Rewrite, &original, &reply, Some(id));
        self.send_client(reply);
        self.data = Some(DataForward {
            id,
            finished: false,
            connected: true,
        });
    }
}

/// FEAT lines naming TLS features are hidden: AUTH is refused locally.
fn hides_tls_feature(content: &[u8]) -> bool {
    let feature = String::from_utf8_lossy(content);
    let feature = feature.trim_start().to_ascii_uppercase();
    ["AUTH", "PBSZ", "PROT"]
        .iter()
        .any(|name| feature == *name || feature.starts_with(&format!("{name} ")))
}
