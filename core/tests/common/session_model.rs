//! A session driven by a host that answers data-path requests and command checks late, out
//! of order, twice, or for ids it was never asked about, all decoded from arbitrary bytes;
//! the session's safety properties are checked after every step. Shared by the `session`
//! fuzz target and the stable-Rust tests.
//!
//! Input: byte 0 picks the configuration ([`config_for`]); then operations, each an opcode
//! byte (taken modulo 9) and its parameter bytes (a missing byte reads as 0):
//! - [`CLIENT_RAW`], [`SERVER_RAW`]: a length byte `n`, then `n % 80` bytes to push;
//! - [`CLIENT_TOKEN`], [`SERVER_TOKEN`]: an index into [`CLIENT_TOKENS`] / [`SERVER_TOKENS`]
//!   and a split byte: the line is pushed in two pieces;
//! - [`FORWARD_OPENED`]: an id byte ([`Host::pick`]), a result byte (bit 0: failed, bit 1:
//!   IPv6 address; the high bits pick the port, or the [`ForwardError`] variant and its
//!   reason);
//! - [`DATA_CONNECTED`], [`DATA_FINISHED`]: an id byte;
//! - [`CATCH_UP`]: a byte; the host answers every request still open, oldest or newest
//!   first;
//! - [`COMMAND_VERDICT`]: an id byte ([`Host::pick_check`]), a verdict byte (bit 0: deny;
//!   the high bits pick the reason).
//!
//! Checked: no panic; a line the session generates (anything not an input line relayed
//! verbatim) ends in CRLF and has no other CR, LF or NUL; notes have none either; under the
//! default rules a data path only reaches the FTP server's host (passive) or the FTP
//! client's address (active); forward ids are never reused; only forwards the host opened
//! are closed, each once, and at most one is open at any time; the actions per step are
//! bounded by the bytes consumed; with command checks on, every command that reaches the
//! server was allowed, a denied one gets `550` and never reaches it, and a verdict nobody
//! waits for changes nothing; without them, nothing is checked; and once the host has
//! answered everything, nothing stays held (only partial lines remain buffered).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use super::session_input::*;
use ftp_tunnel_core::command::parse_command;
use ftp_tunnel_core::framing::LineFramer;
use ftp_tunnel_core::session::{
    Action, CheckId, DataFailure, DataMode, DataPathRequest, ForwardError, ForwardId, NoteKind,
    Session, SessionConfig, Verdict,
};

/// Reads an input front to back; past its end every byte reads as 0.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(first)
    }

    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }
}

/// Runs one input (see the module documentation) and checks every property.
pub fn run(input: &[u8]) {
    let mut reader = Reader { data: input };
    let Some(config) = reader.next() else {
        return;
    };
    let mut host = Host::new(config_for(config));
    while let Some(op) = reader.next() {
        host.step(op, &mut reader);
    }
    host.settle();
}

/// The host side: what it was asked, what it opened, what it saw.
pub struct Host {
    session: Session,
    config: SessionConfig,
    cap: usize,
    /// The lines of each direction, framed independently: relayed lines are among them.
    client_ref: LineFramer,
    server_ref: LineFramer,
    client_lines: HashSet<Vec<u8>>,
    server_lines: HashSet<Vec<u8>>,
    /// Every id the session asked for, in order.
    requested: Vec<ForwardId>,
    /// Asked for and not answered yet.
    awaiting: BTreeSet<ForwardId>,
    /// Answered as opened while the session awaited it, and not closed yet.
    open: BTreeSet<ForwardId>,
    /// Every command check the session asked for, in order.
    checks: Vec<CheckId>,
    /// Checks asked for and not answered yet: id → verb.
    checks_awaiting: BTreeMap<CheckId, String>,
    /// The verb of the command the host allowed last, until it reaches the server (or the
    /// session asks about the next command).
    allowed: Option<String>,
    /// Chunks of overlong client lines that are not their last: never relayed (a last
    /// chunk may be as short as a terminator, which a relayed line can equal).
    client_overlong: HashSet<Vec<u8>>,
    pushed: usize,
    /// The probe reply reached the client; the probe command reached the server.
    probes_seen: (bool, bool),
}

/// Ends a partial line, then a reply no rule holds once the host has answered everything.
const PROBE_REPLY: &[u8] = b"\r\n299 probe\r\n";
/// Ends a partial line, then a command with no rule of its own.
const PROBE_COMMAND: &[u8] = b"\r\nXPRB\r\n";

impl Host {
    fn new(config: SessionConfig) -> Self {
        let cap = config.max_line.max(512);
        Self {
            session: Session::new(config.clone()),
            config,
            cap,
            client_ref: LineFramer::new(cap),
            server_ref: LineFramer::new(cap),
            client_lines: HashSet::new(),
            server_lines: HashSet::new(),
            requested: Vec::new(),
            awaiting: BTreeSet::new(),
            open: BTreeSet::new(),
            checks: Vec::new(),
            checks_awaiting: BTreeMap::new(),
            allowed: None,
            client_overlong: HashSet::new(),
            pushed: 0,
            probes_seen: (false, false),
        }
    }

    /// An id: mostly one the session asked for (whether answered, closed or not), else one
    /// it may never have asked for.
    fn pick(&self, byte: u8) -> ForwardId {
        if byte < 224 && !self.requested.is_empty() {
            self.requested[usize::from(byte) % self.requested.len()]
        } else {
            ForwardId::from(byte.wrapping_sub(224))
        }
    }

    /// A check id: mostly one the session asked for (the newest for byte 0), else one it
    /// may never have asked for.
    fn pick_check(&self, byte: u8) -> CheckId {
        if byte < 224 && !self.checks.is_empty() {
            self.checks[self.checks.len() - 1 - usize::from(byte) % self.checks.len()]
        } else {
            CheckId::from(byte.wrapping_sub(224))
        }
    }

    fn step(&mut self, op: u8, reader: &mut Reader<'_>) {
        let before = self.session.buffered_len();
        let mut pushed = 0;
        match op % OPCODES {
            code @ (CLIENT_RAW | SERVER_RAW) => {
                let n = usize::from(reader.byte()) % 80;
                let bytes = reader.bytes(n);
                pushed = bytes.len();
                self.push(code == CLIENT_RAW, bytes);
            }
            code @ (CLIENT_TOKEN | SERVER_TOKEN) => {
                let tokens = if code == CLIENT_TOKEN {
                    CLIENT_TOKENS
                } else {
                    SERVER_TOKENS
                };
                let token = tokens[usize::from(reader.byte()) % tokens.len()];
                let (a, b) = token.split_at(usize::from(reader.byte()) % (token.len() + 1));
                pushed = token.len();
                self.push(code == CLIENT_TOKEN, a);
                self.push(code == CLIENT_TOKEN, b);
            }
            FORWARD_OPENED => {
                let id = self.pick(reader.byte());
                let result = reader.byte();
                let outcome = if result & 1 == 1 {
                    let reason = REASONS[usize::from(result >> 4) % REASONS.len()].to_owned();
                    Err(match (result >> 2) % 3 {
                        0 => ForwardError::Refused(reason),
                        1 => ForwardError::Denied(reason),
                        _ => ForwardError::Failed(reason),
                    })
                } else {
                    let ip = if result & 2 == 0 {
                        IpAddr::V4(Ipv4Addr::LOCALHOST)
                    } else {
                        IpAddr::V6(Ipv6Addr::LOCALHOST)
                    };
                    Ok(SocketAddr::new(ip, 1024 + u16::from(result >> 2)))
                };
                self.answer(id, outcome);
            }
            DATA_CONNECTED => {
                let id = self.pick(reader.byte());
                self.session.handle_data_connected(id);
            }
            DATA_FINISHED => {
                let id = self.pick(reader.byte());
                let how = reader.byte();
                let reason = REASONS[usize::from(how >> 2) % REASONS.len()].to_owned();
                let outcome = match how & 3 {
                    0 => Err(DataFailure::NotConnected(reason)),
                    1 => Err(DataFailure::Broken(reason)),
                    _ => Ok(()),
                };
                self.session.handle_data_finished(id, outcome);
            }
            COMMAND_VERDICT => {
                let id = self.pick_check(reader.byte());
                let verdict = reader.byte();
                let verdict = if verdict & 1 == 1 {
                    Verdict::Deny(REASONS[usize::from(verdict >> 1) % REASONS.len()].to_owned())
                } else {
                    Verdict::Allow
                };
                return self.verdict(id, verdict, before);
            }
            _ => {
                let newest_first = reader.byte() & 1 == 1;
                let mut ids: Vec<ForwardId> = self.awaiting.iter().copied().collect();
                if newest_first {
                    ids.reverse();
                }
                for id in ids {
                    self.answer(
                        id,
                        Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4000)),
                    );
                }
            }
        }
        self.check(before + pushed);
    }

    /// Gives a verdict and checks what it caused; `available` is what was buffered before.
    fn verdict(&mut self, id: CheckId, verdict: Verdict, available: usize) {
        let Some(verb) = self.checks_awaiting.remove(&id) else {
            // Late, repeated or unknown: nothing happens.
            self.session.handle_command_verdict(id, verdict);
            assert_eq!(
                self.session.pending_actions(),
                0,
                "a verdict for check {id} nobody waits for did something"
            );
            return;
        };
        let denied = matches!(verdict, Verdict::Deny(_));
        self.allowed = (!denied).then(|| verb.clone());
        self.session.handle_command_verdict(id, verdict);
        let actions: Vec<Action> = self.session.drain_actions().collect();
        if denied {
            // The refusal comes first; what follows comes from later lines.
            match actions.as_slice() {
                [Action::Note(note), Action::ToClient(reply), ..]
                    if note.kind == NoteKind::Denied
                        && reply.starts_with(b"550 denied by policy: ") => {}
                other => panic!("{verb} denied, but: {other:?}"),
            }
        }
        self.check_actions(actions, available);
    }

    fn push(&mut self, from_client: bool, bytes: &[u8]) {
        self.pushed += bytes.len();
        let (framer, lines) = if from_client {
            (&mut self.client_ref, &mut self.client_lines)
        } else {
            (&mut self.server_ref, &mut self.server_lines)
        };
        framer.push(bytes);
        while let Some(line) = framer.next_line() {
            if from_client && line.overlong && !line.is_terminated() {
                self.client_overlong.insert(line.raw.clone());
            }
            lines.insert(line.raw);
        }
        if from_client {
            self.session.handle_client_bytes(bytes);
        } else {
            self.session.handle_server_bytes(bytes);
        }
    }

    fn answer(&mut self, id: ForwardId, result: Result<SocketAddr, ForwardError>) {
        if self.awaiting.remove(&id) && result.is_ok() {
            self.open.insert(id);
        }
        self.session.handle_forward_opened(id, result);
    }

    /// Takes the session's actions and checks them; `available` is what the session had to
    /// work with in this step (buffered before plus pushed).
    fn check(&mut self, available: usize) {
        let actions: Vec<Action> = self.session.drain_actions().collect();
        self.check_actions(actions, available);
    }

    /// Checks actions taken from the session; `available` as for [`Host::check`].
    fn check_actions(&mut self, actions: Vec<Action>, available: usize) {
        let buffered = self.session.buffered_len();
        let consumed = available.saturating_sub(buffered);
        assert!(
            actions.len() <= 8 + 4 * consumed,
            "{} actions for {consumed} bytes consumed",
            actions.len()
        );
        assert!(
            buffered <= self.pushed,
            "{buffered} buffered of {} pushed",
            self.pushed
        );
        assert_eq!(self.session.pending_actions(), 0);
        for action in actions {
            self.check_action(action);
        }
        assert!(self.open.len() <= 1, "forwards left open: {:?}", self.open);
    }

    fn check_action(&mut self, action: Action) {
        match action {
            Action::ToServer(bytes) => {
                assert!(
                    !self.client_overlong.contains(&bytes),
                    "a chunk of an overlong client line reached the server"
                );
                self.probes_seen.1 |= bytes == PROBE_COMMAND[2..];
                if !self.client_lines.contains(&bytes) {
                    assert_generated_line(&bytes);
                }
                self.check_allowed(&bytes);
            }
            Action::ToClient(bytes) => {
                // A probe that lands as the completion reply of a transfer whose data path
                // the host reported failed comes through as a 426 quoting it.
                self.probes_seen.0 |= bytes == PROBE_REPLY[2..]
                    || (bytes.starts_with(b"426 ")
                        && bytes.ends_with(b"(the FTP server said: 299 probe)\r\n"));
                if !self.server_lines.contains(&bytes) {
                    assert_generated_line(&bytes);
                }
            }
            Action::OpenForward { id, request } => {
                assert!(!self.requested.contains(&id), "forward id {id} reused");
                self.requested.push(id);
                self.awaiting.insert(id);
                self.check_request(&request);
            }
            Action::CheckCommand(check) => {
                assert!(self.config.check_commands, "checked without check_commands");
                assert!(
                    !self.checks.contains(&check.id),
                    "check id {} reused",
                    check.id
                );
                assert!(
                    self.checks_awaiting.is_empty(),
                    "a second check while {:?} waits",
                    self.checks_awaiting
                );
                if check.verb == "PASS" {
                    assert_eq!(check.argument, "***", "a password shown to the host");
                }
                self.checks.push(check.id);
                self.checks_awaiting.insert(check.id, check.verb);
                self.allowed = None;
            }
            Action::CloseForward { id } => {
                assert!(
                    self.open.remove(&id),
                    "closed forward {id}: not open (never opened, failed, or closed before)"
                );
            }
            Action::Note(note) => {
                for text in [&note.original, &note.replacement] {
                    assert!(!text.contains(['\r', '\n', '\0']), "note {note:?}");
                }
                if let Some(id) = note.forward {
                    assert!(self.requested.contains(&id), "note names forward {id}");
                }
            }
        }
    }

    /// With command checks on, a command reaches the server only once allowed (a denied
    /// one never does): its verb is the one allowed last, and it is let through once.
    fn check_allowed(&mut self, bytes: &[u8]) {
        if !self.config.check_commands {
            return;
        }
        let content = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let Some(command) = parse_command(content) else {
            return;
        };
        // A PORT may go out as EPRT when its data path has an IPv6 address.
        let family = |verb: &str| match verb {
            "EPRT" | "LPRT" => "PORT".to_owned(),
            other => other.to_owned(),
        };
        assert_eq!(
            self.allowed.take().as_deref().map(family),
            Some(family(&command.verb)),
            "{:?} reached the server without being allowed",
            String::from_utf8_lossy(bytes)
        );
    }

    fn check_request(&self, request: &DataPathRequest) {
        let peer = self.config.client_peer;
        let DataPathRequest {
            mode,
            target_host,
            target_port,
            expect_peer,
        } = request;
        assert!(!target_host.is_empty());
        match mode {
            DataMode::Passive => {
                assert_eq!(*expect_peer, Some(peer));
                if !self.config.trust_passive_address {
                    assert_eq!(target_host, SERVER_HOST, "passive data path elsewhere");
                }
            }
            DataMode::Active => {
                assert_ne!(*target_port, 0);
                assert_eq!(*expect_peer, SERVER_HOST.parse::<IpAddr>().ok());
                let target: IpAddr = target_host
                    .parse()
                    .unwrap_or_else(|_| panic!("active target {target_host:?} is no IP"));
                if !self.config.allow_foreign_data_address {
                    assert_eq!(
                        target.to_canonical(),
                        peer.to_canonical(),
                        "active data path to a foreign host"
                    );
                }
            }
        }
    }

    /// The host catches up; then a line from each side must still go through, and only
    /// partial lines may stay buffered.
    fn settle(&mut self) {
        self.catch_up();
        let available = self.session.buffered_len() + PROBE_REPLY.len() + PROBE_COMMAND.len();
        self.push(false, PROBE_REPLY);
        self.push(true, PROBE_COMMAND);
        self.check(available);
        self.catch_up();
        assert!(
            self.probes_seen.0,
            "a server reply is stuck behind a held one"
        );
        assert!(self.probes_seen.1, "a client command is stuck");
        let buffered = self.session.buffered_len();
        assert!(
            buffered < 2 * self.cap,
            "{buffered} bytes still buffered after the host answered everything"
        );
    }

    /// The host answers every request and reports the open forward's data connection up
    /// and over, until nothing moves.
    fn catch_up(&mut self) {
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 100_000, "the session does not settle");
            let before = self.session.buffered_len();
            let asked = self.requested.len();
            let asked_checks = self.checks.len();
            let ids: Vec<ForwardId> = self.awaiting.iter().copied().collect();
            for id in ids {
                let available = self.session.buffered_len();
                self.answer(
                    id,
                    Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4001)),
                );
                self.check(available);
            }
            let checks: Vec<CheckId> = self.checks_awaiting.keys().copied().collect();
            for id in checks {
                let available = self.session.buffered_len();
                self.verdict(id, Verdict::Allow, available);
            }
            let open: Vec<ForwardId> = self.open.iter().copied().collect();
            for id in open {
                let available = self.session.buffered_len();
                self.session.handle_data_connected(id);
                self.check(available);
                let available = self.session.buffered_len();
                self.session.handle_data_finished(id, Ok(()));
                self.check(available);
            }
            if self.awaiting.is_empty()
                && self.checks_awaiting.is_empty()
                && self.checks.len() == asked_checks
                && self.requested.len() == asked
                && self.session.buffered_len() == before
            {
                break;
            }
        }
    }
}

/// A line the session made up: one CRLF, at its end, and no NUL.
pub fn assert_generated_line(bytes: &[u8]) {
    let body = bytes
        .strip_suffix(b"\r\n")
        .unwrap_or_else(|| panic!("generated line without CRLF: {bytes:?}"));
    assert!(
        !body.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "input control bytes in a generated line: {:?}",
        String::from_utf8_lossy(bytes)
    );
}
