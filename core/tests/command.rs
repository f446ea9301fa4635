//! Unit tests of command parsing, Telnet handling and reply sanitising.

use ftp_tunnel_core::command::{
    MAX_QUOTED_CHARS, has_control_bytes, parse_command, sanitize_for_reply, strip_telnet,
};

fn verb_arg(content: &[u8]) -> Option<(String, String)> {
    parse_command(content).map(|c| (c.verb, c.arg))
}

fn va(v: &str, a: &str) -> Option<(String, String)> {
    Some((v.to_owned(), a.to_owned()))
}

#[test]
fn verbs_and_arguments() {
    assert_eq!(verb_arg(b"PASV"), va("PASV", ""));
    assert_eq!(verb_arg(b"pasv "), va("PASV", ""));
    assert_eq!(verb_arg(b"Port 1,2,3,4,5,6"), va("PORT", "1,2,3,4,5,6"));
    assert_eq!(
        verb_arg(b"EPRT  |1|1.2.3.4|5| \t"),
        va("EPRT", "|1|1.2.3.4|5|")
    );
    assert_eq!(verb_arg(b"RETR my file.txt"), va("RETR", "my file.txt"));
    assert_eq!(verb_arg(b"CWD /"), va("CWD", "/"));
    assert_eq!(verb_arg(b"RETR caf\xe9"), va("RETR", "caf\u{fffd}"));
}

#[test]
fn unrecognised_lines() {
    for l in [
        &b""[..],
        b" ",
        b"   PASV",
        b"PA",
        b"PASVX",
        b"P4SV",
        b"PASV\tx",
        b"\xc3\xa9tat x",
        b"PASV\0",
        b"PORT 1,2,3,4\x00,5,6",
        b"NOOP\rx",
        b"\xff\xff",
    ] {
        assert!(parse_command(l).is_none(), "{l:?}");
    }
}

#[test]
fn telnet_sequences() {
    // IP, DM, then ABOR (vector C12).
    assert_eq!(verb_arg(b"\xff\xf4\xff\xf2ABOR"), va("ABOR", ""));
    // DM delivered out of band: "IAC IP IAC" left in the stream before the verb.
    assert_eq!(verb_arg(b"\xff\xf4\xffABOR"), va("ABOR", ""));
    // Option negotiation and subnegotiation are dropped.
    assert_eq!(
        verb_arg(b"\xff\xfb\x01NO\xff\xfa\x18\x01xterm\xff\xf0OP"),
        va("NOOP", "")
    );
    // IAC IAC is one literal 0xFF (a file name byte).
    assert_eq!(strip_telnet(b"a\xff\xffb"), b"a\xffb");
    assert_eq!(strip_telnet(b"a\xff"), b"a");
    assert_eq!(strip_telnet(b"\xff\xfa\x18 never ends"), b"");
    assert_eq!(strip_telnet(b"\xff\xfb"), b"");
}

#[test]
fn control_bytes() {
    assert!(has_control_bytes(b"a\rb"));
    assert!(has_control_bytes(b"a\nb"));
    assert!(has_control_bytes(b"a\0b"));
    assert!(!has_control_bytes(b"a\tb\xff"));
}

#[test]
fn sanitize() {
    assert_eq!(
        sanitize_for_reply(b"ab\r\n500 x\0\x1b[1m\x7f"),
        "ab500 x[1m"
    );
    assert_eq!(sanitize_for_reply(b"caf\xe9"), "caf\u{fffd}");
    assert_eq!(sanitize_for_reply("\u{85}x".as_bytes()), "x");
    let long = vec![b'a'; 10_000];
    assert_eq!(sanitize_for_reply(&long).chars().count(), MAX_QUOTED_CHARS);
    let s = sanitize_for_reply(&[0xff; 500]);
    assert!(!has_control_bytes(s.as_bytes()));
}
