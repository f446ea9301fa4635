//! Unit tests of the reply structure tracker.

use ftp_tunnel_core::reply::{ReplyLine, ReplyTracker, reply_text};

#[test]
fn single_line_replies() {
    let mut t = ReplyTracker::new();
    assert_eq!(t.classify(b"220 Ready"), ReplyLine::Final { code: 220 });
    assert_eq!(t.classify(b"200"), ReplyLine::Final { code: 200 });
    assert_eq!(t.classify(b"631 protected"), ReplyLine::Final { code: 631 });
    assert_eq!(t.classify(b"999 no"), ReplyLine::Unrecognized);
    assert_eq!(t.classify(b"099 no"), ReplyLine::Unrecognized);
    assert_eq!(t.classify(b"22 short"), ReplyLine::Unrecognized);
    assert_eq!(t.classify(b""), ReplyLine::Unrecognized);
    assert_eq!(t.classify(b"2200 x"), ReplyLine::Unrecognized);
    assert_eq!(t.open_code(), None);
}

#[test]
fn multi_line_needs_same_code_and_space() {
    let mut t = ReplyTracker::new();
    assert_eq!(t.classify(b"211-Features:"), ReplyLine::Start { code: 211 });
    assert_eq!(t.open_code(), Some(211));
    for l in [
        &b" EPSV"[..],
        b"211-more",
        b"200 other code",
        b"211",
        b"211\tx",
        b"",
    ] {
        assert_eq!(t.classify(l), ReplyLine::Continuation, "{l:?}");
    }
    assert_eq!(t.classify(b"211 End"), ReplyLine::Final { code: 211 });
    assert_eq!(t.open_code(), None);
    assert_eq!(t.classify(b"211"), ReplyLine::Final { code: 211 });
}

#[test]
fn non_ascii_and_binary_never_panic() {
    let mut t = ReplyTracker::new();
    for l in [
        &b"\xff\xfe\xfd"[..],
        b"\x00\x00\x00 ",
        b"2",
        b"22",
        "２２０ x".as_bytes(),
    ] {
        assert_eq!(t.classify(l), ReplyLine::Unrecognized);
        let _ = reply_text(l);
    }
}

#[test]
fn text_after_code() {
    assert_eq!(reply_text(b"227 Entering (1,2)"), "Entering (1,2)");
    assert_eq!(reply_text(b"227-Hello"), "Hello");
    assert_eq!(reply_text(b"227"), "");
    assert_eq!(reply_text(b" EPSV"), " EPSV");
    assert_eq!(reply_text(b"220\tx"), "220\tx");
    assert_eq!(reply_text(b"220 caf\xe9"), "caf\u{fffd}");
}
