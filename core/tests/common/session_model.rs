//! A session driven by a host that answers late, out of order, twice, or for ids it was
//! never asked about, all decoded from arbitrary bytes; the session's safety properties are
//! checked after every step. Shared by the `session` fuzz target and the stable-Rust tests.
//!
//! Input: byte 0 picks the configuration ([`config_for`]); then operations, each an opcode
//! byte (taken modulo 8) and its parameter bytes (a missing byte reads as 0):
//! - [`CLIENT_RAW`], [`SERVER_RAW`]: a length byte `n`, then `n % 80` bytes to push;
//! - [`CLIENT_TOKEN`], [`SERVER_TOKEN`]: an index into [`CLIENT_TOKENS`] / [`SERVER_TOKENS`]
//!   and a split byte: the line is pushed in two pieces;
//! - [`FORWARD_OPENED`]: an id byte ([`Host::pick`]), a result byte (bit 0: failed, bit 1:
//!   IPv6 address; the high bits pick the port or the failure reason);
//! - [`DATA_CONNECTED`], [`DATA_FINISHED`]: an id byte;
//! - [`CATCH_UP`]: a byte; the host answers every request still open, oldest or newest
//!   first.
//!
//! Checked: no panic; a line the session generates (anything not an input line relayed
//! verbatim) ends in CRLF and has no other CR, LF or NUL; notes have none either; under the
//! default rules a data path only reaches the FTP server's host (passive) or the FTP
//! client's address (active); forward ids are never reused; only forwards the host opened
//! are closed, each once, and at most one is open at any time; the actions per step are
//! bounded by the bytes consumed; and once the host has answered everything, nothing stays
//! held (only partial lines remain buffered).

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ftp_tunnel_core::framing::LineFramer;
use ftp_tunnel_core::session::{Action, ForwardId, ForwardRequest, Session, SessionConfig};

/// Opcodes, see the module documentation.
pub const CLIENT_RAW: u8 = 0;
/// Bytes from the server.
pub const SERVER_RAW: u8 = 1;
/// A line from [`CLIENT_TOKENS`].
pub const CLIENT_TOKEN: u8 = 2;
/// A line from [`SERVER_TOKENS`].
pub const SERVER_TOKEN: u8 = 3;
/// The host answers a forward request.
pub const FORWARD_OPENED: u8 = 4;
/// The host reports a data connection up.
pub const DATA_CONNECTED: u8 = 5;
/// The host reports a data connection over.
pub const DATA_FINISHED: u8 = 6;
/// The host answers everything still open.
pub const CATCH_UP: u8 = 7;

/// Client lines worth combining: data commands for the configured peers and foreign ones,
/// transfers, and commands with their own rules.
pub const CLIENT_TOKENS: &[&[u8]] = &[
    b"PASV\r\n",
    b"EPSV\r\n",
    b"LPSV\r\n",
    b"EPSV ALL\r\n",
    b"PORT 127,0,0,1,4,1\r\n",
    b"PORT 192,0,2,7,200,10\r\n",
    b"PORT 10,0,0,9,0,21\r\n",
    b"EPRT |1|127.0.0.1|5000|\r\n",
    b"EPRT |2|::1|5001|\r\n",
    b"EPRT |2|::|5002|\r\n",
    b"EPRT |2|::ffff:127.0.0.1|5003|\r\n",
    b"EPRT |1|203.0.113.5|25|\r\n",
    b"LPRT 4,4,127,0,0,1,2,0,40\r\n",
    b"LPRT 6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,19,136\r\n",
    b"LIST\r\n",
    b"RETR f\r\n",
    b"STOR f\n",
    b"\xff\xf4\xff\xf2ABOR\r\n",
    b"FEAT\r\n",
    b"AUTH TLS\r\n",
    b"NOOP\r\n",
    b"PORT 127,0,0,1,4,1\0x\r\n",
];

/// Server lines worth combining: greetings, passive replies of every shape, transfer
/// replies, multi-line replies.
pub const SERVER_TOKENS: &[&[u8]] = &[
    b"220 ready\r\n",
    b"120 wait\r\n",
    b"227 Entering Passive Mode (10,0,0,5,4,1).\r\n",
    b"227 =0,0,0,0,4,2\r\n",
    b"229 Entering Extended Passive Mode (|||3583|)\r\n",
    b"229 (|1|10.0.0.1|5000|)\n",
    b"228 Entering Long Passive Mode (4,4,10,0,0,5,2,4,1)\r\n",
    b"227 Entering Passive Mode (127,0,0,1,256,0)\r\n",
    b"150 Here comes the data\r\n",
    b"125 Go ahead\r\n",
    b"226 Done\r\n",
    b"250 OK\r\n",
    b"200 Command okay\r\n",
    b"425 No data connection\r\n",
    b"500 What\r\n",
    b"211-Features:\r\n",
    b" AUTH TLS\r\n",
    b" EPSV\r\n",
    b"211 End\r\n",
    b"227-Some servers explain first\r\n",
    b"421 Bye\r\n",
];

/// Why a forward failed, as hosts might say it (with bytes no generated line may carry).
const REASONS: &[&str] = &[
    "administratively prohibited",
    "refused\r\n200 injected",
    "nul\0byte",
    "",
];

/// The FTP server's host in every configuration.
pub const SERVER_HOST: &str = "ftp.internal";

/// The configuration byte 0 selects: the client's address, the two opt-outs, the line cap.
pub fn config_for(byte: u8) -> SessionConfig {
    let peers = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
    ];
    let mut config = SessionConfig::new(peers[usize::from(byte & 3)], SERVER_HOST);
    config.trust_passive_address = byte & 4 != 0;
    config.allow_foreign_data_address = byte & 8 != 0;
    config.max_line = [512, 513, 1024, 8192][usize::from((byte >> 4) & 3)];
    config
}

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

    fn step(&mut self, op: u8, reader: &mut Reader<'_>) {
        let before = self.session.buffered_len();
        let mut pushed = 0;
        match op % 8 {
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
                    Err(REASONS[usize::from(result >> 2) % REASONS.len()].to_owned())
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
                self.session.handle_data_finished(id);
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

    fn push(&mut self, from_client: bool, bytes: &[u8]) {
        self.pushed += bytes.len();
        let (framer, lines) = if from_client {
            (&mut self.client_ref, &mut self.client_lines)
        } else {
            (&mut self.server_ref, &mut self.server_lines)
        };
        framer.push(bytes);
        while let Some(line) = framer.next_line() {
            lines.insert(line.raw);
        }
        if from_client {
            self.session.handle_client_bytes(bytes);
        } else {
            self.session.handle_server_bytes(bytes);
        }
    }

    fn answer(&mut self, id: ForwardId, result: Result<SocketAddr, String>) {
        if self.awaiting.remove(&id) && result.is_ok() {
            self.open.insert(id);
        }
        self.session.handle_forward_opened(id, result);
    }

    /// Takes the session's actions and checks them; `available` is what the session had to
    /// work with in this step (buffered before plus pushed).
    fn check(&mut self, available: usize) {
        let actions: Vec<Action> = self.session.drain_actions().collect();
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
                self.probes_seen.1 |= bytes == PROBE_COMMAND[2..];
                if !self.client_lines.contains(&bytes) {
                    assert_generated_line(&bytes);
                }
            }
            Action::ToClient(bytes) => {
                self.probes_seen.0 |= bytes == PROBE_REPLY[2..];
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
            }
        }
    }

    fn check_request(&self, request: &ForwardRequest) {
        let peer = self.config.client_peer;
        match request {
            ForwardRequest::Local {
                bind,
                connect_host,
                expect_peer,
                ..
            } => {
                assert_eq!(*bind, SocketAddr::new(self.config.passive_bind, 0));
                assert_eq!(*expect_peer, peer);
                if !self.config.trust_passive_address {
                    assert_eq!(connect_host, SERVER_HOST, "passive data path elsewhere");
                }
            }
            ForwardRequest::Remote {
                bind_host,
                deliver_to,
            } => {
                assert_eq!(*bind_host, self.config.active_bind);
                assert_ne!(deliver_to.port(), 0);
                if !self.config.allow_foreign_data_address {
                    assert_eq!(
                        deliver_to.ip().to_canonical(),
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
            let ids: Vec<ForwardId> = self.awaiting.iter().copied().collect();
            for id in ids {
                let available = self.session.buffered_len();
                self.answer(
                    id,
                    Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4001)),
                );
                self.check(available);
            }
            let open: Vec<ForwardId> = self.open.iter().copied().collect();
            for id in open {
                let available = self.session.buffered_len();
                self.session.handle_data_connected(id);
                self.check(available);
                let available = self.session.buffered_len();
                self.session.handle_data_finished(id);
                self.check(available);
            }
            if self.awaiting.is_empty()
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

/// A random input in the format above, biased towards meaningful lines and answers.
pub fn random_input(rng: &mut super::Rng, ops: usize) -> Vec<u8> {
    let mut input = vec![rng.next() as u8];
    for _ in 0..ops {
        let op = rng.below(8) as u8;
        input.push(op);
        match op {
            CLIENT_RAW | SERVER_RAW => {
                let n = rng.below(24);
                input.push(n as u8);
                const ALPHABET: &[u8] = b"PASVEPRTLIST 0123456789,|()\r\n\r\n\0\xff";
                input.extend((0..n).map(|_| ALPHABET[rng.below(ALPHABET.len())]));
            }
            _ => {
                input.push(rng.next() as u8);
                input.push(rng.next() as u8);
            }
        }
    }
    input
}
