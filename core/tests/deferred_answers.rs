//! Hosts that answer forward requests and command checks later: regression tests for the
//! two defects that deferred answers exposed (a data forward left open; a held reply
//! waiting forever), and for answers that come too late, twice, or for ids never asked.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ftp_tunnel_core::session::{
    Action, CommandCheck, ForwardError, ForwardId, Session, SessionConfig, Verdict,
};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What a host sees of the session's forwards, checked as the actions go by.
#[derive(Default)]
struct Ledger {
    /// Opened id → times closed.
    closes: BTreeMap<ForwardId, u32>,
    /// Bytes for the client and the server, in order, notes left out.
    to_client: Vec<String>,
    to_server: Vec<String>,
    opened: Vec<ForwardId>,
    checks: Vec<CommandCheck>,
}

impl Ledger {
    fn take(&mut self, s: &mut Session) {
        for action in s.drain_actions() {
            match action {
                Action::ToClient(b) => self.to_client.push(String::from_utf8(b).unwrap()),
                Action::ToServer(b) => self.to_server.push(String::from_utf8(b).unwrap()),
                Action::OpenForward { id, .. } => {
                    assert!(
                        self.closes.insert(id, 0).is_none(),
                        "forward id {id} reused"
                    );
                    self.opened.push(id);
                }
                Action::CloseForward { id } => {
                    let count = self
                        .closes
                        .get_mut(&id)
                        .unwrap_or_else(|| panic!("closed {id}, never opened"));
                    *count += 1;
                    assert_eq!(*count, 1, "forward {id} closed twice");
                }
                Action::CheckCommand(check) => self.checks.push(check),
                Action::Note(_) => {}
            }
        }
    }

    fn closed(&self, id: ForwardId) -> bool {
        self.closes[&id] == 1
    }

    /// Every opened forward is closed, except those named (current, or not answered yet).
    fn all_closed_but(&self, open: &[ForwardId]) {
        for (&id, &count) in &self.closes {
            if !open.contains(&id) {
                assert_eq!(count, 1, "forward {id} left open");
            }
        }
    }
}

fn session() -> Session {
    Session::new(SessionConfig::new(CLIENT, "ftp.internal"))
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::new(CLIENT, port)
}

/// PASV answered by the server; LPRT sent before the host answered the passive forward.
fn pasv_then_lprt(s: &mut Session, log: &mut Ledger) -> (ForwardId, ForwardId) {
    s.handle_client_bytes(b"PASV\r\n");
    s.handle_server_bytes(b"229 Entering Extended Passive Mode (|||3583|)\r\n");
    s.handle_client_bytes(b"LPRT 4,4,127,0,0,1,2,0,40\r\n");
    log.take(s);
    let [passive, active] = log.opened[..] else {
        panic!("expected two forwards, got {:?}", log.opened)
    };
    (passive, active)
}

/// The transfer after the LPRT runs through the active forward, which is then closed.
fn transfer_through(s: &mut Session, log: &mut Ledger, id: ForwardId) {
    s.handle_server_bytes(b"200 LPRT ok\r\n");
    s.handle_client_bytes(b"LIST\r\n");
    s.handle_server_bytes(b"150 Here\r\n226 Done\r\n");
    log.take(s);
    assert_ne!(log.to_client.last().unwrap(), "150 Here\r\n", "150 waits");
    s.handle_data_connected(id);
    s.handle_data_finished(id, Ok(()));
    log.take(s);
    assert_eq!(
        log.to_client[log.to_client.len() - 2..],
        ["150 Here\r\n", "226 Done\r\n"]
    );
    log.all_closed_but(&[]);
}

#[test]
fn a_data_forward_replaced_while_its_answer_was_pending_is_closed() {
    let mut s = session();
    let mut log = Ledger::default();
    let (passive, active) = pasv_then_lprt(&mut s, &mut log);
    s.handle_forward_opened(passive, Ok(addr(6000)));
    log.take(&mut s);
    assert_eq!(
        log.to_client,
        ["227 Entering Passive Mode (127,0,0,1,23,112).\r\n"]
    );
    log.all_closed_but(&[passive, active]);
    s.handle_forward_opened(active, Ok(addr(7000)));
    log.take(&mut s);
    assert_eq!(
        log.to_server.last().unwrap(),
        "LPRT 4,4,127,0,0,1,2,27,88\r\n"
    );
    assert!(log.closed(passive), "the LPRT replaced the passive forward");
    log.all_closed_but(&[active]);
    transfer_through(&mut s, &mut log, active);
}

#[test]
fn a_passive_forward_answered_after_a_later_active_one_is_closed_at_once() {
    let mut s = session();
    let mut log = Ledger::default();
    let (passive, active) = pasv_then_lprt(&mut s, &mut log);
    s.handle_forward_opened(active, Ok(addr(7000)));
    log.take(&mut s);
    assert_eq!(
        log.to_server.last().unwrap(),
        "LPRT 4,4,127,0,0,1,2,27,88\r\n"
    );
    s.handle_forward_opened(passive, Ok(addr(6000)));
    log.take(&mut s);
    // The client still gets an answer to its PASV, but the server was told LPRT since.
    assert_eq!(
        log.to_client,
        ["227 Entering Passive Mode (127,0,0,1,23,112).\r\n"]
    );
    assert!(log.closed(passive));
    log.all_closed_but(&[active]);
    transfer_through(&mut s, &mut log, active);
}

#[test]
fn a_held_preliminary_reply_is_released_when_a_new_eprt_closes_its_forward() {
    let mut s = session();
    let mut log = Ledger::default();
    s.handle_client_bytes(b"EPRT |1|127.0.0.1|5000|\r\n");
    log.take(&mut s);
    let first = log.opened[0];
    s.handle_forward_opened(first, Ok(addr(33000)));
    s.handle_server_bytes(b"200 EPRT ok\r\n");
    s.handle_client_bytes(b"LIST\r\n");
    s.handle_server_bytes(b"150 Here comes the listing\r\n");
    log.take(&mut s);
    assert_eq!(
        log.to_client,
        ["200 EPRT ok\r\n"],
        "150 waits for the data connection"
    );

    // The client gives up on that data connection before it came.
    s.handle_client_bytes(b"EPRT |1|127.0.0.1|5001|\r\n");
    log.take(&mut s);
    assert!(log.closed(first));
    assert_eq!(
        log.to_client.last().unwrap(),
        "150 Here comes the listing\r\n",
        "the held reply goes out when its forward closes"
    );
    let second = log.opened[1];
    s.handle_forward_opened(second, Ok(addr(33001)));
    // The first transfer's end is relayed at once: it is not the new forward's to hold, and
    // the new forward stays open for the next transfer.
    s.handle_server_bytes(b"425 No data connection\r\n200 EPRT ok\r\n");
    log.take(&mut s);
    assert_eq!(
        log.to_client[log.to_client.len() - 2..],
        ["425 No data connection\r\n", "200 EPRT ok\r\n"]
    );
    log.all_closed_but(&[second]);
    assert_eq!(s.buffered_len(), 0);

    s.handle_client_bytes(b"RETR f\r\n");
    s.handle_server_bytes(b"150 Opening\r\n226 Sent\r\n");
    log.take(&mut s);
    assert_eq!(log.to_client.last().unwrap(), "200 EPRT ok\r\n");
    s.handle_data_connected(second);
    log.take(&mut s);
    assert_eq!(log.to_client.last().unwrap(), "150 Opening\r\n");
    s.handle_data_finished(second, Ok(()));
    log.take(&mut s);
    assert_eq!(log.to_client.last().unwrap(), "226 Sent\r\n");
    log.all_closed_but(&[]);
}

#[test]
fn a_held_completion_reply_is_released_when_its_forward_closes() {
    let mut s = session();
    let mut log = Ledger::default();
    s.handle_client_bytes(b"EPSV\r\n");
    s.handle_server_bytes(b"229 ok (|||40000|)\r\n");
    log.take(&mut s);
    let first = log.opened[0];
    s.handle_forward_opened(first, Ok(addr(6000)));
    s.handle_client_bytes(b"RETR f\r\n");
    s.handle_server_bytes(b"150 go\r\n226 done\r\n");
    log.take(&mut s);
    assert_eq!(
        log.to_client.last().unwrap(),
        "150 go\r\n",
        "226 waits for the data"
    );
    s.handle_client_bytes(b"PORT 127,0,0,1,19,136\r\n");
    log.take(&mut s);
    assert_eq!(log.to_client.last().unwrap(), "226 done\r\n");
    assert!(log.closed(first));
    assert_eq!(s.buffered_len(), 0);
}

#[test]
fn a_late_answer_for_a_superseded_data_path_closes_it_once_and_repeats_change_nothing() {
    let mut s = session();
    let mut log = Ledger::default();
    let (passive, active) = pasv_then_lprt(&mut s, &mut log);
    s.handle_forward_opened(active, Ok(addr(7000)));
    s.handle_forward_opened(passive, Ok(addr(6000)));
    log.take(&mut s);
    assert!(log.closed(passive), "superseded: closed when reported open");
    // The same answers again, a failure for it, and one for an id never asked: nothing.
    let sent = (log.to_client.len(), log.to_server.len());
    s.handle_forward_opened(passive, Ok(addr(6000)));
    s.handle_forward_opened(passive, Err(ForwardError::Denied("late".into())));
    s.handle_forward_opened(active, Ok(addr(7000)));
    s.handle_forward_opened(99, Ok(addr(1)));
    assert_eq!(s.pending_actions(), 0);
    log.take(&mut s);
    assert_eq!((log.to_client.len(), log.to_server.len()), sent);
    transfer_through(&mut s, &mut log, active);
}

#[test]
fn an_ipv6_answer_to_pasv_is_closed_once() {
    let mut s = session();
    let mut log = Ledger::default();
    s.handle_client_bytes(b"PASV\r\n");
    s.handle_server_bytes(b"227 ok (10,0,0,5,4,1)\r\n");
    log.take(&mut s);
    let id = log.opened[0];
    s.handle_forward_opened(id, Ok("[::1]:5000".parse().unwrap()));
    s.handle_forward_opened(id, Ok("[::1]:5000".parse().unwrap()));
    log.take(&mut s);
    assert!(log.closed(id));
    assert!(log.to_client[0].starts_with("522 "), "{:?}", log.to_client);
    // The next transfer has no data path to wait for: its reply is relayed at once.
    s.handle_client_bytes(b"LIST\r\n");
    s.handle_server_bytes(b"425 Use PORT or PASV first\r\n");
    log.take(&mut s);
    assert_eq!(
        log.to_client.last().unwrap(),
        "425 Use PORT or PASV first\r\n"
    );
    log.all_closed_but(&[]);
}

#[test]
fn verdicts_late_twice_or_unknown_change_nothing_and_a_denied_transfer_never_starts() {
    let mut config = SessionConfig::new(CLIENT, "ftp.internal");
    config.check_commands = true;
    let mut s = Session::new(config);
    let mut log = Ledger::default();
    s.handle_client_bytes(b"PORT 127,0,0,1,4,1\r\nRETR secret\r\nNOOP\r\n");
    log.take(&mut s);
    let port = log.checks[0].id;
    s.handle_command_verdict(port, Verdict::Allow);
    log.take(&mut s);
    let [id] = log.opened[..] else {
        panic!("{:?}", log.opened)
    };
    // The client direction waits for the data path: no second check yet, and a second
    // verdict for the PORT (now a denial) changes nothing.
    assert_eq!(log.checks.len(), 1);
    s.handle_command_verdict(port, Verdict::Deny("too late".into()));
    s.handle_command_verdict(77, Verdict::Allow);
    assert_eq!(s.pending_actions(), 0);
    s.handle_forward_opened(id, Ok(addr(33000)));
    log.take(&mut s);
    assert_eq!(log.to_server, ["PORT 127,0,0,1,128,232\r\n"]);
    let retr = &log.checks[1];
    assert_eq!(
        (retr.verb.as_str(), retr.argument.as_str()),
        ("RETR", "secret")
    );
    s.handle_command_verdict(retr.id, Verdict::Deny("no downloads".into()));
    s.handle_command_verdict(retr.id, Verdict::Allow);
    log.take(&mut s);
    assert_eq!(log.to_client, ["550 denied by policy: no downloads\r\n"]);
    assert_eq!(log.to_server.len(), 1, "RETR never reaches the server");
    let noop = log.checks[2].id;
    s.handle_command_verdict(noop, Verdict::Allow);
    log.take(&mut s);
    assert_eq!(log.to_server.last().unwrap(), "NOOP\r\n");
    log.all_closed_but(&[id]);
}
