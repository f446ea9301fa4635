//! Process lifecycle: clean exit on signals, a clear failure when the SSH server goes.

use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
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
    let args = forward_args(&sshd, 21);
    for round in 0..10 {
        let mut started = Started::spawn(&args);
        assert!(kill_pid(started.child.id(), "TERM"));
        // The rest of stderr (a panic message, say) is read beside the wait for the exit.
        let stderr = started.stderr.take().expect("stderr");
        let rest = std::thread::spawn(move || stderr.map_while(Result::ok).collect::<Vec<_>>());
        let status = started.wait_exit();
        started.seen.extend(rest.join().expect("stderr reader"));
        assert!(
            status.success(),
            "round {round}: {status} after SIGTERM:\n{}",
            started.seen.join("\n")
        );
    }
}

/// A tunnel whose standard error nobody reads any more (after `-f`, or `2>&1 | head -1`)
/// keeps serving and still exits 0 on SIGTERM: a log line that cannot be written is dropped.
/// (tracing-subscriber reports a failed write with eprintln!, which panics on a closed pipe:
/// that once killed every session that logged, and turned SIGTERM into exit 101.)
#[test]
fn closed_stderr_costs_no_session_and_no_clean_exit() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let mut started = Started::spawn(&forward_args(&lab.sshd, lab.server.port()));
    drop(started.stderr.take());
    for _ in 0..3 {
        let mut ftp = open_session(&lab, started.port);
        ftp.epsv().expect("EPSV through a tunnel that cannot log");
        assert_eq!(ftp.cmd("NOOP").expect("NOOP").code, 200);
    }
    assert!(kill_pid(started.child.id(), "TERM"));
    let status = started.wait_exit();
    assert!(
        status.success(),
        "{status} after SIGTERM with stderr closed"
    );
}

/// `-N -L ftp/127.0.0.1:0:127.0.0.1:FTP_PORT` to `sshd`.
fn forward_args(sshd: &Sshd, ftp_port: u16) -> Vec<String> {
    let mut args = ssh_args(sshd);
    args.extend(["-N".to_owned(), "-L".to_owned()]);
    args.push(format!("ftp/127.0.0.1:0:127.0.0.1:{ftp_port}"));
    args.push(sshd.addr().to_string());
    args
}

/// The binary, started with its standard error on a pipe read up to its "listening on" line.
struct Started {
    child: Child,
    /// The rest of standard error, unread.
    stderr: Option<Lines<BufReader<ChildStderr>>>,
    /// The lines read so far.
    seen: Vec<String>,
    /// The port of the `-L` listener.
    port: u16,
}

impl Started {
    fn spawn(args: &[String]) -> Started {
        let mut child = Command::new(binary())
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ftp-tunnel");
        // Read here, not on a polling thread: a signal sent on return follows the line
        // within a millisecond or two.
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut started = Started {
            child,
            stderr: None,
            seen: Vec::new(),
            port: 0,
        };
        for line in stderr.by_ref().map_while(Result::ok) {
            let listening = parse_listening(&strip_ansi(&line));
            started.seen.push(line);
            if let Some((_, port)) = listening {
                started.port = port;
                started.stderr = Some(stderr);
                return started;
            }
        }
        panic!("no \"listening on\" line:\n{}", started.seen.join("\n"));
    }

    /// The exit status, within 10 s.
    fn wait_exit(&mut self) -> ExitStatus {
        poll_until(Duration::from_secs(10), || Ok(self.child.try_wait()?))
            .unwrap_or_else(|e| panic!("no exit after SIGTERM: {e}"))
    }
}

impl Drop for Started {
    /// A failed assertion must not leave the process running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
