//! A client line longer than the session's cap never reaches the server, not even in part:
//! a server with a shorter limit might act on a prefix nobody checked (a PORT naming
//! another host, a command a policy would deny). The client gets one `500` per such line and
//! the session goes on.

use std::net::{IpAddr, Ipv4Addr};

use ftp_tunnel_core::session::{Action, Session, SessionConfig};

fn session(check_commands: bool) -> Session {
    let mut config = SessionConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), "ftp.internal");
    config.check_commands = check_commands;
    Session::new(config)
}

fn take(s: &mut Session) -> (Vec<String>, Vec<String>, usize) {
    let (mut to_client, mut to_server, mut checks) = (Vec::new(), Vec::new(), 0);
    for action in s.drain_actions() {
        match action {
            Action::ToClient(b) => to_client.push(String::from_utf8_lossy(&b).into_owned()),
            Action::ToServer(b) => to_server.push(String::from_utf8_lossy(&b).into_owned()),
            Action::CheckCommand(_) => checks += 1,
            _ => {}
        }
    }
    (to_client, to_server, checks)
}

/// A bounce PORT padded past the cap, fed in pieces, then an ordinary command.
fn padded_port() -> Vec<u8> {
    let mut line = b"PORT 10,0,0,5,0,21".to_vec();
    line.resize(3 * 8192 + 17, b' ');
    line.extend_from_slice(b"\r\n");
    line
}

#[test]
fn an_overlong_command_is_refused_once_and_never_relayed() {
    for check_commands in [false, true] {
        let mut s = session(check_commands);
        s.handle_server_bytes(b"220 ready\r\n");
        take(&mut s);
        for piece in padded_port().chunks(1000) {
            s.handle_client_bytes(piece);
        }
        let (to_client, to_server, checks) = take(&mut s);
        assert!(to_server.is_empty(), "relayed: {to_server:?}");
        assert_eq!(checks, 0, "nothing to check: nothing goes out");
        assert_eq!(to_client.len(), 1, "{to_client:?}");
        assert!(
            to_client[0].starts_with("500 Command line too long") && to_client[0].ends_with("\r\n"),
            "{to_client:?}"
        );

        // The session goes on.
        s.handle_client_bytes(b"NOOP\r\n");
        let (_, to_server, checks) = take(&mut s);
        if check_commands {
            assert_eq!(checks, 1, "NOOP is checked");
        } else {
            assert_eq!(to_server, ["NOOP\r\n"]);
        }
    }
}

#[test]
fn an_unterminated_overlong_line_holds_nothing_and_sends_nothing() {
    let mut s = session(false);
    s.handle_server_bytes(b"220 ready\r\n");
    take(&mut s);
    let flood = vec![b'A'; 1024 * 1024];
    for piece in flood.chunks(64 * 1024) {
        s.handle_client_bytes(piece);
        let (to_client, to_server, _) = take(&mut s);
        assert!(to_client.is_empty() && to_server.is_empty());
    }
}
