//! A network namespace per test, joined to the root namespace by a veth pair.
//!
//! The FTP servers and sshd run inside; FTP clients and the tunnel run outside. An FTP
//! server listening on the namespace's 127.0.0.1 is therefore reachable only through
//! sshd, which is what makes "the data went through SSH" a fact rather than a hope.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{Error, Result, poll_until, run_checked};

/// Number of /30 subnets in 10.213.0.0/16.
const SUBNETS: u32 = 1 << 14;

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A network namespace with `lo` up and a veth link to the root namespace (IPv4 and IPv6);
/// deleted on Drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
    /// The subnet's index: also names the link's IPv6 prefix, `fd42:213:IDX::/64`.
    idx: u32,
}

impl NetNs {
    /// Creates a namespace with a unique name and a unique 10.213.X.Y/30 link.
    pub fn new() -> Result<Self> {
        SWEEP.call_once(sweep_stale);
        let pid = std::process::id();
        for _ in 0..64 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let idx = (pid.wrapping_mul(97).wrapping_add(n)) % SUBNETS;
            // The host-side interface name is the reservation of the subnet: `ip link add`
            // fails if another test (of any process) already holds it.
            let host_if = format!("ftph{idx}");
            let ns_if = format!("ftpn{idx}");
            let added = Command::new("ip")
                .args([
                    "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| Error::Spawn("ip".into(), e))?;
            if !added.success() {
                continue;
            }
            let base = idx * 4;
            let host_ip = Ipv4Addr::new(10, 213, (base >> 8) as u8, (base & 0xff) as u8 + 1);
            let ns_ip = Ipv4Addr::new(10, 213, (base >> 8) as u8, (base & 0xff) as u8 + 2);
            let name = format!("ftpt-{pid}-{n}");
            let ns = NetNs {
                name,
                host_if,
                host_ip,
                ns_ip,
                idx,
            };
            ns.setup(&ns_if)?;
            return Ok(ns);
        }
        Err(Error::Setup(
            "no free subnet/namespace after 64 tries".into(),
        ))
    }

    fn setup(&self, ns_if: &str) -> Result<()> {
        run_checked(Command::new("ip").args(["netns", "add", &self.name]))?;
        run_checked(Command::new("ip").args(["link", "set", ns_if, "netns", &self.name]))?;
        let host_cidr = format!("{}/30", self.host_ip);
        let ns_cidr = format!("{}/30", self.ns_ip);
        run_checked(Command::new("ip").args(["addr", "add", &host_cidr, "dev", &self.host_if]))?;
        run_checked(Command::new("ip").args(["link", "set", &self.host_if, "up"]))?;
        run_checked(&mut self.command_in("ip", &["link", "set", "lo", "up"]))?;
        run_checked(&mut self.command_in("ip", &["addr", "add", &ns_cidr, "dev", ns_if]))?;
        run_checked(&mut self.command_in("ip", &["link", "set", ns_if, "up"]))?;
        // IPv6 beside it; `nodad`: usable at once, without duplicate address detection's
        // wait (nothing else is on this link).
        let host6 = format!("{}/64", self.host_ip6());
        let ns6 = format!("{}/64", self.ns_ip6());
        run_checked(Command::new("ip").args([
            "-6",
            "addr",
            "add",
            &host6,
            "dev",
            &self.host_if,
            "nodad",
        ]))?;
        run_checked(
            &mut self.command_in("ip", &["-6", "addr", "add", &ns6, "dev", ns_if, "nodad"]),
        )?;
        Ok(())
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address of the veth end in the root namespace.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// The address of the veth end inside the namespace (where sshd listens).
    pub fn ns_ip(&self) -> Ipv4Addr {
        self.ns_ip
    }

    /// The IPv6 address of the veth end in the root namespace.
    pub fn host_ip6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd42, 0x213, self.idx as u16, 0, 0, 0, 0, 1)
    }

    /// The IPv6 address of the veth end inside the namespace.
    pub fn ns_ip6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd42, 0x213, self.idx as u16, 0, 0, 0, 0, 2)
    }

    /// Takes the root namespace's end of the veth link down: from then on nothing crosses
    /// between the namespaces, and no endpoint is told (no FIN, no RST), as when a cable is
    /// pulled or a firewall starts dropping.
    pub fn cut_link(&self) -> Result<()> {
        run_checked(Command::new("ip").args(["link", "set", &self.host_if, "down"])).map(|_| ())
    }

    /// A `Command` that runs `program args...` inside the namespace.
    pub fn command_in(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name])
            .arg(program)
            .args(args);
        c
    }

    /// TCP ports in LISTEN state inside the namespace.
    pub fn listening_ports(&self) -> Result<Vec<u16>> {
        Ok(self
            .listening_addresses()?
            .iter()
            .filter_map(|local| local.rsplit_once(':'))
            .filter_map(|(_, p)| p.parse().ok())
            .collect())
    }

    /// The local addresses of TCP listeners inside the namespace, as `ss` prints them
    /// (`10.0.0.2:2222`, `[fd42::2]:2222`, `*:21`).
    fn listening_addresses(&self) -> Result<Vec<String>> {
        let out = self
            .command_in("ss", &["-Hltn"])
            .stderr(Stdio::null())
            .output()
            .map_err(|e| Error::Spawn("ss".into(), e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .map(str::to_owned)
            .collect())
    }

    /// Waits until something listens on TCP `port` inside the namespace.
    pub fn wait_listening(&self, port: u16, timeout: Duration) -> Result<()> {
        poll_until(timeout, || {
            Ok(self.listening_ports()?.contains(&port).then_some(()))
        })
        .map_err(|_| Error::Timeout(format!("port {port} listening in {}", self.name)))
    }

    /// Waits until something listens on exactly `local` (address and port) inside the
    /// namespace.
    pub fn wait_listening_on(&self, local: SocketAddr, timeout: Duration) -> Result<()> {
        let wanted = local.to_string();
        poll_until(timeout, || {
            Ok(self.listening_addresses()?.contains(&wanted).then_some(()))
        })
        .map_err(|_| Error::Timeout(format!("{local} listening in {}", self.name)))
    }

    /// PIDs of all processes whose network namespace is this one.
    pub fn pids(&self) -> Vec<u32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Everything in the namespace was started by this test; end it before the namespace
        // goes, or a server would linger with no network.
        for pid in self.pids() {
            crate::kill_pid(pid, "KILL");
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .status();
    }
}

/// Deletes namespaces left by earlier test processes that died without their Drop running.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix("ftpt-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
            for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(p) = p.parse() {
                    crate::kill_pid(p, "KILL");
                }
            }
        }
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
}
