//! The session state machine driven as a host would drive it, without any I/O.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ftp_tunnel_core::session::{
    Action, DataMode, DataPathRequest, ForwardError, ForwardId, NoteKind, Session, SessionConfig,
};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn session() -> Session {
    Session::new(SessionConfig::new(CLIENT, "ftp.internal"))
}

/// Everything the session asked for since the last call, notes left out.
fn actions(session: &mut Session) -> Vec<Action> {
    drain(session).0
}

/// Everything the session asked for since the last call: the actions without notes, and the
/// kinds of the notes.
fn drain(session: &mut Session) -> (Vec<Action>, Vec<NoteKind>) {
    let (notes, actions): (Vec<Action>, Vec<Action>) = session
        .drain_actions()
        .partition(|a| matches!(a, Action::Note(_)));
    let kinds = notes
        .into_iter()
        .filter_map(|a| match a {
            Action::Note(note) => Some(note.kind),
            _ => None,
        })
        .collect();
    (actions, kinds)
}

fn to_client(text: &str) -> Action {
    Action::ToClient(text.as_bytes().to_vec())
}

fn to_server(text: &str) -> Action {
    Action::ToServer(text.as_bytes().to_vec())
}

fn listening(port: u16) -> SocketAddr {
    SocketAddr::new(CLIENT, port)
}

/// Sends `command`, answers with `reply`, and returns the forward the session asked for.
fn passive(session: &mut Session, command: &str, reply: &str) -> (ForwardId, DataPathRequest) {
    session.handle_client_bytes(command.as_bytes());
    assert_eq!(actions(session), vec![to_server(command)]);
    session.handle_server_bytes(reply.as_bytes());
    // A data forward still open is closed first: the new one replaces it.
    match actions(session).as_slice() {
        [Action::OpenForward { id, request }]
        | [
            Action::CloseForward { .. },
            Action::OpenForward { id, request },
        ] => (*id, request.clone()),
        other => panic!("expected one OpenForward, got {other:?}"),
    }
}

#[test]
fn pasv_reply_is_rewritten_to_name_the_local_listener_and_connects_to_the_server_host() {
    let mut s = session();
    let (id, request) = passive(
        &mut s,
        "PASV\r\n",
        "227 Entering Passive Mode (10,0,0,5,4,1).\r\n",
    );
    assert_eq!(
        request,
        DataPathRequest {
            mode: DataMode::Passive,
            target_host: "ftp.internal".into(),
            target_port: 1025,
            expect_peer: Some(CLIENT),
        }
    );
    s.handle_forward_opened(id, Ok(listening(5555)));
    assert_eq!(
        actions(&mut s),
        vec![to_client(
            "227 Entering Passive Mode (127,0,0,1,21,179).\r\n"
        )]
    );
}

#[test]
fn epsv_and_cross_code_replies_answer_in_the_form_the_client_asked_for() {
    let mut s = session();
    let (id, _) = passive(
        &mut s,
        "EPSV\r\n",
        "229 Entering Extended Passive Mode (|||40001|).\r\n",
    );
    s.handle_forward_opened(id, Ok(listening(6000)));
    assert_eq!(
        actions(&mut s),
        vec![to_client(
            "229 Entering Extended Passive Mode (|||6000|)\r\n"
        )]
    );

    let (id, request) = passive(
        &mut s,
        "PASV\r\n",
        "229 Entering Passive Mode (|||40002|)\r\n",
    );
    assert!(matches!(
        request,
        DataPathRequest {
            mode: DataMode::Passive,
            target_port: 40002,
            ..
        }
    ));
    s.handle_forward_opened(id, Ok(listening(6001)));
    assert_eq!(
        actions(&mut s),
        vec![to_client(
            "227 Entering Passive Mode (127,0,0,1,23,113).\r\n"
        )]
    );
}

#[test]
fn the_address_in_a_passive_reply_is_trusted_only_when_configured() {
    let reply = "227 Entering Passive Mode (203,0,113,9,4,1)\r\n";
    let mut s = session();
    let (_, request) = passive(&mut s, "PASV\r\n", reply);
    assert!(
        matches!(request, DataPathRequest { ref target_host, .. } if target_host == "ftp.internal")
    );

    let mut config = SessionConfig::new(CLIENT, "ftp.internal");
    config.trust_passive_address = true;
    let mut s = Session::new(config);
    let (_, request) = passive(&mut s, "PASV\r\n", reply);
    assert!(
        matches!(request, DataPathRequest { ref target_host, .. } if target_host == "203.0.113.9")
    );
}

#[test]
fn unsolicited_passive_replies_open_nothing() {
    let mut s = session();
    s.handle_server_bytes(b"220 ready\r\n227 Entering Passive Mode (127,0,0,1,4,1)\r\n");
    assert_eq!(
        actions(&mut s),
        vec![
            to_client("220 ready\r\n"),
            to_client("227 Entering Passive Mode (127,0,0,1,4,1)\r\n")
        ]
    );
}

#[test]
fn a_malformed_passive_reply_gets_a_clear_425_and_the_session_goes_on() {
    let mut s = session();
    s.handle_client_bytes(b"PASV\r\n");
    actions(&mut s);
    s.handle_server_bytes(b"227 Entering Passive Mode (127,0,0,1,256,0)\r\n");
    let replies = actions(&mut s);
    assert_eq!(replies.len(), 1);
    let Action::ToClient(reply) = &replies[0] else {
        panic!("{replies:?}")
    };
    let reply = String::from_utf8_lossy(reply);
    assert!(
        reply.starts_with("425 ") && reply.contains("malformed"),
        "{reply}"
    );
    assert!(reply.ends_with("\r\n") && reply.matches('\n').count() == 1);

    s.handle_client_bytes(b"NOOP\r\n");
    s.handle_server_bytes(b"200 NOOP ok\r\n");
    assert_eq!(
        actions(&mut s),
        vec![to_server("NOOP\r\n"), to_client("200 NOOP ok\r\n")]
    );
}

#[test]
fn port_is_rewritten_to_the_remote_forward_and_bounce_is_refused() {
    let mut s = session();
    s.handle_client_bytes(b"PORT 127,0,0,1,200,10\r\n");
    let id = match actions(&mut s).as_slice() {
        [Action::OpenForward { id, request }] => {
            assert_eq!(
                *request,
                DataPathRequest {
                    mode: DataMode::Active,
                    target_host: "127.0.0.1".into(),
                    target_port: 51210,
                    expect_peer: None,
                }
            );
            *id
        }
        other => panic!("{other:?}"),
    };
    // Commands pipelined behind the PORT wait for the forward.
    s.handle_client_bytes(b"RETR f\r\n");
    assert!(actions(&mut s).is_empty());
    s.handle_forward_opened(id, Ok(SocketAddr::new(CLIENT, 33000)));
    assert_eq!(
        actions(&mut s),
        vec![
            to_server("PORT 127,0,0,1,128,232\r\n"),
            to_server("RETR f\r\n")
        ]
    );

    s.handle_client_bytes(b"PORT 203,0,113,50,0,25\r\n");
    let replies = actions(&mut s);
    assert!(
        matches!(replies.as_slice(), [Action::ToClient(r)] if r.starts_with(b"504 ")),
        "{replies:?}"
    );
    s.handle_client_bytes(b"EPRT |1|203.0.113.50|25|\r\n");
    assert!(matches!(actions(&mut s).as_slice(), [Action::ToClient(r)] if r.starts_with(b"504 ")));
}

#[test]
fn malformed_active_commands_are_answered_locally() {
    let mut s = session();
    s.handle_client_bytes(b"PORT 10,0,1,2,256,22\r\nEPRT |3|10.0.0.1|5000|\r\nPORT 10,0,1,2,4\r\n");
    let replies: Vec<String> = actions(&mut s)
        .into_iter()
        .map(|a| match a {
            Action::ToClient(r) => String::from_utf8(r).unwrap(),
            other => panic!("nothing may reach the server: {other:?}"),
        })
        .collect();
    assert!(replies[0].starts_with("501 "));
    assert!(replies[1].starts_with("522 ") && replies[1].contains("(1,2)"));
    assert!(replies[2].starts_with("501 "));
}

#[test]
fn a_refused_remote_forward_gives_a_clear_425() {
    let mut s = session();
    s.handle_client_bytes(b"EPRT |1|127.0.0.1|5000|\r\n");
    let Some(Action::OpenForward { id, .. }) = actions(&mut s).pop() else {
        panic!()
    };
    s.handle_forward_opened(
        id,
        Err(ForwardError::Refused(
            "administratively prohibited\r\nINJECT".into(),
        )),
    );
    let replies = actions(&mut s);
    let [Action::ToClient(reply)] = replies.as_slice() else {
        panic!("{replies:?}")
    };
    let reply = String::from_utf8_lossy(reply);
    assert!(reply.starts_with("425 ") && reply.contains("prohibited"));
    assert_eq!(
        reply.matches("\r\n").count(),
        1,
        "no CR/LF copied: {reply:?}"
    );
}

#[test]
fn the_completion_reply_waits_for_the_data_connection() {
    let mut s = session();
    let (id, _) = passive(&mut s, "EPSV\r\n", "229 ok (|||40000|)\r\n");
    s.handle_forward_opened(id, Ok(listening(6000)));
    actions(&mut s);
    s.handle_client_bytes(b"RETR big\r\n");
    s.handle_server_bytes(b"150 Opening\r\n226 Transfer complete\r\n");
    assert_eq!(
        actions(&mut s),
        vec![to_server("RETR big\r\n"), to_client("150 Opening\r\n")]
    );
    // Later replies queue behind the held one.
    s.handle_client_bytes(b"NOOP\r\n");
    s.handle_server_bytes(b"200 ok\r\n");
    assert_eq!(actions(&mut s), vec![to_server("NOOP\r\n")]);
    s.handle_data_finished(id, Ok(()));
    assert_eq!(
        actions(&mut s),
        vec![
            to_client("226 Transfer complete\r\n"),
            Action::CloseForward { id },
            to_client("200 ok\r\n")
        ]
    );
}

#[test]
fn a_data_connection_finished_first_lets_the_completion_reply_through() {
    let mut s = session();
    let (id, _) = passive(&mut s, "PASV\r\n", "227 =127,0,0,1,4,1\r\n");
    s.handle_forward_opened(id, Ok(listening(6000)));
    s.handle_client_bytes(b"LIST\r\n");
    s.handle_server_bytes(b"150 Here\r\n");
    actions(&mut s);
    s.handle_data_finished(id, Ok(()));
    s.handle_server_bytes(b"226 Done\r\n");
    assert_eq!(
        actions(&mut s),
        vec![to_client("226 Done\r\n"), Action::CloseForward { id }]
    );
}

#[test]
fn abort_releases_a_held_reply_and_passes_telnet_bytes_unchanged() {
    let mut s = session();
    let (id, _) = passive(&mut s, "EPSV\r\n", "229 ok (|||40000|)\r\n");
    s.handle_forward_opened(id, Ok(listening(6000)));
    s.handle_client_bytes(b"RETR f\r\n");
    s.handle_server_bytes(b"150 go\r\n226 done\r\n");
    actions(&mut s);
    let abort = b"\xff\xf4\xff\xf2ABOR\r\n";
    s.handle_client_bytes(abort);
    assert_eq!(
        actions(&mut s),
        vec![
            to_client("226 done\r\n"),
            Action::CloseForward { id },
            Action::ToServer(abort.to_vec())
        ]
    );
}

#[test]
fn after_epsv_all_pasv_replies_are_relayed_unchanged() {
    let mut s = session();
    s.handle_client_bytes(b"EPSV ALL\r\n");
    s.handle_server_bytes(b"200 EPSV ALL ok\r\n");
    actions(&mut s);
    s.handle_client_bytes(b"PASV\r\n");
    s.handle_server_bytes(b"227 Entering Passive Mode (127,0,0,1,4,1)\r\n");
    assert_eq!(
        actions(&mut s),
        vec![
            to_server("PASV\r\n"),
            to_client("227 Entering Passive Mode (127,0,0,1,4,1)\r\n")
        ]
    );
    let (_, request) = passive(&mut s, "EPSV\r\n", "229 ok (|||40000|)\r\n");
    assert!(matches!(
        request,
        DataPathRequest {
            mode: DataMode::Passive,
            target_port: 40000,
            ..
        }
    ));
}

#[test]
fn auth_tls_is_refused_locally_and_hidden_from_feat() {
    let mut s = session();
    s.handle_client_bytes(b"AUTH TLS\r\n");
    let replies = actions(&mut s);
    assert!(matches!(replies.as_slice(), [Action::ToClient(r)] if r.starts_with(b"534 ")));
    s.handle_client_bytes(b"FEAT\r\n");
    s.handle_server_bytes(b"211-Features:\r\n EPSV\r\n AUTH TLS\r\n PBSZ\r\n MDTM\r\n211 End\r\n");
    let (feat, notes) = drain(&mut s);
    assert_eq!(
        feat,
        vec![
            to_server("FEAT\r\n"),
            to_client("211-Features:\r\n"),
            to_client(" EPSV\r\n"),
            to_client(" MDTM\r\n"),
            to_client("211 End\r\n"),
        ]
    );
    assert_eq!(notes, Vec::<NoteKind>::new());
}

#[test]
fn only_the_last_line_of_a_multiline_passive_reply_is_rewritten() {
    let mut s = session();
    s.handle_client_bytes(b"PASV\r\n");
    s.handle_server_bytes(
        b"227-Some servers explain first\r\n227 Entering Passive Mode (127,0,0,1,4,51).\r\n",
    );
    let got = actions(&mut s);
    assert_eq!(got[1], to_client("227-Some servers explain first\r\n"));
    assert!(matches!(
        got[2],
        Action::OpenForward {
            request: DataPathRequest {
                target_port: 1075,
                ..
            },
            ..
        }
    ));
}

#[test]
fn input_split_byte_by_byte_gives_the_same_actions() {
    let script: &[u8] = b"220-hello\r\n220 ready\r\n227 Entering Passive Mode (10,1,2,3,4,5)\r\n";
    let mut whole = session();
    whole.handle_client_bytes(b"PASV\r\n");
    whole.handle_server_bytes(script);
    let expected = actions(&mut whole);

    let mut split = session();
    split.handle_client_bytes(b"PASV\r\n");
    for byte in script {
        split.handle_server_bytes(std::slice::from_ref(byte));
    }
    assert_eq!(actions(&mut split), expected);
}

#[test]
fn a_forward_answer_nobody_waits_for_is_ignored() {
    let mut s = session();
    s.handle_forward_opened(42, Ok(listening(1)));
    assert_eq!(actions(&mut s), vec![]);

    // A second answer for the current forward neither closes it nor opens anything.
    let (id, _) = passive(&mut s, "EPSV\r\n", "229 ok (|||40000|)\r\n");
    s.handle_forward_opened(id, Ok(listening(6000)));
    actions(&mut s);
    s.handle_forward_opened(id, Ok(listening(6001)));
    s.handle_forward_opened(id, Err(ForwardError::Failed("again".into())));
    assert_eq!(actions(&mut s), vec![]);
    s.handle_client_bytes(b"LIST\r\n");
    s.handle_server_bytes(b"150 go\r\n226 done\r\n");
    s.handle_data_finished(id, Ok(()));
    assert_eq!(
        actions(&mut s),
        vec![
            to_server("LIST\r\n"),
            to_client("150 go\r\n"),
            to_client("226 done\r\n"),
            Action::CloseForward { id }
        ]
    );
}

#[test]
fn a_command_with_a_nul_byte_is_refused_not_relayed() {
    let mut s = session();
    s.handle_client_bytes(b"PORT 203,0,113,50,0,25\0x\r\n");
    let replies = actions(&mut s);
    assert!(
        matches!(replies.as_slice(), [Action::ToClient(r)] if r.starts_with(b"500 ")),
        "{replies:?}"
    );
}

#[test]
fn in_active_mode_the_preliminary_reply_waits_for_the_data_connection() {
    let mut s = session();
    s.handle_client_bytes(b"EPRT |2|::|5000|\r\n");
    let id = match actions(&mut s).as_slice() {
        [
            Action::OpenForward {
                id,
                request:
                    DataPathRequest {
                        mode: DataMode::Active,
                        target_host,
                        target_port: 5000,
                        ..
                    },
            },
        ] => {
            assert_eq!(target_host, "127.0.0.1", "`::` means the client");
            *id
        }
        other => panic!("{other:?}"),
    };
    s.handle_forward_opened(id, Ok(SocketAddr::new(CLIENT, 33000)));
    s.handle_server_bytes(b"200 EPRT ok\r\n");
    s.handle_client_bytes(b"LIST\r\n");
    actions(&mut s);
    s.handle_server_bytes(b"150 Here comes the listing\r\n226 Done\r\n");
    assert!(
        actions(&mut s).is_empty(),
        "150 waits for the data connection"
    );
    s.handle_data_connected(id);
    assert_eq!(
        actions(&mut s),
        vec![to_client("150 Here comes the listing\r\n")]
    );
    s.handle_data_finished(id, Ok(()));
    assert_eq!(
        actions(&mut s),
        vec![to_client("226 Done\r\n"), Action::CloseForward { id }]
    );
}

#[test]
fn with_checks_on_every_command_waits_for_its_verdict_and_a_denial_never_reaches_the_server() {
    use ftp_tunnel_core::session::{CommandCheck, Verdict};
    let mut config = SessionConfig::new(CLIENT, "ftp.internal");
    config.check_commands = true;
    let mut s = Session::new(config);
    s.handle_client_bytes(b"USER alice\r\nPASS secret\r\nSTOR x\r\n");
    let first = actions(&mut s);
    let [Action::CheckCommand(CommandCheck { id, verb, argument })] = first.as_slice() else {
        panic!("one check at a time")
    };
    assert_eq!((verb.as_str(), argument.as_str()), ("USER", "alice"));
    s.handle_command_verdict(*id, Verdict::Allow);
    let got = actions(&mut s);
    assert_eq!(got[0], to_server("USER alice\r\n"));
    let Action::CheckCommand(pass) = &got[1] else {
        panic!("{got:?}")
    };
    assert_eq!(
        pass.argument, "***",
        "a password is never shown to the host"
    );
    s.handle_command_verdict(pass.id, Verdict::Allow);
    let got = actions(&mut s);
    let Action::CheckCommand(stor) = &got[1] else {
        panic!("{got:?}")
    };
    // A stale or unknown verdict changes nothing.
    s.handle_command_verdict(pass.id, Verdict::Allow);
    s.handle_command_verdict(999, Verdict::Allow);
    assert!(actions(&mut s).is_empty());
    s.handle_command_verdict(stor.id, Verdict::Deny("read-only\r\nINJECT".into()));
    let (got, notes) = drain(&mut s);
    assert_eq!(
        got,
        vec![to_client("550 denied by policy: read-onlyINJECT\r\n")]
    );
    assert_eq!(notes, vec![NoteKind::Denied]);
}

#[test]
fn pasv_never_gets_another_reply_code_for_an_ipv6_data_address() {
    let mut s = session();
    let (id, _) = passive(&mut s, "PASV\r\n", "227 ok (10,0,0,5,4,1)\r\n");
    s.handle_forward_opened(id, Ok("[::1]:5000".parse().unwrap()));
    let got = actions(&mut s);
    assert!(
        matches!(got.as_slice(), [Action::CloseForward { id: closed }, Action::ToClient(r)]
            if *closed == id && r.starts_with(b"522 ")),
        "{got:?}"
    );
}

#[test]
fn a_transfer_note_names_the_command_its_reply_and_its_data_path() {
    let mut s = session();
    let (id, _) = passive(&mut s, "EPSV\r\n", "229 ok (|||40000|)\r\n");
    s.handle_forward_opened(id, Ok(listening(6000)));
    s.handle_client_bytes(b"RETR big.bin\r\n");
    s.handle_server_bytes(b"150 go\r\n226 done\r\n");
    s.handle_data_finished(id, Ok(()));
    let notes: Vec<_> = s
        .drain_actions()
        .filter_map(|a| match a {
            Action::Note(note) if note.kind == NoteKind::Transfer => Some(note),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].original, "RETR big.bin");
    assert_eq!(notes[0].replacement, "226 done");
    assert_eq!(notes[0].forward, Some(id));
}
