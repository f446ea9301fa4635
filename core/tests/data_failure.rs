//! A data path the host reports failed (contract 0.3 `data-finished(id, err(..))`): the
//! server's `2xx` completion reply for the transfer it carried reaches the client as `426`,
//! whichever comes first, the failure or the reply. A server that wrote a small file into
//! buffers says `226` although the client never connected.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ftp_tunnel_core::session::{Action, DataFailure, ForwardId, NoteKind, Session, SessionConfig};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A session with a passive data path opened for the next transfer, and that path's id.
fn with_passive_path() -> (Session, ForwardId) {
    let mut s = Session::new(SessionConfig::new(CLIENT, "ftp.internal"));
    let id = open_passive_path(&mut s, 40000, 6000);
    (s, id)
}

/// EPSV answered with `server_port`, the data path it asks for opened as listening on
/// `listen_port`; its id.
fn open_passive_path(s: &mut Session, server_port: u16, listen_port: u16) -> ForwardId {
    s.handle_client_bytes(b"EPSV\r\n");
    s.handle_server_bytes(format!("229 ok (|||{server_port}|)\r\n").as_bytes());
    let id = s
        .drain_actions()
        .find_map(|a| match a {
            Action::OpenForward { id, .. } => Some(id),
            _ => None,
        })
        .expect("a data path is asked for");
    s.handle_forward_opened(id, Ok(SocketAddr::new(CLIENT, listen_port)));
    s.drain_actions().for_each(drop);
    id
}

/// What went to the client since the last call, as text, and the transfer notes' replies.
fn client_text(s: &mut Session) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut transfers = Vec::new();
    for action in s.drain_actions() {
        match action {
            Action::ToClient(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Action::Note(note) if note.kind == NoteKind::Transfer => {
                transfers.push(note.replacement)
            }
            _ => {}
        }
    }
    (text, transfers)
}

fn no_connection() -> DataFailure {
    DataFailure::NotConnected("no data connection within 2s".to_owned())
}

#[test]
fn a_226_held_for_a_data_path_that_never_connected_becomes_426() {
    let (mut s, id) = with_passive_path();
    s.handle_client_bytes(b"RETR small\r\n");
    s.handle_server_bytes(b"150 Opening\r\n226 Transfer complete.\r\n");
    assert_eq!(client_text(&mut s).0, "150 Opening\r\n", "the 226 is held");
    s.handle_data_finished(id, Err(no_connection()));
    let (text, transfers) = client_text(&mut s);
    assert_eq!(
        text,
        "426 Connection closed; transfer aborted: no data connection within 2s \
         (the FTP server said: 226 Transfer complete.)\r\n"
    );
    assert_eq!(
        transfers,
        vec![text.trim_end().to_owned()],
        "the log says so"
    );
    // The session goes on, and the next transfer is judged on its own.
    s.handle_client_bytes(b"NOOP\r\n");
    s.handle_server_bytes(b"200 ok\r\n");
    assert_eq!(client_text(&mut s).0, "200 ok\r\n");
}

#[test]
fn a_failure_reported_before_the_reply_turns_the_later_226_into_426() {
    let (mut s, id) = with_passive_path();
    s.handle_client_bytes(b"STOR up\r\n");
    s.handle_server_bytes(b"150 Ok to send\r\n");
    client_text(&mut s);
    s.handle_data_finished(id, Err(DataFailure::Broken("reset by peer".to_owned())));
    s.handle_server_bytes(b"226 Transfer complete.\r\n");
    let text = client_text(&mut s).0;
    assert!(
        text.starts_with("426 ")
            && text.contains("the data connection broke: reset by peer")
            && text.ends_with("(the FTP server said: 226 Transfer complete.)\r\n"),
        "{text:?}"
    );
}

#[test]
fn a_failure_reply_from_the_server_goes_through_unchanged() {
    let (mut s, id) = with_passive_path();
    s.handle_client_bytes(b"RETR big\r\n");
    s.handle_server_bytes(b"150 Opening\r\n");
    client_text(&mut s);
    s.handle_data_finished(id, Err(no_connection()));
    s.handle_server_bytes(b"426 Failure writing network stream.\r\n");
    assert_eq!(
        client_text(&mut s).0,
        "426 Failure writing network stream.\r\n"
    );
}

#[test]
fn a_delivered_transfer_keeps_its_226() {
    let (mut s, id) = with_passive_path();
    s.handle_client_bytes(b"RETR f\r\n");
    s.handle_server_bytes(b"150 Opening\r\n226 Transfer complete.\r\n");
    s.handle_data_finished(id, Ok(()));
    assert_eq!(
        client_text(&mut s).0,
        "150 Opening\r\n226 Transfer complete.\r\n"
    );
}

#[test]
fn a_multi_line_226_keeps_its_code_so_the_client_sees_it_end() {
    // The client has seen "226-" already: only a "226 " line ends that reply.
    let (mut s, id) = with_passive_path();
    s.handle_client_bytes(b"RETR f\r\n");
    s.handle_server_bytes(b"150 Opening\r\n226-Transfer complete.\r\n226 Bye\r\n");
    s.handle_data_finished(id, Err(no_connection()));
    assert_eq!(
        client_text(&mut s).0,
        "150 Opening\r\n226-Transfer complete.\r\n226 Bye\r\n"
    );
}

#[test]
fn a_failure_of_a_path_no_longer_current_changes_nothing() {
    let (mut s, old) = with_passive_path();
    // A second EPSV replaces the first data path.
    let new = open_passive_path(&mut s, 40001, 6001);
    s.handle_data_finished(old, Err(no_connection()));
    s.handle_client_bytes(b"RETR f\r\n");
    s.handle_server_bytes(b"150 Opening\r\n226 Transfer complete.\r\n");
    s.handle_data_finished(new, Ok(()));
    assert_eq!(
        client_text(&mut s).0,
        "150 Opening\r\n226 Transfer complete.\r\n"
    );
}

#[test]
fn the_reason_cannot_inject_a_line() {
    let (mut s, id) = with_passive_path();
    s.handle_client_bytes(b"RETR f\r\n");
    s.handle_server_bytes(b"150 Opening\r\n226 Transfer complete.\r\n");
    client_text(&mut s);
    let reason = "gone\r\n200 injected\0".to_owned();
    s.handle_data_finished(id, Err(DataFailure::NotConnected(reason)));
    let text = client_text(&mut s).0;
    assert!(text.starts_with("426 "), "{text:?}");
    assert_eq!(text.matches("\r\n").count(), 1, "one line: {text:?}");
    assert!(!text.contains('\0'), "{text:?}");
}
