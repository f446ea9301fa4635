//! Random and mutated input through every parser: no panics, and accepted values in range.

mod common;

use std::net::SocketAddr;

use common::Rng;
use ftp_tunnel_core::command::{parse_command, sanitize_for_reply};
use ftp_tunnel_core::endpoint::{
    PassiveTarget, parse_227, parse_228, parse_229, parse_eprt_arg, parse_lprt_arg, parse_port_arg,
};
use ftp_tunnel_core::framing::LineFramer;
use ftp_tunnel_core::reply::{ReplyTracker, reply_text};

const SEEDS: &[&str] = &[
    "227 Entering Passive Mode (10,1,2,3,4,5).",
    "229 Entering Extended Passive Mode (|||6446|)",
    "229 (|1|192.0.2.1|5000|)",
    "228 Entering Long Passive Mode (6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,19,137)",
    "1,2,3,4,5,6",
    "|2|::1|49706|",
    "4,4,10,1,2,3,2,19,136",
];
const ALPHABET: &[u8] = b"0123456789,|()!.-+ :abf\xff\r\n\x002";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(v.len() + 1);
        let byte = ALPHABET[rng.below(ALPHABET.len())];
        match rng.below(3) {
            0 if pos < v.len() => v[pos] = byte,
            1 if pos < v.len() => {
                v.remove(pos);
            }
            _ => v.insert(pos, byte),
        }
    }
    v
}

fn check_addr(a: SocketAddr) {
    assert_ne!(a.port(), 0);
}

#[test]
fn mutated_inputs_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    for _ in 0..20_000 {
        let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
        let bytes = mutate(&mut rng, seed);
        let text = String::from_utf8_lossy(&bytes);
        for r in [parse_227(&text), parse_228(&text), parse_229(&text)] {
            match r {
                Ok(PassiveTarget::Address(a)) => check_addr(a),
                Ok(PassiveTarget::PortOnly(p) | PassiveTarget::ControlPeer(p)) => assert_ne!(p, 0),
                Err(_) => {}
            }
        }
        if let Ok(a) = parse_port_arg(&text) {
            check_addr(a.into());
        }
        for a in [parse_eprt_arg(&text), parse_lprt_arg(&text)]
            .into_iter()
            .flatten()
        {
            check_addr(a);
        }
        let _ = parse_command(&bytes);
        let _ = reply_text(&bytes);
        let _ = ReplyTracker::new().classify(&bytes);
        assert!(!sanitize_for_reply(&bytes).contains(['\r', '\n', '\0']));
    }
}

#[test]
fn random_bytes_through_framer_and_tracker() {
    let mut rng = Rng(42);
    let mut framer = LineFramer::new(64);
    let mut tracker = ReplyTracker::new();
    let mut total_in = 0;
    let mut total_out = 0;
    for _ in 0..5_000 {
        let chunk: Vec<u8> = (0..rng.below(100)).map(|_| rng.next() as u8).collect();
        total_in += chunk.len();
        framer.push(&chunk);
        while let Some(line) = framer.next_line() {
            assert!(line.raw.len() <= 64);
            total_out += line.raw.len();
            if !line.overlong {
                let _ = tracker.classify(line.content());
                let _ = parse_command(line.content());
            }
        }
        assert!(framer.pending() < 64);
    }
    assert_eq!(total_in, total_out + framer.pending());
}
