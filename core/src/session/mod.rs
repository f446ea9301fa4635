//! The per-control-connection state machine.
//!
//! A [`Session`] is fed the bytes of one FTP control connection, both directions, and the
//! host's answers about data paths and command checks; it hands out [`Action`]s: bytes to
//! relay, data paths to open or close, commands to check, notes to log. It never does I/O
//! and never reads a clock, in the manner of quinn-proto and rustls: the host drives it and
//! carries out what it asks. Its vocabulary is [`crate::contract`], re-exported here.
//!
//! Lines are processed one at a time per direction. A direction *waits* while the session
//! needs the host before it can go on: a passive reply waits for its data path (the
//! rewritten reply must name it), a PORT/EPRT/LPRT waits for its data path, a checked
//! command waits for its verdict, and a transfer's completion reply waits until the data
//! connection has delivered its last byte, so that a client never sees `226` before its
//! data. Bytes that arrive meanwhile stay queued in that direction's framer
//! ([`Session::buffered_len`]).
//!
//! Data paths: the session has at most one *current* data path, the one the server uses
//! for its next transfer. Every data path the host opened for it is closed exactly once, by
//! one mechanism that also lets go of a reply held for that path's data connection.

mod client;
mod server;
mod types;

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::command::sanitize_for_reply;
use crate::framing::LineFramer;
use crate::reply::ReplyTracker;

pub use crate::contract::{
    Action, CheckId, CommandCheck, ConfigError, DataFailure, DataMode, DataPathRequest,
    ForwardError, ForwardId, Note, NoteKind, SessionConfig, Verdict,
};
use types::{ClientWait, DataForward, DataSeq, Expect, ServerWait};

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
    /// The current data forward: opened, and named to the server by its latest data command.
    data: Option<DataForward>,
    /// Why the current data forward's connection failed, as the host reported it: its
    /// transfer's `2xx` completion reply becomes a `426`.
    data_failure: Option<(ForwardId, String)>,
    /// Data commands relayed to the server so far (the last one's [`DataSeq`]).
    data_commands: DataSeq,
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
            data_failure: None,
            data_commands: 0,
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
    /// connection, or why there is none.
    ///
    /// Every id the session asks for is waited for until its first answer, however late:
    /// a data path that a later data command has superseded meanwhile is closed
    /// ([`Action::CloseForward`], once) as soon as it is reported open. An answer for an id
    /// never asked, or answered before, is ignored: the session closes only data paths it
    /// asked for, each once.
    pub fn handle_forward_opened(
        &mut self,
        id: ForwardId,
        result: Result<SocketAddr, ForwardError>,
    ) {
        if let Some(ServerWait::PassiveForward {
            command,
            seq,
            original,
            ..
        }) = self.server_wait.take_if(
            |w| matches!(w, ServerWait::PassiveForward { id: waiting, .. } if *waiting == id),
        ) {
            self.finish_passive(id, command, seq, original, result);
        } else if let Some(ClientWait::Active(wait)) = self
            .client_wait
            .take_if(|w| matches!(w, ClientWait::Active(w) if w.id == id))
        {
            self.finish_active(wait, result);
        }
        self.run();
    }

    /// The host's answer to [`Action::CheckCommand`]. An answer for a command the session
    /// does not wait for (never asked, answered before) is ignored.
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

    /// The data connection of forward `id` is over: `Ok` if everything it carried was
    /// delivered, or why not (no connection came in time, the target was unreachable, the
    /// connection broke). After a failure, the server's `2xx` completion reply for the
    /// transfer it carried reaches the client as a `426`: a server that wrote a small file
    /// into buffers calls it complete although the client received nothing. Ignored unless
    /// `id` is the current data forward.
    pub fn handle_data_finished(&mut self, id: ForwardId, outcome: Result<(), DataFailure>) {
        let Some(data) = self.data.as_mut().filter(|d| d.id == id) else {
            return;
        };
        data.finished = true;
        if let Err(failure) = outcome {
            self.data_failure = Some((id, failure.to_string()));
        }
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

    /// Records a transfer command's final reply, with the data path that carried it.
    fn transfer_note(&mut self, command: &str, reply: &[u8], forward: Option<ForwardId>) {
        let reply = String::from_utf8_lossy(reply).into_owned();
        self.note_about(NoteKind::Transfer, command, &reply, forward);
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
        match self.server_wait.take_if(|w| w.holds_for().is_some()) {
            Some(ServerWait::TransferEnd {
                id,
                held,
                command,
                multiline,
            }) => {
                let reply = self.completion_reply(id, held, multiline);
                self.transfer_note(&command, &reply, Some(id));
                self.send_client(reply);
            }
            Some(ServerWait::DataConnect { held, .. }) => self.send_client(held),
            Some(ServerWait::PassiveForward { .. }) | None => {}
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
        self.data_failure.take_if(|(failed, _)| *failed == id);
        self.actions.push_back(Action::CloseForward { id });
    }

    /// The completion reply to relay for a transfer that forward `id` carried: the server's
    /// own, unless the host reported that the forward's connection failed and the server
    /// calls the transfer a success, in which case the client hears `426`. The last line of
    /// a multi-line reply must repeat the code the client has already seen, so such a reply
    /// goes through as it is.
    fn completion_reply(&self, id: ForwardId, reply: Vec<u8>, multiline: bool) -> Vec<u8> {
        let Some((_, reason)) = self
            .data_failure
            .as_ref()
            .filter(|(failed, _)| *failed == id)
        else {
            return reply;
        };
        if multiline || reply.first() != Some(&b'2') {
            return reply;
        }
        let said = sanitize_for_reply(reply.trim_ascii_end());
        let reason = sanitize_for_reply(reason.as_bytes());
        format!(
            "426 Connection closed; transfer aborted: {reason} (the FTP server said: {said})\r\n"
        )
        .into_bytes()
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
