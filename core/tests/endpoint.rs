//! Unit tests of the endpoint codecs: round trips, ranges, overflow, odd prose.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use ftp_tunnel_core::endpoint::{
    EndpointError, PassiveTarget, format_227, format_228, format_229, format_eprt, format_lprt,
    format_port, parse_227, parse_228, parse_229, parse_eprt_arg, parse_lprt_arg,
    parse_passive_reply, parse_port_arg,
};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn strip_crlf(s: &str) -> &str {
    s.strip_suffix("\r\n").expect("generated lines end in CRLF")
}

fn cmd_arg<'a>(line: &'a str, verb: &str) -> &'a str {
    strip_crlf(line).strip_prefix(verb).unwrap().trim_start()
}

const V4: &[&str] = &[
    "1.2.3.4:1",
    "255.255.255.255:65535",
    "10.1.60.99:1548",
    "0.0.0.1:256",
];
const V6: &[&str] = &[
    "[::1]:1",
    "[fe80::260:b0ff:fec1:7b2f]:50932",
    "[::ffff:1.2.3.4]:65535",
];

#[test]
fn round_trip_227_and_port() {
    for s in V4 {
        let SocketAddr::V4(a) = sa(s) else {
            unreachable!()
        };
        let line = format_227(a);
        assert!(line.starts_with("227 Entering Passive Mode ("), "{line}");
        assert!(line.ends_with(").\r\n"));
        assert_eq!(
            parse_227(strip_crlf(&line)),
            Ok(PassiveTarget::Address(a.into()))
        );
        assert_eq!(
            parse_passive_reply(227, &line[4..line.len() - 2]),
            Ok(PassiveTarget::Address(a.into()))
        );
        assert_eq!(parse_port_arg(cmd_arg(&format_port(a), "PORT")), Ok(a));
    }
    assert_eq!(
        format_port("1.2.3.4:258".parse().unwrap()),
        "PORT 1,2,3,4,1,2\r\n"
    );
}

#[test]
fn round_trip_229() {
    for port in [1, 21, 6446, 65535] {
        let line = format_229(port);
        assert_eq!(
            line,
            format!("229 Entering Extended Passive Mode (|||{port}|)\r\n")
        );
        assert_eq!(
            parse_229(strip_crlf(&line)),
            Ok(PassiveTarget::PortOnly(port))
        );
    }
}

#[test]
fn round_trip_228_lprt_eprt() {
    for s in V4.iter().chain(V6) {
        let a = sa(s);
        assert_eq!(
            parse_228(strip_crlf(&format_228(a))),
            Ok(PassiveTarget::Address(a)),
            "{s}"
        );
        assert_eq!(
            parse_lprt_arg(cmd_arg(&format_lprt(a), "LPRT")),
            Ok(a),
            "{s}"
        );
        assert_eq!(
            parse_eprt_arg(cmd_arg(&format_eprt(a), "EPRT")),
            Ok(a),
            "{s}"
        );
    }
    assert_eq!(format_eprt(sa("1.2.3.4:5")), "EPRT |1|1.2.3.4|5|\r\n");
    assert_eq!(format_eprt(sa("[::1]:5")), "EPRT |2|::1|5|\r\n");
    assert_eq!(
        format_lprt(sa("10.1.2.3:5000")),
        "LPRT 4,4,10,1,2,3,2,19,136\r\n"
    );
    assert_eq!(
        format_228(sa("10.1.2.3:5000")),
        "228 Entering Long Passive Mode (4,4,10,1,2,3,2,19,136)\r\n"
    );
}

#[test]
fn port_zero_and_byte_overflow_rejected() {
    assert_eq!(
        parse_port_arg("1,2,3,4,0,0"),
        Err(EndpointError::PortOutOfRange)
    );
    assert_eq!(
        parse_port_arg("1,2,3,4,256,0"),
        Err(EndpointError::ByteOutOfRange)
    );
    assert_eq!(
        parse_port_arg("1,2,3,4,0,256"),
        Err(EndpointError::ByteOutOfRange)
    );
    assert_eq!(
        parse_port_arg("1,2,3,300,1,1"),
        Err(EndpointError::ByteOutOfRange)
    );
    assert_eq!(
        parse_port_arg("1,2,3,4,99999999999999999999999999999999,1"),
        Err(EndpointError::ByteOutOfRange)
    );
    assert!(parse_227("(1,2,3,4,0,0)").is_err());
    assert!(parse_227("(1,2,3,4,18446744073709551616,1)").is_err());
    assert_eq!(parse_229("(|||0|)"), Err(EndpointError::PortOutOfRange));
    assert_eq!(parse_229("(|||65536|)"), Err(EndpointError::PortOutOfRange));
    assert_eq!(
        parse_229("(|||99999999999999999999999999|)"),
        Err(EndpointError::PortOutOfRange)
    );
    assert!(parse_eprt_arg("|1|1.2.3.4|0|").is_err());
    assert!(parse_eprt_arg("|1|1.2.3.4|65536|").is_err());
    assert!(parse_lprt_arg("4,4,1,2,3,4,2,0,0").is_err());
    assert!(parse_lprt_arg("4,4,1,2,3,256,2,1,1").is_err());
}

#[test]
fn port_arg_shape() {
    let ok = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1025);
    assert_eq!(parse_port_arg("10,0,0,1,4,1"), Ok(ok));
    assert_eq!(parse_port_arg(" 10,0,0,1,4,1 "), Ok(ok));
    for bad in [
        "",
        "10,0,0,1,4",
        "10,0,0,1,4,1,1",
        "10,0,0,1,4,",
        ",10,0,0,1,4,1",
        "10,0,0,1,4,1x",
        "x10,0,0,1,4,1",
        "10,0,0,-1,4,1",
        "10;0;0;1;4;1",
        "10,0,0,1,4,1\r",
        "10,0,0,1,4,1\0",
    ] {
        assert!(parse_port_arg(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn eprt_shapes_and_protocols() {
    assert_eq!(parse_eprt_arg("!1!1.2.3.4!80!"), Ok(sa("1.2.3.4:80")));
    assert_eq!(
        parse_eprt_arg("|3|10.0.0.1|5000|"),
        Err(EndpointError::UnsupportedProtocol(3))
    );
    // The protocol is judged before the port, so the client gets 522 rather than 501.
    assert_eq!(
        parse_eprt_arg("|3|x|0|"),
        Err(EndpointError::UnsupportedProtocol(3))
    );
    assert_eq!(
        parse_eprt_arg("|99999999999999|x|1|"),
        Err(EndpointError::UnsupportedProtocol(u32::MAX))
    );
    for bad in [
        "|1|::1|80|",
        "|2|1.2.3.4|80|",
        "|1|1.2.3.4|80",
        "|1|1.2.3.4|80|x",
        "1|1.2.3.4|80|",
        "|x|1.2.3.4|80|",
        "||1.2.3.4|80|",
        "|1|1.2.3|80|",
        "|1|1.2.3.4|-80|",
        "|1|1.2.3.4||",
        "\u{7f}1\u{7f}1.2.3.4\u{7f}80\u{7f}",
        "é1é1.2.3.4é80é",
        "",
    ] {
        assert!(parse_eprt_arg(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn lprt_shapes() {
    assert_eq!(
        parse_lprt_arg("6,16,254,128,0,0,0,0,0,0,2,96,176,255,254,193,123,47,2,198,244"),
        Ok(sa("[fe80::260:b0ff:fec1:7b2f]:50932"))
    );
    assert_eq!(
        parse_lprt_arg("4, 4, 10, 1, 2, 3, 2, 19, 136"),
        Ok(sa("10.1.2.3:5000"))
    );
    assert_eq!(
        parse_lprt_arg("5,4,1,2,3,4,2,1,1"),
        Err(EndpointError::UnsupportedAddressFamily(5))
    );
    for bad in [
        "4,16,1,2,3,4,2,1,1",
        "4,4,1,2,3,4,3,1,1,1",
        "4,4,1,2,3,4,2,1",
        "6,16,1,2,3,4,2,1,1",
        "4",
    ] {
        assert!(parse_lprt_arg(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn pasv_prose_variants() {
    let want = Ok(PassiveTarget::Address(sa("127.0.0.1:1075")));
    for text in [
        "227 Entering Passive Mode (127,0,0,1,4,51).",
        "227-Entering Passive Mode (127,0,0,1,4,51).",
        "Entering Passive Mode (127,0,0,1,4,51)",
        "=127,0,0,1,4,51",
        "227 Passive 1 ok, 2 ms (127,0,0,1,4,51)",
        "227 Entering Passive Mode (127, 0, 0, 1, 4, 51)",
        "227 Entering Passive Mode (127,0,0,1,4,51). 3,4 later",
    ] {
        assert_eq!(parse_227(text), want, "{text}");
    }
    assert_eq!(
        parse_227("(0,0,0,0,4,51)"),
        Ok(PassiveTarget::ControlPeer(1075))
    );
    for bad in [
        "227",
        "",
        "(-127,0,0,1,4,51)",
        "(127,0,0,1,4,51,7)",
        "(1,2,3,4,5,6)\n",
        "227 é",
    ] {
        assert!(parse_227(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn epsv_variants() {
    assert_eq!(
        parse_229("(!!!40000!)."),
        Ok(PassiveTarget::PortOnly(40000))
    );
    assert_eq!(
        parse_229("229 ok (see below) (|||40000|)"),
        Ok(PassiveTarget::PortOnly(40000))
    );
    assert_eq!(
        parse_229("229 (|2|::1|40000|)"),
        Ok(PassiveTarget::Address(sa("[::1]:40000")))
    );
    assert_eq!(
        parse_229("(|3|x|40000|)"),
        Err(EndpointError::UnsupportedProtocol(3))
    );
    for bad in [
        "(111401111)",
        "( 40000 )",
        "(|||40000|",
        "(|||4 0|)",
        "(|||+1|)",
        "(|\u{e9}|1|)",
        "(",
        "(|",
    ] {
        assert!(parse_229(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn lpsv_variants() {
    assert_eq!(
        parse_228("228 Entering Long Passive Mode (4, 4, 10, 1, 2, 3, 2, 19, 136)"),
        Ok(PassiveTarget::Address(sa("10.1.2.3:5000")))
    );
    for bad in [
        "228 (4,4,1,2,3,4,2,0,0)",
        "228 (4,4,1,2,3,4,2,1,1,)",
        "228 ()",
        "228 (7,4,1,2,3,4,2,1,1)",
    ] {
        assert!(parse_228(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn dispatch() {
    assert_eq!(
        parse_passive_reply(200, "(1,2,3,4,5,6)"),
        Err(EndpointError::NotPassiveReply(200))
    );
    assert!(parse_passive_reply(229, "(|||21|)").is_ok());
    assert!(parse_passive_reply(228, "(4,4,1,2,3,4,2,0,21)").is_ok());
}
