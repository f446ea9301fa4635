//! Unit tests of the line framer, including a randomised split test.

mod common;

use common::{Rng, check_bound, frame_pieces};
use ftp_tunnel_core::framing::{Line, LineFramer};

#[test]
fn content_strips_only_the_terminator() {
    let cases: [(&[u8], &[u8]); 6] = [
        (b"220 x\r\n", b"220 x"),
        (b"220 x\n", b"220 x"),
        (b"220 x\r\r\n", b"220 x\r"),
        (b"\n", b""),
        (b"\r\n", b""),
        (b"abc", b"abc"),
    ];
    for (raw, content) in cases {
        let l = Line {
            raw: raw.to_vec(),
            overlong: false,
        };
        assert_eq!(l.content(), content, "{raw:?}");
    }
}

#[test]
fn partial_line_waits() {
    let mut f = LineFramer::new(64);
    f.push(b"220 Hel");
    assert!(f.next_line().is_none());
    assert_eq!(f.pending(), 7);
    f.push(b"lo\r");
    assert!(f.next_line().is_none());
    f.push(b"\n331");
    let l = f.next_line().unwrap();
    assert_eq!(l.raw, b"220 Hello\r\n");
    assert!(!l.overlong && l.is_terminated());
    assert!(f.next_line().is_none());
    assert_eq!(f.pending(), 3);
    assert_eq!(f.take_pending(), b"331");
    assert_eq!(f.pending(), 0);
}

#[test]
fn line_of_exactly_the_cap_is_normal() {
    let (lines, pending) = frame_pieces([&b"1234567\n12345678\n"[..]], 8);
    assert_eq!(pending, 0);
    assert_eq!(
        lines[0],
        Line {
            raw: b"1234567\n".to_vec(),
            overlong: false
        }
    );
    // 9 bytes with its LF: one chunk of 8, then the LF alone, both overlong.
    assert_eq!(
        lines[1],
        Line {
            raw: b"12345678".to_vec(),
            overlong: true
        }
    );
    assert_eq!(
        lines[2],
        Line {
            raw: b"\n".to_vec(),
            overlong: true
        }
    );
    assert_eq!(lines.len(), 3);
}

#[test]
fn overlong_state_ends_with_its_line() {
    let mut f = LineFramer::new(4);
    f.push(b"abcdefghij");
    assert_eq!(f.next_line().unwrap().raw, b"abcd");
    assert_eq!(f.next_line().unwrap().raw, b"efgh");
    assert!(f.in_overlong_line());
    assert!(f.next_line().is_none());
    assert_eq!(f.pending(), 2);
    f.push(b"\r\nok\n");
    let tail = f.next_line().unwrap();
    assert_eq!(
        tail,
        Line {
            raw: b"ij\r\n".to_vec(),
            overlong: true
        }
    );
    assert_eq!(tail.content(), b"ij");
    assert_eq!(
        f.next_line().unwrap(),
        Line {
            raw: b"ok\n".to_vec(),
            overlong: false
        }
    );
    assert!(!f.in_overlong_line());
}

#[test]
fn tiny_cap_is_raised_and_never_loops() {
    let (lines, _) = frame_pieces([&b"abc\n"[..]], 0);
    let joined: Vec<u8> = lines.iter().flat_map(|l| l.raw.clone()).collect();
    assert_eq!(joined, b"abc\n");
    assert!(lines.iter().all(|l| !l.raw.is_empty() && l.raw.len() <= 2));
}

#[test]
fn binary_bytes_relay_exactly() {
    let input: Vec<u8> = (0..=255u8).chain(b"\n".iter().copied()).collect();
    let (lines, pending) = frame_pieces([&input[..]], 1024);
    assert_eq!(pending, 0);
    let joined: Vec<u8> = lines.iter().flat_map(|l| l.raw.clone()).collect();
    assert_eq!(joined, input);
}

#[test]
fn random_splits_give_the_same_lines() {
    let mut input = Vec::new();
    input.extend_from_slice(b"220-Welcome\r\n220-\xff\xf4 odd\n220 Ready\r\n");
    input.extend_from_slice(b"227 Entering Passive Mode (127,0,0,1,4,51).\r\n");
    input.extend_from_slice(&[b'x'; 100]);
    input.extend_from_slice(b"\r\n\r\n\n229 (|||1|)\r\npartial");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for cap in [8usize, 16, 64, 8192] {
        let (want, want_pending) = frame_pieces([&input[..]], cap);
        let joined: Vec<u8> = want.iter().flat_map(|l| l.raw.clone()).collect();
        assert_eq!(joined, input[..input.len() - want_pending]);
        for _ in 0..500 {
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(40));
                let (a, b) = rest.split_at(n);
                pieces.push(a);
                rest = b;
            }
            let (got, pending) = frame_pieces(pieces.iter().copied(), cap);
            assert_eq!(got, want, "cap {cap}");
            assert_eq!(pending, want_pending);
        }
    }
}

#[test]
fn a_big_push_is_given_back_as_its_lines_are_taken() {
    let cap = LineFramer::DEFAULT_MAX_LINE;
    let mut big = Vec::new();
    while big.len() < 1 << 20 {
        big.extend_from_slice(b"200 a reply line of some length\r\n");
    }
    let mut f = LineFramer::new(cap);
    f.push(b"partial");
    f.push(&big);
    assert!(
        f.allocated() <= cap + big.len(),
        "no doubling: {}",
        f.allocated()
    );
    let mut taken = 0;
    while let Some(line) = f.next_line() {
        taken += line.raw.len();
        check_bound(&f);
    }
    assert_eq!(taken + f.pending(), big.len() + 7);
    assert!(f.allocated() <= cap, "{} still held", f.allocated());
}

#[test]
fn untaken_lines_are_held_within_twice_their_size() {
    let mut f = LineFramer::new(512);
    let mut rng = Rng(7);
    let mut pushed = 0;
    for _ in 0..2_000 {
        let chunk = vec![b'a' + (rng.below(26) as u8); 1 + rng.below(300)];
        pushed += chunk.len();
        f.push(&chunk);
        check_bound(&f);
        if rng.below(50) == 0 {
            f.push(b"\n");
            pushed += 1;
            // Take a few lines now and then, as a session would when the host answers.
            for _ in 0..rng.below(20) {
                let _ = f.next_line();
                check_bound(&f);
            }
        }
    }
    assert!(f.pending() <= pushed);
    f.take_pending();
    assert_eq!(f.pending(), 0);
    check_bound(&f);
    assert!(f.allocated() <= 512);
}
