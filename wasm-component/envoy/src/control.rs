//! One FTP control connection through Envoy: the core's [`Session`] plus what a network
//! filter needs around it. Pure (no proxy-wasm): the filter supplies a [`DataPaths`].
//!
//! - Client bytes come back as the bytes to forward to the server; server bytes as the bytes
//!   to forward to the client (the filter replaces Envoy's buffers with them).
//! - Answers the core gives the client from the client direction travel as placeholder
//!   replies ([`crate::slots`]).
//! - Data paths are answered at once (the route is written to shared data synchronously).
//!   Active mode is refused: the FTP server's data connection would come to Envoy and have
//!   to reach the client before the server's `150`, and a network filter can neither hold a
//!   reply for later nor learn when the other connection is up. The refusal is a `502`
//!   ([`ACTIVE_REFUSED_REPLY`]) rather than the core's `425`: lftp (ftp:auto-passive-mode)
//!   switches to passive mode only after a 5xx reply to PORT/EPRT.
//! - The core's AUTH refusal speaks of the SSH tunnel; through Envoy it says why instead
//!   ([`AUTH_REFUSED_REPLY`]).
//! - A passive data path is reported finished as soon as it is opened: Envoy's `tcp_proxy`
//!   carries the data connection, which the control connection's filter never sees end. The
//!   FTP server sends its completion reply only after its side of the data connection
//!   closed, so the client gets replies in the order it would without Envoy (bytes still in
//!   Envoy's buffers may trail the reply, as bytes in kernel buffers do without Envoy).

use std::net::SocketAddr;

use ftp_tunnel_core::contract::{
    Action, ConfigError, DataMode, DataPathRequest, ForwardError, ForwardId, Note, SessionConfig,
    Verdict,
};
use ftp_tunnel_core::session::Session;

use crate::slots::{PLACEHOLDER_COMMAND, ReplySlots, ServerPiece};

/// Why active mode is refused (the reason the core is given).
pub const ACTIVE_REFUSED: &str = "the Envoy filter carries passive-mode data connections only";

/// The client's reply to PORT/EPRT/LPRT naming its own address.
pub const ACTIVE_REFUSED_REPLY: &[u8] = b"502 Active mode is not available through this Envoy \
    filter: it carries passive-mode data connections only. Use passive mode (EPSV/PASV).\r\n";

/// The client's reply to AUTH (the core refuses it with 534; only the text differs).
pub const AUTH_REFUSED_REPLY: &[u8] = b"534 AUTH refused: this Envoy filter must read the FTP \
    control connection to route data connections, and TLS would hide it.\r\n";

/// What the control filter does for the core outside the control connection.
pub trait DataPaths {
    /// Opens a passive data path: a data listener that takes one connection from the client
    /// and carries it to `request.target_host:target_port`. Returns the address the client
    /// must connect to.
    fn open_passive(
        &mut self,
        id: ForwardId,
        request: &DataPathRequest,
    ) -> Result<SocketAddr, ForwardError>;
    /// Withdraws a data path that has not been used (or is over).
    fn close(&mut self, id: ForwardId);
    /// Logs a note of the core.
    fn note(&mut self, note: &Note);
}

/// See the module documentation.
#[derive(Debug)]
pub struct ControlSession {
    session: Session,
    slots: ReplySlots,
    /// Server-bound bytes the core produced while handling server bytes; a network filter
    /// can only send them with the next client bytes.
    deferred_to_server: Vec<u8>,
    /// The core's next answer to the client is its refusal of an active-mode data path.
    refusing_active: bool,
}

impl ControlSession {
    /// A session for one control connection.
    pub fn new(config: SessionConfig) -> Result<Self, ConfigError> {
        let max_line = config.max_line;
        Ok(Self {
            session: Session::try_new(config)?,
            slots: ReplySlots::new(max_line),
            deferred_to_server: Vec::new(),
            refusing_active: false,
        })
    }

    /// The client sent `bytes`; returns what to send the server instead.
    pub fn from_client(&mut self, bytes: &[u8], paths: &mut impl DataPaths) -> Vec<u8> {
        let mut to_server = std::mem::take(&mut self.deferred_to_server);
        self.session.handle_client_bytes(bytes);
        let mut to_client = Vec::new();
        self.run(paths, &mut to_server, &mut to_client);
        // The client direction cannot write to the client: each answer becomes a placeholder
        // command whose reply is replaced.
        if !to_client.is_empty() {
            to_server.extend_from_slice(PLACEHOLDER_COMMAND);
            self.slots.placeholder_sent(to_client);
        }
        to_server
    }

    /// The server sent `bytes` (`end` once it closed its side); returns what to send the
    /// client instead.
    pub fn from_server(&mut self, bytes: &[u8], end: bool, paths: &mut impl DataPaths) -> Vec<u8> {
        let mut pieces = self.slots.server_bytes(bytes);
        if end {
            pieces.extend(self.slots.finish());
        }
        let mut to_client = Vec::new();
        let mut to_server = Vec::new();
        for piece in pieces {
            match piece {
                ServerPiece::Relay(raw) => {
                    self.session.handle_server_bytes(&raw);
                    self.run(paths, &mut to_server, &mut to_client);
                }
                ServerPiece::Local(answer) => to_client.extend_from_slice(&answer),
            }
        }
        self.deferred_to_server.extend_from_slice(&to_server);
        to_client
    }

    /// Commands sent to the server whose final reply has not come yet.
    pub fn pending_replies(&self) -> usize {
        self.slots.pending()
    }

    /// Carries out the core's actions until it has none left. Lines for the server are
    /// counted into reply slots here, in the order they are sent.
    fn run(
        &mut self,
        paths: &mut impl DataPaths,
        to_server: &mut Vec<u8>,
        to_client: &mut Vec<u8>,
    ) {
        loop {
            let actions: Vec<Action> = self.session.drain_actions().collect();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                match action {
                    Action::ToServer(bytes) => self.send_server(&bytes, to_server),
                    Action::ToClient(bytes) => {
                        let bytes = self.adapt_answer(bytes);
                        to_client.extend_from_slice(&bytes);
                    }
                    Action::OpenForward { id, request } => self.open(id, &request, paths),
                    Action::CloseForward { id } => paths.close(id),
                    // Commands are only checked when `check_commands` is on, which this
                    // filter never sets; allow rather than stall should that change.
                    Action::CheckCommand(check) => self
                        .session
                        .handle_command_verdict(check.id, Verdict::Allow),
                    Action::Note(note) => paths.note(&note),
                }
            }
        }
    }

    fn open(&mut self, id: ForwardId, request: &DataPathRequest, paths: &mut impl DataPaths) {
        match request.mode {
            DataMode::Passive => {
                let result = paths.open_passive(id, request);
                let opened = result.is_ok();
                self.session.handle_forward_opened(id, result);
                if opened {
                    self.session.handle_data_finished(id, Ok(()));
                }
            }
            DataMode::Active => {
                self.refusing_active = true;
                self.session
                    .handle_forward_opened(id, Err(ForwardError::Denied(ACTIVE_REFUSED.into())));
            }
        }
    }

    /// Replaces the two core answers whose wording or code does not fit Envoy (see the
    /// module documentation); every other answer goes to the client as the core wrote it.
    fn adapt_answer(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        if std::mem::take(&mut self.refusing_active) && bytes.starts_with(b"425 ") {
            return ACTIVE_REFUSED_REPLY.to_vec();
        }
        if bytes.starts_with(b"534 ") {
            return AUTH_REFUSED_REPLY.to_vec();
        }
        bytes
    }

    /// Appends the core's server-bound bytes, one reply slot per complete command line.
    /// A line of only whitespace is dropped: the core expects no reply to it, and a server
    /// that answered one anyway would shift every later reply onto the wrong slot.
    fn send_server(&mut self, bytes: &[u8], to_server: &mut Vec<u8>) {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let terminated = line.ends_with(b"\n");
            if terminated && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if terminated {
                self.slots.command_sent();
            }
            to_server.extend_from_slice(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[derive(Default)]
    struct FakePaths {
        opened: Vec<(ForwardId, DataPathRequest)>,
        closed: Vec<ForwardId>,
        notes: Vec<Note>,
        fail: Option<ForwardError>,
    }

    impl DataPaths for FakePaths {
        fn open_passive(
            &mut self,
            id: ForwardId,
            request: &DataPathRequest,
        ) -> Result<SocketAddr, ForwardError> {
            self.opened.push((id, request.clone()));
            match &self.fail {
                Some(e) => Err(e.clone()),
                None => Ok("192.0.2.1:30003".parse().unwrap()),
            }
        }
        fn close(&mut self, id: ForwardId) {
            self.closed.push(id);
        }
        fn note(&mut self, note: &Note) {
            self.notes.push(note.clone());
        }
    }

    fn session() -> ControlSession {
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        ControlSession::new(SessionConfig::new(client, "10.0.0.2")).unwrap()
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn passive_reply_names_the_data_listener_and_routes_to_the_server_only() {
        let mut s = session();
        let mut p = FakePaths::default();
        assert_eq!(
            text(s.from_server(b"220 hi\r\n", false, &mut p)),
            "220 hi\r\n"
        );
        assert_eq!(text(s.from_client(b"PASV\r\n", &mut p)), "PASV\r\n");
        // The server names another host: the data still goes to the configured server.
        let reply = text(s.from_server(
            b"227 Entering Passive Mode (203,0,113,9,156,64).\r\n",
            false,
            &mut p,
        ));
        assert!(reply.starts_with("227 "), "{reply}");
        assert!(reply.contains("(192,0,2,1,117,51)"), "{reply}");
        let (_, req) = &p.opened[0];
        assert_eq!(req.mode, DataMode::Passive);
        assert_eq!(
            (req.target_host.as_str(), req.target_port),
            ("10.0.0.2", 40000)
        );
        assert_eq!(req.expect_peer, Some("198.51.100.7".parse().unwrap()));
        // The completion reply is not held: Envoy carries the data connection.
        assert_eq!(text(s.from_client(b"RETR f\r\n", &mut p)), "RETR f\r\n");
        assert_eq!(
            text(s.from_server(b"150 go\r\n226 done\r\n", false, &mut p)),
            "150 go\r\n226 done\r\n"
        );
        assert_eq!(s.pending_replies(), 0);
        // Withdrawn once the transfer is over.
        assert_eq!(p.closed, vec![p.opened[0].0]);
    }

    #[test]
    fn local_answers_replace_a_placeholder_reply() {
        let mut s = session();
        let mut p = FakePaths::default();
        s.from_server(b"220 hi\r\n", false, &mut p);
        // AUTH TLS is refused by the core, pipelined between two commands.
        let sent = text(s.from_client(b"USER a\r\nAUTH TLS\r\n", &mut p));
        assert_eq!(sent, "USER a\r\nNOOP\r\n");
        let sent = text(s.from_client(b"PASS b\r\n", &mut p));
        assert_eq!(sent, "PASS b\r\n");
        let back = text(s.from_server(b"331 pw\r\n200 NOOP ok\r\n230 in\r\n", false, &mut p));
        let lines: Vec<&str> = back.split_inclusive("\r\n").collect();
        assert_eq!(lines.len(), 3, "{back}");
        assert_eq!(lines[0], "331 pw\r\n");
        assert_eq!(lines[1].as_bytes(), AUTH_REFUSED_REPLY);
        assert_eq!(lines[2], "230 in\r\n");
    }

    #[test]
    fn bounce_and_active_mode_are_refused_without_reaching_the_server() {
        let mut s = session();
        let mut p = FakePaths::default();
        s.from_server(b"220 hi\r\n", false, &mut p);
        // PORT naming another host than the client: bounce.
        assert_eq!(
            text(s.from_client(b"PORT 10,9,9,9,4,1\r\n", &mut p)),
            "NOOP\r\n"
        );
        let back = text(s.from_server(b"200 NOOP ok\r\n", false, &mut p));
        assert!(back.starts_with("504 "), "{back}");
        // PORT naming the client itself: active mode, refused with advice to use passive.
        assert_eq!(
            text(s.from_client(b"PORT 198,51,100,7,4,1\r\n", &mut p)),
            "NOOP\r\n"
        );
        let back = s.from_server(b"200 NOOP ok\r\n", false, &mut p);
        assert_eq!(back, ACTIVE_REFUSED_REPLY);
        // EPRT alike; a malformed one keeps the core's own 501.
        assert_eq!(
            text(s.from_client(b"EPRT |1|198.51.100.7|1025|\r\n", &mut p)),
            "NOOP\r\n"
        );
        assert_eq!(
            s.from_server(b"200 NOOP ok\r\n", false, &mut p),
            ACTIVE_REFUSED_REPLY
        );
        s.from_client(b"EPRT |1|x|\r\n", &mut p);
        let back = text(s.from_server(b"200 NOOP ok\r\n", false, &mut p));
        assert!(back.starts_with("501 "), "{back}");
        assert!(p.opened.is_empty());
    }

    #[test]
    fn a_failed_data_path_gives_a_425() {
        let mut s = session();
        let mut p = FakePaths {
            fail: Some(ForwardError::Failed("all data ports busy".into())),
            ..FakePaths::default()
        };
        s.from_server(b"220 hi\r\n", false, &mut p);
        s.from_client(b"EPSV\r\n", &mut p);
        let back = text(s.from_server(b"229 ok (|||40001|)\r\n", false, &mut p));
        assert!(
            back.starts_with("425 ") && back.contains("all data ports busy"),
            "{back}"
        );
    }

    #[test]
    fn blank_lines_take_no_reply_slot() {
        let mut s = session();
        let mut p = FakePaths::default();
        s.from_server(b"220 hi\r\n", false, &mut p);
        assert_eq!(text(s.from_client(b"\r\nNOOP\r\n", &mut p)), "NOOP\r\n");
        assert_eq!(s.pending_replies(), 1);
    }

    /// Not a check: the filter logic's own CPU cost per control line (command + reply),
    /// natively. `cargo test --release -p ftp-tunnel-envoy -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark; run by hand with --release"]
    fn control_line_cpu_cost() {
        let mut s = session();
        let mut p = FakePaths::default();
        s.from_server(b"220 hi\r\n", false, &mut p);
        const N: u32 = 200_000;
        let started = std::time::Instant::now();
        for _ in 0..N {
            let sent = s.from_client(b"NOOP\r\n", &mut p);
            let back = s.from_server(b"200 NOOP ok\r\n", false, &mut p);
            assert_eq!((sent.len(), back.len()), (6, 13));
        }
        let per_line = started.elapsed().as_nanos() / u128::from(N);
        println!("filter logic (core + reply slots), native: {per_line} ns per command + reply");
    }
}
