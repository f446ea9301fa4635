//! Properties of the endpoint codecs and the line framer over arbitrary input, shared by
//! the `endpoint` and `framing` fuzz targets and the stable-Rust tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use ftp_tunnel_core::endpoint::{
    PassiveTarget, format_227, format_228, format_229, format_eprt, format_lprt, format_port,
    parse_227, parse_228, parse_229, parse_eprt_arg, parse_lprt_arg, parse_port_arg,
};
use ftp_tunnel_core::framing::{Line, LineFramer};

use super::{Rng, check_bound, frame_pieces};

/// The argument of a formatted command line (`PORT 1,2,3,4,5,6\r\n` → `1,2,3,4,5,6`).
fn argument(line: &str) -> &str {
    let line = line
        .strip_suffix("\r\n")
        .expect("formatted lines end in CRLF");
    assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
    line.split_once(' ').expect("verb and argument").1
}

fn reply(line: &str) -> &str {
    let line = line
        .strip_suffix("\r\n")
        .expect("formatted lines end in CRLF");
    assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
    line
}

/// Every codec: whatever parses, formatted and parsed again, gives the same value.
pub fn check_endpoint_roundtrip(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(a) = parse_port_arg(&text) {
        assert_eq!(parse_port_arg(argument(&format_port(a))), Ok(a), "{text:?}");
    }
    if let Ok(a) = parse_eprt_arg(&text) {
        assert_eq!(parse_eprt_arg(argument(&format_eprt(a))), Ok(a), "{text:?}");
    }
    if let Ok(a) = parse_lprt_arg(&text) {
        assert_eq!(parse_lprt_arg(argument(&format_lprt(a))), Ok(a), "{text:?}");
    }
    match parse_227(&text) {
        Ok(PassiveTarget::Address(SocketAddr::V4(a))) => {
            let again = parse_227(reply(&format_227(a)));
            assert_eq!(again, Ok(PassiveTarget::Address(a.into())), "{text:?}");
        }
        Ok(PassiveTarget::ControlPeer(port)) => {
            let again = parse_227(reply(&format_227(SocketAddrV4::new(
                Ipv4Addr::UNSPECIFIED,
                port,
            ))));
            assert_eq!(again, Ok(PassiveTarget::ControlPeer(port)), "{text:?}");
        }
        Ok(other) => panic!("227 gave {other:?} for {text:?}"),
        Err(_) => {}
    }
    if let Ok(target) = parse_228(&text) {
        let PassiveTarget::Address(a) = target else {
            panic!("228 gave {target:?} for {text:?}")
        };
        assert_eq!(parse_228(reply(&format_228(a))), Ok(target), "{text:?}");
    }
    // A 229 names a port (the CEPR form an address too): the port is what survives.
    if let Ok(target) = parse_229(&text) {
        let port = match target {
            PassiveTarget::PortOnly(port) => port,
            PassiveTarget::Address(a) => a.port(),
            PassiveTarget::ControlPeer(_) => panic!("229 gave {target:?} for {text:?}"),
        };
        let again = parse_229(reply(&format_229(port)));
        assert_eq!(again, Ok(PassiveTarget::PortOnly(port)), "{text:?}");
    }
    check_formatted_values(input);
}

/// Values built from the bytes: formatted, then parsed, they come back unchanged.
fn check_formatted_values(input: &[u8]) {
    let mut bytes = [0u8; 18];
    for (dst, src) in bytes.iter_mut().zip(input.iter().rev()) {
        *dst = *src;
    }
    let port = u16::from_be_bytes([bytes[16], bytes[17]]).max(1);
    let v4 = SocketAddrV4::new(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]), port);
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[..16]);
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port);
    assert_eq!(parse_port_arg(argument(&format_port(v4))), Ok(v4));
    for a in [SocketAddr::V4(v4), v6] {
        assert_eq!(parse_eprt_arg(argument(&format_eprt(a))), Ok(a));
        assert_eq!(parse_lprt_arg(argument(&format_lprt(a))), Ok(a));
        assert_eq!(
            parse_228(reply(&format_228(a))),
            Ok(PassiveTarget::Address(a))
        );
    }
    if !v4.ip().is_unspecified() {
        assert_eq!(
            parse_227(reply(&format_227(v4))),
            Ok(PassiveTarget::Address(v4.into()))
        );
    }
    assert_eq!(
        parse_229(reply(&format_229(port))),
        Ok(PassiveTarget::PortOnly(port))
    );
}

/// Byte 0 picks the cap and byte 1 seeds the split points; the rest is the stream. Pushed
/// whole, byte by byte, or in random pieces, it gives the same lines, each within the cap,
/// together exactly the stream, and the framer stays within its memory bound throughout.
pub fn check_chunking(input: &[u8]) {
    let [cap, seed, stream @ ..] = input else {
        return;
    };
    let cap = 2 + usize::from(*cap) % 96;
    let (want, want_pending) = frame_pieces([stream], cap);
    let joined: Vec<u8> = want.iter().flat_map(|l| l.raw.iter().copied()).collect();
    assert_eq!(joined, stream[..stream.len() - want_pending]);
    for line in &want {
        assert!(!line.raw.is_empty() && line.raw.len() <= cap);
        assert!(line.overlong || line.raw.ends_with(b"\n"));
        assert!(!line.raw[..line.raw.len() - 1].contains(&b'\n'));
    }
    let (bytewise, pending) = frame_pieces(stream.chunks(1), cap);
    assert_eq!((bytewise, pending), (want.clone(), want_pending));
    let mut rng = Rng(u64::from(*seed) << 32 | stream.len() as u64 | 1);
    let mut pieces = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let (a, b) = rest.split_at(1 + rng.below(rest.len().min(3 * cap)));
        pieces.push(a);
        rest = b;
    }
    let (random, pending) = frame_pieces(pieces, cap);
    assert_eq!((random, pending), (want.clone(), want_pending));
    check_lazy_consumer(stream, cap, &want);
}

/// A consumer that sometimes leaves lines untaken (as a waiting session does) still gets the
/// same lines, and the framer's bound holds meanwhile.
fn check_lazy_consumer(stream: &[u8], cap: usize, want: &[Line]) {
    let mut framer = LineFramer::new(cap);
    let mut got = Vec::new();
    for (i, piece) in stream.chunks(cap / 2 + 1).enumerate() {
        framer.push(piece);
        check_bound(&framer);
        if i % 3 == 2 {
            while let Some(line) = framer.next_line() {
                check_bound(&framer);
                got.push(line);
            }
        }
    }
    while let Some(line) = framer.next_line() {
        check_bound(&framer);
        got.push(line);
    }
    assert_eq!(got, want);
}
