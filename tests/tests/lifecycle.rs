//! Process lifecycle: clean exit on signals, a clear failure when the SSH server goes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::netns::NetNs;
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::{Forwarding, Sshd};
use ftp_tunnel_e2e::tunnel::{binary, parse_listening, ssh_args, strip_ansi};
use ftp_tunnel_e2e::{kill_pid, poll_until};

fn open_session(lab: &Lab, port: u16) -> RawFtp {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (mut ftp, g) = RawFtp::connect(addr, Duration::from_secs(10)).expect("connect");
    assert_eq!(g.code, 220);
    ftp.login(lab.server.user(), lab.server.pass())
        .expect("login");
    ftp
}

#[test]
fn sigterm_when_idle_exits_zero_quickly() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let mut tunnel = lab.tunnel().expect("tunnel");
    let (status, took) = tunnel.terminate(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn sigterm_with_open_sessions_exits_zero_quickly() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let mut tunnel = lab.tunnel().expect("tunnel");
    let mut ftp = open_session(&lab, tunnel.port());
    // An announced but unused data forward must not hold the exit up either.
    ftp.epsv().expect("EPSV");
    let _second = open_session(&lab, tunnel.port());
    let (status, took) = tunnel.terminate(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn sigint_exits_zero_quickly() {
    let lab = Lab::new(ServerKind::Pyftpd, Forwarding::Yes).expect("lab");
    let mut tunnel = lab.tunnel().expect("tunnel");
    let _ftp = open_session(&lab, tunnel.port());
    let pid = tunnel.pid().expect("pid");
    let start = std::time::Instant::now();
    assert!(kill_pid(pid, "INT"));
    let status = tunnel.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "exit status {status}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn lost_ssh_server_exits_nonzero_with_a_clear_line() {
    let mut lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let mut tunnel = lab.tunnel().expect("tunnel");
    let mut ftp = open_session(&lab, tunnel.port());
    assert_eq!(ftp.cmd("NOOP").expect("NOOP").code, 200);
    let before = tunnel.lines().len();

    lab.sshd.kill();
    let status = tunnel
        .wait_exit(Duration::from_secs(15))
        .expect("the tunnel must notice the lost SSH connection and exit");
    assert!(!status.success(), "must exit non-zero, got {status}");
    let lines = tunnel.lines();
    let new = &lines[before.min(lines.len())..];
    let clear = new.iter().any(|l| {
        let l = l.to_lowercase();
        ["error", "lost", "disconnect", "closed", "eof"]
            .iter()
            .any(|k| l.contains(k))
    });
    assert!(
        clear,
        "no clear line about the lost connection:\n{}",
        new.join("\n")
    );
    assert!(
        !lines.iter().any(|l| l.contains("panicked")),
        "panicked:\n{}",
        lines.join("\n")
    );
    // The tunnel process is gone, so the FTP client sees its control connection end.
    assert!(
        ftp.cmd("NOOP").is_err(),
        "the FTP session outlived the tunnel"
    );
}

/// "listening on" is the line scripts wait for before they go on, and some stop the tunnel
/// right then: SIGTERM sent the moment that line appears must already be a clean exit (it
/// once arrived before the handler was registered and killed the process; a CI run caught it).
#[test]
fn sigterm_the_moment_it_listens_exits_zero() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let mut args = ssh_args(&sshd);
    args.extend(["-N", "-L", "ftp/127.0.0.1:0:127.0.0.1:21"].map(String::from));
    args.push(sshd.addr().to_string());
    for round in 0..10 {
        let mut child = Command::new(binary())
            .args(&args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ftp-tunnel");
        let stopped = KillOnDrop(child.id());
        let mut seen = Vec::new();
        // Read here, not on a polling thread, so the signal follows the line within a
        // millisecond or two.
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        for line in stderr.lines().map_while(Result::ok) {
            let listening = parse_listening(&strip_ansi(&line)).is_some();
            seen.push(line);
            if listening {
                assert!(kill_pid(child.id(), "TERM"));
                break;
            }
        }
        let status = poll_until(Duration::from_secs(10), || Ok(child.try_wait()?))
            .unwrap_or_else(|e| panic!("round {round}: no exit after SIGTERM: {e}"));
        // Reaped: its PID may be reused, so the guard must not kill it any more.
        std::mem::forget(stopped);
        assert!(
            status.success(),
            "round {round}: {status} after SIGTERM:\n{}",
            seen.join("\n")
        );
    }
}

/// Kills a process by PID when dropped (a failed assertion must not leave it running).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_pid(self.0, "KILL");
    }
}
