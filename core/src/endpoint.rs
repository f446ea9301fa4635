//! Data-endpoint codecs: PORT/227, EPRT/229, LPRT/228.
//!
//! Parsers are strict about ranges (every byte 0..=255, ports 1..=65535) and never let a
//! value wrap; they are lenient about the prose around the numbers, because real servers
//! vary it. Text containing CR, LF or NUL is rejected outright so that a line the framer
//! flagged as odd is never turned into a forward.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What a passive reply (227/228/229) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassiveTarget {
    /// An explicit address (227, 228, or 229 in the |1|addr|port| form).
    Address(SocketAddr),
    /// Only a port (229 `(|||port|)`): the host is the control connection's server.
    PortOnly(u16),
    /// The address is unusable (0.0.0.0 in a 227): use the control connection's peer, with this port.
    ControlPeer(u16),
}

/// Why an endpoint could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The text does not have the expected shape; the string says which part is wrong.
    #[error("malformed endpoint: {0}")]
    Malformed(&'static str),
    /// An address byte or port byte is outside 0..=255.
    #[error("a byte value is outside 0..=255")]
    ByteOutOfRange,
    /// The port is 0 or above 65535.
    #[error("port outside 1..=65535")]
    PortOutOfRange,
    /// EPRT/229 network protocol other than 1 (IPv4) or 2 (IPv6): answer 522.
    #[error("network protocol {0} not supported, use (1,2)")]
    UnsupportedProtocol(u32),
    /// LPRT/228 address family other than 4 (IPv4) or 6 (IPv6): answer 521.
    #[error("address family {0} not supported, use (4,6)")]
    UnsupportedAddressFamily(u32),
    /// The reply code is not one of 227, 228, 229.
    #[error("reply code {0} does not name a passive endpoint")]
    NotPassiveReply(u16),
}

type Result<T> = std::result::Result<T, EndpointError>;

/// Rejects text that must never be interpreted (see the module doc).
fn check_clean(text: &str) -> Result<()> {
    if crate::command::has_control_bytes(text.as_bytes()) {
        return Err(EndpointError::Malformed("control byte in text"));
    }
    Ok(())
}

/// Skips a leading reply code and its separator, so both the whole line and its text work.
fn skip_code<'a>(text: &'a str, code: &str) -> &'a str {
    match text.strip_prefix(code) {
        Some(rest) if rest.is_empty() => rest,
        Some(rest) if rest.starts_with([' ', '-']) => &rest[1..],
        _ => text,
    }
}

/// One maximal run of comma-separated decimal numbers found in a text.
struct NumberList {
    /// Values, saturated at `u64::MAX` so that huge numbers stay huge instead of wrapping.
    values: Vec<u64>,
    /// Ended in a comma with no number after it.
    dangling_comma: bool,
}

fn read_number(b: &[u8], mut i: usize) -> (u64, usize) {
    let mut v: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.saturating_mul(10).saturating_add(u64::from(b[i] - b'0'));
        i += 1;
    }
    (v, i)
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    i
}

/// Parses the list starting at `i` (a digit); returns it and the index after it.
fn read_list(b: &[u8], i: usize) -> (NumberList, usize) {
    let (first, mut i) = read_number(b, i);
    let mut list = NumberList {
        values: vec![first],
        dangling_comma: false,
    };
    loop {
        // RFC 1639 writes "(af, hal, ...)": spaces around commas are tolerated.
        let j = skip_spaces(b, i);
        if j >= b.len() || b[j] != b',' {
            return (list, i);
        }
        let k = skip_spaces(b, j + 1);
        if k >= b.len() || !b[k].is_ascii_digit() {
            list.dangling_comma = true;
            return (list, k);
        }
        let (v, next) = read_number(b, k);
        list.values.push(v);
        i = next;
    }
}

/// All number lists of a text, in order. A list preceded by a sign is skipped whole:
/// "-1,..." is not a list of non-negative numbers.
fn number_lists(text: &str) -> Vec<NumberList> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let signed = i > 0 && matches!(b[i - 1], b'-' | b'+');
            let (list, next) = read_list(b, i);
            if !signed {
                out.push(list);
            }
            i = next.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn to_u8(v: u64) -> Result<u8> {
    u8::try_from(v).map_err(|_| EndpointError::ByteOutOfRange)
}

fn port_from_bytes(hi: u64, lo: u64) -> Result<u16> {
    let port = u16::from_be_bytes([to_u8(hi)?, to_u8(lo)?]);
    if port == 0 {
        return Err(EndpointError::PortOutOfRange);
    }
    Ok(port)
}

/// Six numbers h1..h4,p1,p2 → an IPv4 socket address.
fn six_to_v4(v: &[u64]) -> Result<SocketAddrV4> {
    let [a, b, c, d, hi, lo] = v else {
        return Err(EndpointError::Malformed("expected six numbers"));
    };
    let ip = Ipv4Addr::new(to_u8(*a)?, to_u8(*b)?, to_u8(*c)?, to_u8(*d)?);
    Ok(SocketAddrV4::new(ip, port_from_bytes(*hi, *lo)?))
}

/// Decimal port field of EPRT/229: digits only, 1..=65535.
fn parse_port_field(s: &str) -> Result<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError::Malformed("port is not a decimal number"));
    }
    let (v, _) = read_number(s.as_bytes(), 0);
    match u16::try_from(v) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(EndpointError::PortOutOfRange),
    }
}

/// Parses the text of a 227 reply (the whole line *after* "227" and its separator, or the
/// whole line: a leading "227" + ' '/'-' is skipped). Rule: the first run of exactly six
/// comma-separated decimal numbers, each 0..=255, anywhere in the text; port 0 rejected.
pub fn parse_227(text: &str) -> Result<PassiveTarget> {
    check_clean(text)?;
    let text = skip_code(text, "227");
    let list = number_lists(text)
        .into_iter()
        .find(|l| l.values.len() == 6 && !l.dangling_comma)
        .ok_or(EndpointError::Malformed("no six comma-separated numbers"))?;
    let addr = six_to_v4(&list.values)?;
    if addr.ip().is_unspecified() {
        return Ok(PassiveTarget::ControlPeer(addr.port()));
    }
    Ok(PassiveTarget::Address(SocketAddr::V4(addr)))
}

/// Splits `|f1|f2|f3|` (any delimiter) into its three fields and what follows it.
fn split_extended(s: &str) -> Result<([&str; 3], &str)> {
    let d = s
        .chars()
        .next()
        .ok_or(EndpointError::Malformed("missing delimiter"))?;
    // RFC 2428 allows 33..=126; a digit would make the fields ambiguous.
    if !(33..=126).contains(&(d as u32)) || d.is_ascii_digit() {
        return Err(EndpointError::Malformed("invalid delimiter"));
    }
    let mut rest = &s[1..];
    let mut fields = [""; 3];
    for f in &mut fields {
        let end = rest
            .find(d)
            .ok_or(EndpointError::Malformed("missing delimiter"))?;
        *f = &rest[..end];
        rest = &rest[end + 1..];
    }
    Ok((fields, rest))
}

/// Interprets the network-protocol and address fields of EPRT or a CEPR-style 229.
fn extended_address(proto: &str, addr: &str, port: u16) -> Result<SocketAddr> {
    if proto.is_empty() || !proto.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError::Malformed("network protocol is not a number"));
    }
    let (p, _) = read_number(proto.as_bytes(), 0);
    match p {
        1 => addr
            .parse::<Ipv4Addr>()
            .map(|ip| SocketAddr::V4(SocketAddrV4::new(ip, port)))
            .map_err(|_| EndpointError::Malformed("invalid IPv4 address")),
        2 => addr
            .parse::<Ipv6Addr>()
            .map(|ip| SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
            .map_err(|_| EndpointError::Malformed("invalid IPv6 address")),
        other => Err(EndpointError::UnsupportedProtocol(
            u32::try_from(other).unwrap_or(u32::MAX),
        )),
    }
}

fn parse_229_at(s: &str) -> Result<PassiveTarget> {
    let ([proto, addr, port], rest) = split_extended(s)?;
    if !rest.starts_with(')') {
        return Err(EndpointError::Malformed("missing ')'"));
    }
    let port = parse_port_field(port)?;
    if proto.is_empty() && addr.is_empty() {
        return Ok(PassiveTarget::PortOnly(port));
    }
    extended_address(proto, addr, port).map(PassiveTarget::Address)
}

/// 229: after '(' a delimiter char (33..=126) repeated 3 times, port, delimiter; ')' then
/// optional '.'. Also the lftp CEPR form `(|1|192.0.2.1|5000|)` → Address. 1..=65535 only.
pub fn parse_229(text: &str) -> Result<PassiveTarget> {
    check_clean(text)?;
    let text = skip_code(text, "229");
    let mut first_err = None;
    // Some prose contains its own parentheses; the first '(' that parses wins.
    for (i, _) in text.match_indices('(') {
        match parse_229_at(&text[i + 1..]) {
            Ok(t) => return Ok(t),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or(EndpointError::Malformed("no '(' in 229 reply")))
}

/// Interprets an RFC 1639 list: af, hal, address bytes, pal, port bytes.
fn long_to_addr(v: &[u64]) -> Result<SocketAddr> {
    let (&af, rest) = v
        .split_first()
        .ok_or(EndpointError::Malformed("empty address list"))?;
    let hal = match af {
        4 => 4,
        6 => 16,
        other => {
            return Err(EndpointError::UnsupportedAddressFamily(
                u32::try_from(other).unwrap_or(u32::MAX),
            ));
        }
    };
    if rest.len() != 1 + hal + 3 {
        return Err(EndpointError::Malformed("wrong number of values"));
    }
    if rest[0] != hal as u64 || rest[1 + hal] != 2 {
        return Err(EndpointError::Malformed("wrong address or port length"));
    }
    let mut bytes = [0u8; 16];
    for (dst, &src) in bytes.iter_mut().zip(&rest[1..=hal]) {
        *dst = to_u8(src)?;
    }
    let port = port_from_bytes(rest[hal + 2], rest[hal + 3])?;
    let ip = if hal == 4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(bytes))
    };
    Ok(SocketAddr::new(ip, port))
}

/// 228 (RFC 1639 LPSV): (4,4,a,b,c,d,2,p1,p2) or (6,16,16 bytes,2,p1,p2).
pub fn parse_228(text: &str) -> Result<PassiveTarget> {
    check_clean(text)?;
    let text = skip_code(text, "228");
    let list = number_lists(text)
        .into_iter()
        .find(|l| l.values.len() > 1)
        .ok_or(EndpointError::Malformed("no address list"))?;
    if list.dangling_comma {
        return Err(EndpointError::Malformed("trailing comma"));
    }
    long_to_addr(&list.values).map(PassiveTarget::Address)
}

/// Dispatch on the reply code 227/228/229; other codes → Err.
pub fn parse_passive_reply(code: u16, text: &str) -> Result<PassiveTarget> {
    match code {
        227 => parse_227(text),
        228 => parse_228(text),
        229 => parse_229(text),
        other => Err(EndpointError::NotPassiveReply(other)),
    }
}

/// Parses a whole command argument as one number list (nothing else allowed around it).
fn whole_list(arg: &str) -> Result<Vec<u64>> {
    check_clean(arg)?;
    let arg = arg.trim_matches(' ');
    let b = arg.as_bytes();
    if b.is_empty() || !b[0].is_ascii_digit() {
        return Err(EndpointError::Malformed("expected comma-separated numbers"));
    }
    let (list, end) = read_list(b, 0);
    if list.dangling_comma || end != b.len() {
        return Err(EndpointError::Malformed("expected comma-separated numbers"));
    }
    Ok(list.values)
}

/// Parses the argument of PORT (after "PORT ", trimmed): `h1,h2,h3,h4,p1,p2`.
pub fn parse_port_arg(arg: &str) -> Result<SocketAddrV4> {
    let v = whole_list(arg)?;
    six_to_v4(&v)
}

/// Parses the argument of EPRT: `|1|v4|port|` or `|2|v6|port|`, any delimiter 33..=126.
pub fn parse_eprt_arg(arg: &str) -> Result<SocketAddr> {
    check_clean(arg)?;
    let ([proto, addr, port], rest) = split_extended(arg.trim_matches(' '))?;
    if !rest.is_empty() {
        return Err(EndpointError::Malformed("text after the closing delimiter"));
    }
    // Protocol first, so an unknown protocol gets its 522 even with an odd port.
    let probe = extended_address(proto, addr, 1)?;
    let port = parse_port_field(port)?;
    Ok(SocketAddr::new(probe.ip(), port))
}

/// Parses the argument of LPRT (RFC 1639): `4,4,a,b,c,d,2,p1,p2` or `6,16,<16 bytes>,2,p1,p2`.
pub fn parse_lprt_arg(arg: &str) -> Result<SocketAddr> {
    long_to_addr(&whole_list(arg)?)
}

fn v4_six(addr: SocketAddrV4) -> String {
    let [a, b, c, d] = addr.ip().octets();
    let [hi, lo] = addr.port().to_be_bytes();
    format!("{a},{b},{c},{d},{hi},{lo}")
}

fn long_list(addr: SocketAddr) -> String {
    let (af, bytes): (u8, Vec<u8>) = match addr.ip() {
        IpAddr::V4(ip) => (4, ip.octets().to_vec()),
        IpAddr::V6(ip) => (6, ip.octets().to_vec()),
    };
    let [hi, lo] = addr.port().to_be_bytes();
    let mut out = format!("{af},{}", bytes.len());
    for b in bytes {
        out.push_str(&format!(",{b}"));
    }
    out.push_str(&format!(",2,{hi},{lo}"));
    out
}

/// `227 Entering Passive Mode (a,b,c,d,p1,p2).\r\n`
pub fn format_227(addr: SocketAddrV4) -> String {
    format!("227 Entering Passive Mode ({}).\r\n", v4_six(addr))
}

/// `229 Entering Extended Passive Mode (|||port|)\r\n`
pub fn format_229(port: u16) -> String {
    format!("229 Entering Extended Passive Mode (|||{port}|)\r\n")
}

/// `228 Entering Long Passive Mode (af,hal,...,2,p1,p2)\r\n`
pub fn format_228(addr: SocketAddr) -> String {
    format!("228 Entering Long Passive Mode ({})\r\n", long_list(addr))
}

/// `PORT a,b,c,d,p1,p2\r\n`
pub fn format_port(addr: SocketAddrV4) -> String {
    format!("PORT {}\r\n", v4_six(addr))
}

/// `EPRT |1|a.b.c.d|port|\r\n` or `EPRT |2|v6|port|\r\n` (an IPv6 scope id cannot be carried).
pub fn format_eprt(addr: SocketAddr) -> String {
    let proto = if addr.is_ipv4() { 1 } else { 2 };
    format!("EPRT |{proto}|{}|{}|\r\n", addr.ip(), addr.port())
}

/// `LPRT 4,4,a,b,c,d,2,p1,p2\r\n` or `LPRT 6,16,<16 bytes>,2,p1,p2\r\n`
pub fn format_lprt(addr: SocketAddr) -> String {
    format!("LPRT {}\r\n", long_list(addr))
}
