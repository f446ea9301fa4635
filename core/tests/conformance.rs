//! Checks every vector of `tests/data/ftp-control-vectors.toml` against the parsers.
//!
//! Covered here: every [[reply]], [[command]] and [[multiline]] vector, and [[framing]]
//! F1..F5 (one test each). Not covered here: [[epsv_all]] EA1, which is session state and
//! belongs to the session tests. A vector id or `expect` shape this file does not know
//! fails the test rather than being skipped.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ftp_tunnel_core::command::{has_control_bytes, parse_command};
use ftp_tunnel_core::endpoint::{
    EndpointError, PassiveTarget, parse_eprt_arg, parse_lprt_arg, parse_passive_reply,
    parse_port_arg,
};
use ftp_tunnel_core::framing::{Line, LineFramer};
use ftp_tunnel_core::reply::{ReplyLine, ReplyTracker, reply_text};
use toml::Value;

mod common;
use common::frame_pieces;

/// Framing ids with a test below.
const FRAMING_COVERED: &[&str] = &["F1", "F2", "F3", "F4", "F5"];
/// Ids whose check lives in the session's tests, not here.
const EPSV_ALL_ELSEWHERE: &[&str] = &["EA1"];
const KNOWN_TABLES: &[&str] = &["reply", "command", "multiline", "framing", "epsv_all"];

fn vectors() -> toml::Table {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ftp-control-vectors.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let table: toml::Table = toml::from_str(&text).expect("vectors file is valid TOML");
    for key in table.keys() {
        assert!(
            KNOWN_TABLES.contains(&key.as_str()),
            "unknown table [[{key}]]"
        );
    }
    table
}

fn entries<'a>(t: &'a toml::Table, name: &str) -> &'a [Value] {
    t.get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("missing [[{name}]]"))
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("vector {v:?} lacks string field {key}"))
}

fn id(v: &Value) -> &str {
    field(v, "id")
}

/// The vector's bytes: with `raw = true` each char U+0000..=U+00FF is one byte.
fn text_bytes(v: &Value) -> Vec<u8> {
    let text = field(v, "text");
    if v.get("raw").and_then(Value::as_bool) == Some(true) {
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).expect("raw text char above U+00FF"))
            .collect()
    } else {
        text.as_bytes().to_vec()
    }
}

#[derive(Debug)]
enum Expect {
    Endpoint(SocketAddr),
    PortOnly(u16),
    ControlPeer(u16),
    Reject,
    Passthrough,
    Text(String),
}

fn expect(v: &Value) -> Expect {
    let id = id(v);
    let e = v.get("expect").unwrap_or_else(|| panic!("{id}: no expect"));
    if let Some(s) = e.as_str() {
        return match s {
            "reject" => Expect::Reject,
            "passthrough" => Expect::Passthrough,
            other => Expect::Text(other.to_owned()),
        };
    }
    let t = e
        .as_table()
        .unwrap_or_else(|| panic!("{id}: unknown expect shape {e:?}"));
    let port = t
        .get("port")
        .and_then(Value::as_integer)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("{id}: expect without a valid port"));
    let keys: BTreeSet<&str> = t.keys().map(String::as_str).collect();
    match keys.into_iter().collect::<Vec<_>>().as_slice() {
        ["port"] => Expect::PortOnly(port),
        ["host", "port"] => {
            let host: IpAddr = t["host"].as_str().and_then(|h| h.parse().ok()).unwrap();
            Expect::Endpoint(SocketAddr::new(host, port))
        }
        ["port", "use_control_peer"] if t["use_control_peer"].as_bool() == Some(true) => {
            Expect::ControlPeer(port)
        }
        other => panic!("{id}: unknown expect keys {other:?}"),
    }
}

/// Frames `bytes` + CRLF and returns the single line, checking it relays byte-exactly.
fn frame_one(bytes: &[u8]) -> Line {
    let mut raw = bytes.to_vec();
    raw.extend_from_slice(b"\r\n");
    let mut f = LineFramer::new(LineFramer::DEFAULT_MAX_LINE);
    f.push(&raw);
    let line = f.next_line().expect("one line");
    assert_eq!(line.raw, raw);
    assert!(!line.overlong);
    assert!(f.next_line().is_none());
    line
}

fn check_passive(id: &str, result: Result<PassiveTarget, EndpointError>, exp: &Expect) {
    match (exp, result) {
        (Expect::Endpoint(want), Ok(PassiveTarget::Address(got))) => {
            assert_eq!(got, *want, "{id}")
        }
        (Expect::PortOnly(want), Ok(PassiveTarget::PortOnly(got))) => {
            assert_eq!(got, *want, "{id}")
        }
        (Expect::ControlPeer(want), Ok(PassiveTarget::ControlPeer(got))) => {
            assert_eq!(got, *want, "{id}")
        }
        (Expect::Reject, Err(_)) => {}
        (exp, got) => panic!("{id}: expected {exp:?}, got {got:?}"),
    }
}

#[test]
fn reply_vectors() {
    let t = vectors();
    for v in entries(&t, "reply") {
        let id = id(v);
        let exp = expect(v);
        let line = frame_one(&text_bytes(v));
        let mut tracker = ReplyTracker::new();
        let ReplyLine::Final { code } = tracker.classify(line.content()) else {
            panic!("{id}: not a single-line reply");
        };
        let text = reply_text(line.content());
        check_passive(id, parse_passive_reply(code, &text), &exp);
        // The parsers also take the whole line, code included.
        let whole = String::from_utf8(line.content().to_vec()).unwrap();
        check_passive(id, parse_passive_reply(code, &whole), &exp);
    }
}

#[test]
fn command_vectors() {
    let t = vectors();
    for v in entries(&t, "command") {
        let id = id(v);
        let exp = expect(v);
        let bytes = text_bytes(v);
        let line = frame_one(&bytes);
        let cmd = parse_command(line.content());
        if let Expect::Passthrough = exp {
            let cmd = cmd.unwrap_or_else(|| panic!("{id}: not recognised"));
            assert!(
                !matches!(cmd.verb.as_str(), "PORT" | "EPRT" | "LPRT"),
                "{id}: a data-channel command"
            );
            if id == "C12" {
                assert_eq!(cmd.verb, "ABOR", "{id}");
            }
            continue;
        }
        let cmd = cmd.unwrap_or_else(|| panic!("{id}: not recognised"));
        let result = match cmd.verb.as_str() {
            "PORT" => parse_port_arg(&cmd.arg).map(SocketAddr::V4),
            "EPRT" => parse_eprt_arg(&cmd.arg),
            "LPRT" => parse_lprt_arg(&cmd.arg),
            other => panic!("{id}: unexpected verb {other}"),
        };
        match (&exp, result) {
            (Expect::Endpoint(want), Ok(got)) => assert_eq!(got, *want, "{id}"),
            (Expect::Reject, Err(e)) => {
                let action = v.get("action").and_then(Value::as_str).unwrap_or("");
                if action.contains("522") {
                    assert!(
                        matches!(e, EndpointError::UnsupportedProtocol(_)),
                        "{id}: {e:?}"
                    );
                }
            }
            (exp, got) => panic!("{id}: expected {exp:?}, got {got:?}"),
        }
    }
}

#[test]
fn multiline_vectors() {
    let t = vectors();
    for v in entries(&t, "multiline") {
        let id = id(v);
        let lines: Vec<&str> = v["lines"]
            .as_array()
            .unwrap_or_else(|| panic!("{id}: no lines"))
            .iter()
            .map(|l| l.as_str().expect("line is a string"))
            .collect();
        let mut tracker = ReplyTracker::new();
        let kinds: Vec<ReplyLine> = lines
            .iter()
            .map(|l| tracker.classify(frame_one(l.as_bytes()).content()))
            .collect();
        let (last, inner) = kinds.split_last().expect("lines");
        let ReplyLine::Final { code } = *last else {
            panic!("{id}: last line is {last:?}");
        };
        assert_eq!(inner.first(), Some(&ReplyLine::Start { code }), "{id}");
        for k in &inner[1..] {
            assert_eq!(*k, ReplyLine::Continuation, "{id}");
        }
        match expect(v) {
            Expect::Text(s) => {
                let want = format!("one reply, code {code}, ending at the last line");
                assert_eq!(s, want, "{id}: unknown multiline expectation");
            }
            exp @ (Expect::Endpoint(_) | Expect::PortOnly(_) | Expect::ControlPeer(_)) => {
                // Only the final line carries the address.
                let last_text = reply_text(lines.last().unwrap().as_bytes());
                check_passive(id, parse_passive_reply(code, &last_text), &exp);
            }
            other => panic!("{id}: unknown multiline expectation {other:?}"),
        }
    }
}

#[test]
fn framing_and_epsv_ids_are_all_known() {
    let t = vectors();
    for v in entries(&t, "framing") {
        assert!(
            FRAMING_COVERED.contains(&id(v)),
            "framing {} has no test",
            id(v)
        );
    }
    for v in entries(&t, "epsv_all") {
        assert!(
            EPSV_ALL_ELSEWHERE.contains(&id(v)),
            "epsv_all {} unhandled",
            id(v)
        );
    }
}

const MULTI: &[u8] = b"230-Welcome\r\n230-More\n 230 x\r\n230 Done\r\n227 Entering Passive Mode (127,0,0,1,4,51).\r\n";

#[test]
fn f1_byte_by_byte_equals_one_read() {
    let whole = frame_pieces([MULTI], 8192).0;
    let split = frame_pieces(MULTI.chunks(1), 8192).0;
    assert_eq!(whole, split);
    assert_eq!(whole.len(), 5);
    let mut tracker = ReplyTracker::new();
    let kinds: Vec<_> = split
        .iter()
        .map(|l| tracker.classify(l.content()))
        .collect();
    assert_eq!(
        kinds,
        [
            ReplyLine::Start { code: 230 },
            ReplyLine::Continuation,
            ReplyLine::Continuation,
            ReplyLine::Final { code: 230 },
            ReplyLine::Final { code: 227 },
        ]
    );
    let text = reply_text(split[4].content());
    let target = parse_passive_reply(227, &text).unwrap();
    assert_eq!(
        target,
        PassiveTarget::Address("127.0.0.1:1075".parse().unwrap())
    );
}

#[test]
fn f2_bare_lf_accepted() {
    let input = b"220 Hi\n227 Entering Passive Mode (10,0,0,7,195,80)\nPORT 10,1,60,99,6,12\n";
    let lines = frame_pieces([&input[..]], 8192).0;
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].raw, b"220 Hi\n");
    assert_eq!(lines[0].content(), b"220 Hi");
    let target = parse_passive_reply(227, &reply_text(lines[1].content())).unwrap();
    assert_eq!(
        target,
        PassiveTarget::Address("10.0.0.7:50000".parse().unwrap())
    );
    let cmd = parse_command(lines[2].content()).unwrap();
    assert_eq!(parse_port_arg(&cmd.arg).unwrap().port(), 1548);
}

#[test]
fn f3_nul_relayed_not_interpreted() {
    for text in [
        &b"PORT 10,1,60,99\x006,12"[..],
        b"PORT 10,1,60,99,6,12\x00",
        b"227 Entering Passive Mode (10,1,60,99,6,12)\x00",
        b"229 Entering Extended Passive Mode (|||6446|)\x00x",
    ] {
        let line = frame_one(text);
        assert_eq!(line.content(), text);
        assert!(has_control_bytes(line.content()));
        assert!(parse_command(line.content()).is_none());
        let code: u16 = std::str::from_utf8(&text[..3])
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(227);
        let reply = String::from_utf8_lossy(line.content());
        assert!(parse_passive_reply(code, &reply).is_err());
    }
}

#[test]
fn f4_overlong_line_bounded() {
    let cap = LineFramer::DEFAULT_MAX_LINE;
    let mut input = b"227 Entering Passive Mode (10,1,60,99,6,12) ".to_vec();
    input.resize(64 * 1024, b'x');
    input.extend_from_slice(b"\r\n220 next\r\n");
    let mut f = LineFramer::new(cap);
    let mut lines = Vec::new();
    for piece in input.chunks(1000) {
        f.push(piece);
        assert!(f.pending() <= cap + piece.len());
        while let Some(l) = f.next_line() {
            assert!(l.raw.len() <= cap);
            lines.push(l);
        }
        assert!(f.pending() < cap);
    }
    let (last, long) = lines.split_last().unwrap();
    assert_eq!(last.raw, b"220 next\r\n");
    assert!(!last.overlong);
    assert!(long.len() > 1 && long.iter().all(|l| l.overlong));
    let relayed: Vec<u8> = lines.iter().flat_map(|l| l.raw.clone()).collect();
    assert_eq!(relayed, input);
}

#[test]
fn f5_lookalikes_never_end_a_multiline_reply() {
    let mut tracker = ReplyTracker::new();
    assert_eq!(
        tracker.classify(b"220-Hello"),
        ReplyLine::Start { code: 220 }
    );
    for l in [
        &b"2x0 Ready"[..],
        b"+20 Ready",
        b" 220 Ready",
        b"220\tReady",
        b"220",
        b"221 Ready",
    ] {
        assert_eq!(tracker.classify(l), ReplyLine::Continuation, "{l:?}");
    }
    assert_eq!(
        tracker.classify(b"220 Ready"),
        ReplyLine::Final { code: 220 }
    );
    // Outside a reply they are garbage, not replies.
    for l in [
        &b"2x0 Ready"[..],
        b"+20 Ready",
        b" 220 Ready",
        b"220\tReady",
    ] {
        assert_eq!(tracker.classify(l), ReplyLine::Unrecognized, "{l:?}");
    }
}
