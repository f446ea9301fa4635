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
//! direction's framer ([`Session::buffered_len`]).
//!
//! Forwards: the session has at most one *current* data forward, the one the server uses
//! for its next transfer. Every forward the host opened for it is closed exactly once, by
//! one mechanism that also lets go of a reply held for that forward's data connection.

mod client;
mod server;
mod types;

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::framing::LineFramer;
use crate::reply::ReplyTracker;

pub use types::{Action, ForwardId, ForwardRequest, Note, NoteKind, SessionConfig};

/// Position of a data command (PASV, PORT, ...) in the stream of commands the server
/// received. The server serves a transfer with the data path its latest data command
/// before the transfer named; comparing positions tells which forward that is, also when
/// the host answers forward requests late or out of order.
type DataSeq = u64;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A passive command, at this position.
    Passive(PassiveCommand, DataSeq),
    /// The rewritten active command naming this forward.
    Active(ForwardId),
    /// A transfer, served by the data command at this position.
    Transfer(DataSeq),
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
        seq: DataSeq,
        original: String,
    },
    /// For the data connection to finish before relaying its completion reply.
    TransferEnd { id: ForwardId, held: Vec<u8> },
    /// For an active-mode data connection to reach the client before relaying the
    /// transfer's preliminary reply: curl treats control data that arrives before the data
    /// connection as an error, and through a tunnel the server's `150` can overtake it.
    DataConnect { id: ForwardId, held: Vec<u8> },
}

impl ServerWait {
    /// The forward whose data connection a held reply waits for.
    fn holds_for(&self) -> Option<ForwardId> {
        match self {
            ServerWait::TransferEnd { id, .. } | ServerWait::DataConnect { id, .. } => Some(*id),
            ServerWait::PassiveForward { .. } => None,
        }
    }

    fn held_len(&self) -> usize {
        match self {
            ServerWait::TransferEnd { held, .. } | ServerWait::DataConnect { held, .. } => {
                held.len()
            }
            ServerWait::PassiveForward { .. } => 0,
        }
    }
}

/// Why the client direction is waiting: for the remote forward an active command will name.
#[derive(Debug)]
struct ActiveWait {
    id: ForwardId,
    command: ActiveCommand,
    original: String,
}

#[derive(Debug, Clone, Copy)]
struct DataForward {
    id: ForwardId,
    /// Position of the data command that named this forward to the server.
    seq: DataSeq,
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
    client_wait: Option<ActiveWait>,
    /// The current data forward: opened, and named to the server by its latest data command.
    data: Option<DataForward>,
    /// Data commands relayed to the server so far (the last one's [`DataSeq`]).
    data_commands: DataSeq,
    next_forward: ForwardId,
    actions: VecDeque<Action>,
}

impl Session {
    /// A session for one new control connection.
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
            data_commands: 0,
            next_forward: 1,
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

    /// The host's answer to [`Action::OpenForward`]: the address it listens on, or why not.
    ///
    /// An answer for an id the session is not waiting for (never asked, answered before)
    /// is ignored: the session closes only forwards it asked for, each once.
    pub fn handle_forward_opened(&mut self, id: ForwardId, result: Result<SocketAddr, String>) {
        if let Some(ServerWait::PassiveForward {
            command,
            seq,
            original,
            ..
        }) = self.server_wait.take_if(
            |w| matches!(w, ServerWait::PassiveForward { id: waiting, .. } if *waiting == id),
        ) {
            self.finish_passive(id, command, seq, original, result);
        } else if let Some(wait) = self.client_wait.take_if(|w| w.id == id) {
            self.finish_active(wait, result);
        }
        self.run();
    }

    /// The data connection of forward `id` is over and everything it carried was delivered,
    /// or it failed, or no connection came in time. Ignored unless `id` is the current
    /// data forward.
    pub fn handle_data_finished(&mut self, id: ForwardId) {
        let Some(data) = self.data.as_mut().filter(|d| d.id == id) else {
            return;
        };
        data.finished = true;
        let held_for_it = self.held_for() == Some(id);
        match self.server_wait {
            // The transfer is over: its completion reply goes out as the forward closes.
            Some(ServerWait::TransferEnd { .. }) if held_for_it => self.close_forward(id),
            // It failed before it connected: the client hears the server's verdict.
            Some(ServerWait::DataConnect { .. }) if held_for_it => self.release_held(),
            _ => {}
        }
        self.run();
    }

    /// The data connection of active-mode forward `id` has reached the FTP client. Ignored
    /// unless `id` is the current data forward.
    pub fn handle_data_connected(&mut self, id: ForwardId) {
        let Some(data) = self.data.as_mut().filter(|d| d.id == id) else {
            return;
        };
        data.connected = true;
        if matches!(self.server_wait, Some(ServerWait::DataConnect { .. }))
            && self.held_for() == Some(id)
        {
            self.release_held();
        }
        self.run();
    }

    /// The next thing for the host to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Takes every pending action at once.
    pub fn drain_actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.actions.drain(..)
    }

    /// Actions not yet taken by [`poll_action`](Self::poll_action) or
    /// [`drain_actions`](Self::drain_actions).
    pub fn pending_actions(&self) -> usize {
        self.actions.len()
    }

    /// Received bytes not yet dealt with: lines queued in either direction while it waits
    /// for the host, partial lines, and a reply held for a data connection. Below
    /// `2 * max_line` unless a direction waits. A host bounds the session's memory by
    /// pausing reads while this is large; nothing is ever dropped.
    pub fn buffered_len(&self) -> usize {
        self.from_client.pending()
            + self.from_server.pending()
            + self.server_wait.as_ref().map_or(0, ServerWait::held_len)
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

    /// Counts a data command relayed to the server and returns its position.
    fn next_data_command(&mut self) -> DataSeq {
        self.data_commands += 1;
        self.data_commands
    }

    fn send_client(&mut self, bytes: impl Into<Vec<u8>>) {
        self.actions.push_back(Action::ToClient(bytes.into()));
    }

    fn send_server(&mut self, bytes: impl Into<Vec<u8>>) {
        self.actions.push_back(Action::ToServer(bytes.into()));
    }

    fn note(&mut self, kind: NoteKind, original: &str, replacement: &str) {
        self.actions.push_back(Action::Note(Note {
            kind,
            original: original.to_owned(),
            replacement: replacement.trim_end().to_owned(),
        }));
    }

    fn refuse(&mut self, kind: NoteKind, original: &str, reply: String) {
        self.note(kind, original, &reply);
        self.send_client(reply);
    }

    /// The forward a held reply waits for, if one does.
    fn held_for(&self) -> Option<ForwardId> {
        self.server_wait.as_ref().and_then(ServerWait::holds_for)
    }

    /// Relays the reply held for a data connection, if any, and stops waiting.
    fn release_held(&mut self) {
        if let Some(ServerWait::TransferEnd { held, .. } | ServerWait::DataConnect { held, .. }) =
            self.server_wait.take_if(|w| w.holds_for().is_some())
        {
            self.send_client(held);
        }
    }

    /// The one place a forward the host opened is closed. A reply held for its data
    /// connection goes out first: no host reports on a forward it was told to close, so it
    /// would otherwise wait forever, with every later reply queued behind it.
    fn close_forward(&mut self, id: ForwardId) {
        if self.held_for() == Some(id) {
            self.release_held();
        }
        if self.data.is_some_and(|d| d.id == id) {
            self.data = None;
        }
        self.actions.push_back(Action::CloseForward { id });
    }

    /// Closes the current data forward, if any.
    fn close_data(&mut self) {
        if let Some(data) = self.data {
            self.close_forward(data.id);
        }
    }

    /// A newly opened data forward replaces the current one, which is closed; unless the
    /// server has already been given a later data command, in which case the new forward
    /// is stale from the start and is closed instead.
    fn make_current(&mut self, new: DataForward) {
        match self.data {
            Some(current) if current.seq > new.seq => self.close_forward(new.id),
            Some(current) => {
                self.close_forward(current.id);
                self.data = Some(new);
            }
            None => self.data = Some(new),
        }
    }
}
