//! Ports for the passive data listeners on our side, picked here rather than by the kernel.
//!
//! `bind` to port 0 makes Linux search the ephemeral range for a port that no socket holds,
//! TIME_WAIT sockets included, and a data connection that we close first leaves one for a
//! minute. A busy tunnel (hundreds of transfers a second) fills the range that way, and every
//! bind then walks thousands of ports in the kernel: with about 20,000 TIME_WAIT sockets on the
//! machine a bind cost 3–5 ms of CPU (perf: `inet_bind2_bucket_find`, `inet_bhash2_conflict`),
//! where a whole 4 KiB transfer otherwise costs ftp-tunnel about 0.6 ms. Binding one named
//! port with `SO_REUSEADDR` checks that port alone, and a TIME_WAIT socket left there by an
//! earlier data connection (which had `SO_REUSEADDR` too) does not block it; a port another
//! socket listens on, or holds without `SO_REUSEADDR`, still does, and then another is tried.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use tokio::net::TcpListener;

use crate::limits::bind_reusable;

/// Random ports tried before the kernel is left to search.
const ATTEMPTS: usize = 16;
/// Pending connections a data listener queues: std's `TcpListener::bind` default, which data
/// listeners had before. It expects one, but strangers may come first and are refused.
const BACKLOG: u32 = 128;
/// Linux's default ephemeral range, used when the running one cannot be read.
const DEFAULT_RANGE: RangeInclusive<u16> = 32768..=60999;

/// A listener on `ip`, on a free port of the ephemeral range that the kernel does not
/// reserve. Needs a runtime.
pub fn bind_passive(ip: IpAddr) -> io::Result<TcpListener> {
    let ports = usable_ports();
    for _ in 0..ATTEMPTS {
        let port = rand::random_range(ports.range.clone());
        if ports.reserved.iter().any(|r| r.contains(&port)) {
            continue;
        }
        match bind_reusable(SocketAddr::new(ip, port), BACKLOG) {
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => continue,
            other => return other,
        }
    }
    // A crowded range: the kernel's search is slow, but it finds a port if there is one.
    bind_reusable(SocketAddr::new(ip, 0), BACKLOG)
}

/// The ephemeral range and the ports reserved out of it.
struct UsablePorts {
    range: RangeInclusive<u16>,
    reserved: Vec<RangeInclusive<u16>>,
}

/// Read once: the ranges are the kernel's settings, which a running tunnel need not follow.
fn usable_ports() -> &'static UsablePorts {
    static PORTS: OnceLock<UsablePorts> = OnceLock::new();
    PORTS.get_or_init(|| {
        let read = |name: &str| std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"));
        UsablePorts {
            range: read("ip_local_port_range")
                .ok()
                .and_then(|text| parse_port_range(&text))
                .unwrap_or(DEFAULT_RANGE),
            reserved: read("ip_local_reserved_ports")
                .map(|text| parse_reserved_ports(&text))
                .unwrap_or_default(),
        }
    })
}

/// `ip_local_port_range`: two numbers, "32768\t60999".
fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    let (low, high) = (numbers.next()?.ok()?, numbers.next()?.ok()?);
    (0 < low && low <= high).then_some(low..=high)
}

/// `ip_local_reserved_ports`: "8080,9000-9100", or empty; entries that do not parse are
/// skipped.
fn parse_reserved_ports(text: &str) -> Vec<RangeInclusive<u16>> {
    text.trim()
        .split(',')
        .filter_map(|entry| {
            let (low, high) = entry.split_once('-').unwrap_or((entry, entry));
            Some(low.trim().parse().ok()?..=high.trim().parse().ok()?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn kernel_settings_parse() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_port_range("61000 32768"), None);
        assert_eq!(parse_port_range("garbage"), None);
        assert_eq!(
            parse_reserved_ports("8080,9000-9100\n"),
            vec![8080..=8080, 9000..=9100]
        );
        assert!(parse_reserved_ports("\n").is_empty());
    }

    #[tokio::test]
    async fn picks_ports_in_the_ephemeral_range() {
        let listeners: Vec<_> = (0..32).map(|_| bind_passive(LOOPBACK).unwrap()).collect();
        let range = &usable_ports().range;
        for listener in &listeners {
            assert!(range.contains(&listener.local_addr().unwrap().port()));
        }
    }

    #[tokio::test]
    async fn a_port_someone_listens_on_is_not_taken() {
        let taken = bind_passive(LOOPBACK).unwrap();
        let error = bind_reusable(taken.local_addr().unwrap(), BACKLOG).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }

    /// What makes a named port cheap and safe to pick: the TIME_WAIT socket an earlier data
    /// connection left on it does not block a new listener there.
    #[tokio::test]
    async fn a_port_left_in_time_wait_by_our_side_can_listen_again() {
        let listener = bind_passive(LOOPBACK).unwrap();
        let address = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(address).await.unwrap();
        let (mut served, _) = listener.accept().await.unwrap();
        drop(listener);
        // Our side closes first, as a finished download does: it is the side in TIME_WAIT.
        served.write_all(b"data").await.unwrap();
        served.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        drop(client);
        drop(served);
        assert!(in_time_wait(address), "{address} not in TIME_WAIT");
        bind_reusable(address, BACKLOG).expect("listen again where a TIME_WAIT socket is");
    }

    /// Whether a TIME_WAIT socket has `address` as its local end (from `/proc/net/tcp`),
    /// polled for up to 5 s: the last close is the kernel's to finish.
    fn in_time_wait(address: SocketAddr) -> bool {
        const TIME_WAIT: &str = "06";
        let wanted = format!("0100007F:{:04X}", address.port());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
            let found = table.lines().skip(1).any(|line| {
                let fields: Vec<_> = line.split_whitespace().collect();
                fields.get(1) == Some(&wanted.as_str()) && fields.get(3) == Some(&TIME_WAIT)
            });
            if found || Instant::now() > deadline {
                return found;
            }
            std::thread::yield_now();
        }
    }
}
