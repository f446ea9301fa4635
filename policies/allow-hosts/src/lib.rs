//! An ftp-tunnel policy that lets data connections reach only the hosts and ports the admin
//! lists; FTP commands are not restricted.
//!
//! Settings: one or more `allow=HOST:PORT`, where HOST is `*`, a name (matched without regard
//! to case), an IP address, or a network in CIDR form (`10.0.0.0/8`; IPv6 in brackets,
//! `[fd00::/8]:*`), and PORT is `*`, a number or a range `LOW-HIGH`. Example:
//! `allow=127.0.0.1:*`, `allow=ftp.internal:30000-30100`.

wit_bindgen::generate!({ world: "policy", path: "../../wit/policy" });

use std::cell::RefCell;
use std::net::IpAddr;

use ftp_tunnel::policy::types::DataMode;

/// Which hosts a pattern admits.
enum HostPattern {
    Any,
    Name(String),
    Network(IpAddr, u8),
}

/// One `allow=` entry.
struct Rule {
    host: HostPattern,
    ports: (u16, u16),
}

thread_local! {
    /// Set by `configure`, read by `check-forward`. A component instance is single-threaded.
    static RULES: RefCell<Vec<Rule>> = const { RefCell::new(Vec::new()) };
}

struct AllowHosts;

impl Guest for AllowHosts {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let mut rules = Vec::new();
        for (name, value) in &settings {
            if name != "allow" {
                return Err(format!(
                    "unknown setting {name:?} (expected allow=HOST:PORT)"
                ));
            }
            rules.push(parse_rule(value).map_err(|e| format!("allow={value}: {e}"))?);
        }
        if rules.is_empty() {
            return Err("no allow=HOST:PORT given: every data connection would be denied".into());
        }
        RULES.with(|r| *r.borrow_mut() = rules);
        Ok(())
    }

    fn check_command(_command: Command) -> Verdict {
        Verdict::Allow
    }

    fn check_forward(forward: DataForward) -> Verdict {
        let allowed = RULES.with(|rules| {
            rules.borrow().iter().any(|rule| {
                (rule.ports.0..=rule.ports.1).contains(&forward.port)
                    && host_matches(&rule.host, &forward.host)
            })
        });
        if allowed {
            Verdict::Allow
        } else {
            let mode = match forward.mode {
                DataMode::Passive => "passive",
                DataMode::Active => "active",
            };
            Verdict::Deny(format!(
                "{mode} data connection to {}:{} is not in the allowed list",
                forward.host, forward.port
            ))
        }
    }
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').ok_or("missing ']'")?;
            (host, after.strip_prefix(':').ok_or("missing ':PORT'")?)
        }
        None => text.rsplit_once(':').ok_or("missing ':PORT'")?,
    };
    Ok(Rule {
        host: parse_host(host)?,
        ports: parse_ports(port)?,
    })
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host.is_empty() {
        return Err("empty host".into());
    }
    if let Some((addr, bits)) = host.split_once('/') {
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("prefix length must be 0..={max}"))?;
        return Ok(HostPattern::Network(addr, bits));
    }
    match host.parse::<IpAddr>() {
        Ok(addr) => Ok(HostPattern::Network(
            addr,
            if addr.is_ipv4() { 32 } else { 128 },
        )),
        Err(_) => Ok(HostPattern::Name(host.to_ascii_lowercase())),
    }
}

fn parse_ports(port: &str) -> Result<(u16, u16), String> {
    let number = |p: &str| p.parse::<u16>().map_err(|_| format!("{p:?} is not a port"));
    match port {
        "*" => Ok((0, u16::MAX)),
        _ => match port.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (number(low)?, number(high)?);
                if low > high {
                    return Err(format!("empty port range {low}-{high}"));
                }
                Ok((low, high))
            }
            None => number(port).map(|p| (p, p)),
        },
    }
}

fn host_matches(pattern: &HostPattern, host: &str) -> bool {
    match pattern {
        HostPattern::Any => true,
        HostPattern::Name(name) => host.eq_ignore_ascii_case(name),
        HostPattern::Network(network, bits) => {
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            match (host.parse::<IpAddr>(), network) {
                (Ok(IpAddr::V4(a)), IpAddr::V4(n)) => {
                    prefix_eq(u32::from(a).into(), u32::from(*n).into(), *bits, 32)
                }
                (Ok(IpAddr::V6(a)), IpAddr::V6(n)) => prefix_eq(a.into(), (*n).into(), *bits, 128),
                _ => false,
            }
        }
    }
}

/// Whether the first `bits` of two `width`-bit addresses agree.
fn prefix_eq(a: u128, b: u128, bits: u8, width: u32) -> bool {
    let shift = width - u32::from(bits);
    shift >= width || (a >> shift) == (b >> shift)
}

export!(AllowHosts);
