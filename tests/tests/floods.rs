//! Floods and limits: a burst of FTP clients gets banners up to `MaxSessions` and a `421`
//! past it, promptly; an accept loop at the file-descriptor limit backs off instead of
//! spinning; and the tunnel serves normally afterwards.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use ftp_tunnel_e2e::clients::{Client, Mode, round_trip};
use ftp_tunnel_e2e::files::{random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::{Tunnel, ssh_args};
use ftp_tunnel_e2e::{poll_until, python, run_checked, workspace_root};

const CLIENTS: usize = 2000;
const MAX_SESSIONS: usize = 64;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(usize::MAX)
}

/// Resident memory in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(u64::MAX)
}

/// CPU time (user + system) the process has used, from /proc/PID/stat, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ") ".
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn tunnel_with(lab: &Lab, options: &[&str], launcher: Option<&[&str]>) -> Tunnel {
    let mut args = ssh_args(&lab.sshd);
    for option in options {
        args.push("-o".into());
        args.push((*option).into());
    }
    args.push("-L".into());
    args.push(format!("ftp/127.0.0.1:0:127.0.0.1:{}", lab.server.port()));
    args.push(lab.sshd.addr().to_string());
    match launcher {
        None => Tunnel::start(&args, 1).expect("tunnel"),
        Some(launcher) => {
            // prlimit execs the tunnel: the PID stays the tunnel's.
            let mut wrapped: Vec<String> = launcher[1..].iter().map(|s| s.to_string()).collect();
            wrapped.push(ftp_tunnel_e2e::tunnel::binary().display().to_string());
            wrapped.extend(args);
            Tunnel::start_program(std::path::Path::new(launcher[0]), &wrapped, 1)
                .expect("tunnel under prlimit")
        }
    }
}

/// One download through the tunnel, checked by checksum: the tunnel serves normally.
fn serves_normally(lab: &Lab, tunnel: &Tunnel, tag: &str) {
    let local = lab.scratch().join(format!("{tag}.bin"));
    let out = lab.scratch().join(format!("{tag}.out"));
    let sum = random_file(&local, 256 * 1024).expect("file");
    round_trip(
        Client::Curl,
        Mode::Epsv,
        &lab.target(tunnel),
        &local,
        &format!("{tag}.bin"),
        &out,
    )
    .expect("a transfer after the flood");
    assert_eq!(sha256_file(&out).expect("sha256"), sum);
}

#[test]
fn two_thousand_clients_at_once_each_get_a_banner_or_a_421() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let max_sessions = format!("MaxSessions={MAX_SESSIONS}");
    let tunnel = tunnel_with(&lab, &[&max_sessions], None);
    let pid = tunnel.pid().expect("pid");
    let fds_before = open_fds(pid);
    let rss_before = rss_kib(pid);

    let started = Instant::now();
    let output = run_checked(
        Command::new(python()).args([
            workspace_root()
                .join("tests/tools/flood.py")
                .to_str()
                .expect("path"),
            "127.0.0.1",
            &tunnel.port().to_string(),
            &CLIENTS.to_string(),
            "20",
        ]),
    )
    .expect("flood");
    let summary = output.trim();
    let parsed: serde_json::Value = serde_json::from_str(summary).expect("flood.py prints JSON");
    let field = |name: &str| -> u64 {
        parsed[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {summary}"))
    };
    assert_eq!(
        (field("banner"), field("refused")),
        (MAX_SESSIONS as u64, (CLIENTS - MAX_SESSIONS) as u64),
        "every client answered: {MAX_SESSIONS} banners (all sessions held open) and a 421 for \
         the rest, within 20 s ({summary}, {:?})",
        started.elapsed()
    );
    assert!(
        tunnel.lines().iter().all(|l| !l.contains("panicked")),
        "no panic"
    );

    // All clients are gone: the tunnel gives back what they held.
    poll_until(Duration::from_secs(10), || {
        Ok((open_fds(pid) <= fds_before + 4).then_some(()))
    })
    .unwrap_or_else(|_| {
        panic!(
            "file descriptors: {fds_before} before the flood, {} after",
            open_fds(pid)
        )
    });
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory stays bounded: {rss_before} KiB before, {rss_after} KiB after"
    );
    serves_normally(&lab, &tunnel, "after-flood");
}

#[test]
fn at_the_descriptor_limit_the_accept_loop_backs_off_and_recovers() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    // Few descriptors: a few dozen held connections use them up.
    let tunnel = tunnel_with(
        &lab,
        &[],
        Some(&["/usr/bin/prlimit", "--nofile=48:48", "--"]),
    );
    let pid = tunnel.pid().expect("pid");
    let address = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));

    // Connections the kernel completes and queues; the tunnel takes them until it has no
    // descriptor left, after which each accept fails with EMFILE while the queue is full.
    let held: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connect"))
        .collect();
    poll_until(Duration::from_secs(10), || {
        Ok(tunnel
            .lines()
            .iter()
            .any(|l| l.contains("backing off"))
            .then_some(()))
    })
    .expect("the tunnel reports running out of descriptors");

    // A measurement window, not a synchronisation: a loop that retried at once would burn
    // a whole core (about 100 ticks a second) and log a warning per failure.
    let accept_warnings = || {
        tunnel
            .lines()
            .iter()
            .filter(|l| l.contains("accept on"))
            .count()
    };
    let ticks_before = cpu_ticks(pid);
    let warnings_before = accept_warnings();
    std::thread::sleep(Duration::from_secs(2));
    let ticks = cpu_ticks(pid) - ticks_before;
    let new_lines = accept_warnings() - warnings_before;
    assert!(
        ticks < 30,
        "{ticks} clock ticks of CPU in 2 s at the descriptor limit: the accept loop spins"
    );
    assert!(
        new_lines <= 2,
        "{new_lines} accept warnings in 2 s at the descriptor limit"
    );

    // Descriptors free up: the tunnel serves again.
    drop(held);
    poll_until(Duration::from_secs(15), || {
        Ok(RawFtp::connect(address, Duration::from_secs(3))
            .ok()
            .filter(|(_, banner)| banner.code == 220)
            .map(|_| ()))
    })
    .expect("a 220 banner once descriptors are free again");
    serves_normally(&lab, &tunnel, "after-emfile");
}
