//! The binary under test: starts `ftp-tunnel`, collects its stderr, parses its lines.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::netns::NetNs;
use crate::sshd::{SshServer, Sshd};
use crate::{Error, Result, kill_pid, poll_until};

/// Where the binary is: `$FTP_TUNNEL_BIN`, else `<workspace>/target/release/ftp-tunnel`.
pub fn binary() -> PathBuf {
    std::env::var_os("FTP_TUNNEL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/release/ftp-tunnel"))
}

/// One `data transfer finished` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLine {
    /// `session=`
    pub session: String,
    /// `forward=`
    pub forward: String,
    /// `mode=` (`passive` or `active`).
    pub mode: String,
    /// Bytes that crossed the SSH channel from the FTP client towards the FTP server.
    pub to_server: u64,
    /// Bytes that crossed the SSH channel from the FTP server towards the FTP client.
    pub to_client: u64,
    /// `ms=`
    pub ms: u64,
}

impl TransferLine {
    /// Parses a stderr line, if it is a transfer line.
    pub fn parse(line: &str) -> Option<Self> {
        if !line.contains("data transfer finished") {
            return None;
        }
        let field = |k: &str| -> Option<String> {
            let pat = format!("{k}=");
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(pat.as_str()))
                .map(|v| v.trim_matches(|c| c == '"' || c == ',').to_string())
        };
        Some(TransferLine {
            session: field("session").unwrap_or_default(),
            forward: field("forward").unwrap_or_default(),
            mode: field("mode")?,
            to_server: field("to_server")?.parse().ok()?,
            to_client: field("to_client")?.parse().ok()?,
            ms: field("ms").and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }
}

/// Removes ANSI colour sequences (in case the logger colours despite `NO_COLOR`).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters... final byte in '@'..='~'.
            if chars.next() == Some('[') {
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Parses `listening on ADDR:PORT` (ADDR may be `[::1]`) out of a line.
pub fn parse_listening(line: &str) -> Option<(String, u16)> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let word = rest.split_whitespace().next()?;
    let word = word.trim_end_matches([',', ';']);
    let (addr, port) = word.rsplit_once(':')?;
    Some((addr.to_string(), port.parse().ok()?))
}

/// A running ftp-tunnel; stopped with SIGTERM on Drop, which must make it exit 0.
pub struct Tunnel {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    listeners: Vec<(String, u16)>,
    args: Vec<String>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("args", &self.args)
            .field("listeners", &self.listeners)
            .finish()
    }
}

/// The usual arguments to reach `sshd` as root with its client key and known_hosts.
pub fn ssh_args(sshd: &dyn SshServer) -> Vec<String> {
    vec![
        "-p".into(),
        sshd.port().to_string(),
        "-l".into(),
        "root".into(),
        "-i".into(),
        sshd.client_key().display().to_string(),
        "-o".into(),
        format!("UserKnownHostsFile={}", sshd.known_hosts().display()),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
    ]
}

impl Tunnel {
    /// An FTP tunnel from 127.0.0.1:<free> to 127.0.0.1:`ftp_port` on the SSH server's side.
    pub fn ftp(sshd: &Sshd, ftp_port: u16) -> Result<Self> {
        Self::ftp_with(sshd, "127.0.0.1", ftp_port, &[])
    }

    /// Like [`Tunnel::ftp`] with a bind address and extra options placed before the host.
    pub fn ftp_with(sshd: &Sshd, bind: &str, ftp_port: u16, extra: &[&str]) -> Result<Self> {
        let mut args = ssh_args(sshd);
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("-L".into());
        args.push(format!("ftp/{bind}:0:127.0.0.1:{ftp_port}"));
        args.push(sshd.addr().to_string());
        Self::start(&args, 1)
    }

    /// Starts the binary with `args` and waits for `expect_listeners` `listening on` lines.
    pub fn start(args: &[String], expect_listeners: usize) -> Result<Self> {
        Self::start_program(&binary(), args, expect_listeners)
    }

    /// Like [`Tunnel::start`], with the tunnel running inside `ns` (`-R` tests: next to the
    /// FTP server it serves). `ip netns exec` execs the binary: the PID stays the tunnel's.
    pub fn start_in(ns: &NetNs, args: &[String], expect_listeners: usize) -> Result<Self> {
        let mut wrapped: Vec<String> = vec!["netns".into(), "exec".into(), ns.name().into()];
        wrapped.push(binary().display().to_string());
        wrapped.extend(args.iter().cloned());
        Self::start_program(
            std::path::Path::new("/usr/sbin/ip"),
            &wrapped,
            expect_listeners,
        )
    }

    /// Like [`Tunnel::start`] with another program speaking the same CLI contract (the
    /// harness checks itself against `tests/tools/fake_tunnel.py` this way).
    pub fn start_program(
        bin: &std::path::Path,
        args: &[String],
        expect_listeners: usize,
    ) -> Result<Self> {
        if !bin.exists() {
            return Err(Error::Setup(format!(
                "{} does not exist: build it (cargo build --release -p ftp-tunnel) or set FTP_TUNNEL_BIN",
                bin.display()
            )));
        }
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        // Colour codes would break the line parsing.
        cmd.env("NO_COLOR", "1");
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Spawn(bin.display().to_string(), e))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = child.stderr.take().map(|err| {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut l) = lines.lock() {
                        l.push(strip_ansi(&line));
                    }
                }
            })
        });
        let mut t = Tunnel {
            child: Some(child),
            lines,
            reader,
            listeners: Vec::new(),
            args: args.to_vec(),
        };
        let wait = poll_until(Duration::from_secs(20), || {
            let found: Vec<(String, u16)> = t
                .lines()
                .iter()
                .filter_map(|l| parse_listening(l))
                .collect();
            if found.len() >= expect_listeners {
                return Ok(Some(found));
            }
            if let Some(c) = t.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(Error::Setup(format!(
                    "ftp-tunnel exited early ({status}):\n{}",
                    t.lines().join("\n")
                )));
            }
            Ok(None)
        });
        match wait {
            Ok(found) => {
                t.listeners = found;
                Ok(t)
            }
            Err(e) => {
                t.dump();
                // Dropping `t` would report a second, confusing failure about its exit code.
                if let Some(mut c) = t.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                Err(e)
            }
        }
    }

    /// The address of the first listener, without brackets (`127.0.0.1` if none).
    pub fn first_host(&self) -> String {
        self.listeners
            .first()
            .map(|(a, _)| a.trim_start_matches('[').trim_end_matches(']').to_string())
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    /// The stderr lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The local port of the first listener.
    pub fn port(&self) -> u16 {
        self.listeners.first().map(|l| l.1).unwrap_or(0)
    }

    /// All `(address, port)` listeners announced.
    pub fn listeners(&self) -> &[(String, u16)] {
        &self.listeners
    }

    /// The PID of the tunnel process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The `data transfer finished` lines so far.
    pub fn transfer_lines(&self) -> Vec<TransferLine> {
        self.lines()
            .iter()
            .filter_map(|l| TransferLine::parse(l))
            .collect()
    }

    /// Waits for a transfer line satisfying `pred` (lines are logged after the data
    /// connection closes, which may be just after the client is done).
    pub fn wait_transfer(
        &self,
        timeout: Duration,
        pred: impl Fn(&TransferLine) -> bool,
    ) -> Result<TransferLine> {
        poll_until(timeout, || {
            Ok(self.transfer_lines().into_iter().find(|t| pred(t)))
        })
        .map_err(|_| {
            Error::Timeout(format!(
                "a matching transfer line; tunnel stderr:\n{}",
                self.lines().join("\n")
            ))
        })
    }

    /// Sends SIGTERM and waits up to `timeout`; returns the exit status and how long it took.
    pub fn terminate(&mut self, timeout: Duration) -> Result<(ExitStatus, Duration)> {
        let start = Instant::now();
        let Some(child) = self.child.as_mut() else {
            return Err(Error::Setup("tunnel already stopped".into()));
        };
        kill_pid(child.id(), "TERM");
        let status = self.wait_exit(timeout)?;
        Ok((status, start.elapsed()))
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            return Err(Error::Setup("tunnel already stopped".into()));
        };
        let status = poll_until(timeout, || Ok(child.try_wait()?));
        match status {
            Ok(s) => {
                self.child = None;
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                Ok(s)
            }
            Err(_) => Err(Error::Timeout(format!(
                "ftp-tunnel to exit within {timeout:?}"
            ))),
        }
    }

    /// Prints the tunnel's stderr.
    pub fn dump(&self) {
        eprintln!("----- ftp-tunnel stderr ({:?}) -----", self.args);
        for l in self.lines() {
            eprintln!("{l}");
        }
        eprintln!("----- end of ftp-tunnel stderr -----");
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            self.dump();
        }
        if self.child.is_none() {
            return;
        }
        let result = self.terminate(Duration::from_secs(5));
        if !matches!(result, Ok((s, _)) if s.success()) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            if !panicking {
                self.dump();
                panic!("ftp-tunnel did not exit 0 on SIGTERM: {result:?}");
            }
        }
    }
}

/// The outcome of running the binary to completion (for bad-input cases).
#[derive(Debug)]
pub struct Finished {
    /// The exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs the binary with `args`, expecting it to exit by itself within `timeout`; kills it
/// otherwise and reports a timeout.
pub fn run_to_exit(args: &[String], timeout: Duration) -> Result<Finished> {
    let bin = binary();
    let start = Instant::now();
    let mut child = Command::new(&bin)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Spawn(bin.display().to_string(), e))?;
    let err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    let status = poll_until(timeout, || Ok(child.try_wait()?));
    let status = match status {
        Ok(s) => s,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = reader.join().unwrap_or_default();
            return Err(Error::Timeout(format!(
                "ftp-tunnel {args:?} to exit within {timeout:?}; stderr:\n{stderr}"
            )));
        }
    };
    let stderr = strip_ansi(&reader.join().unwrap_or_default());
    Ok(Finished {
        status,
        stderr,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        let l = "2025-01-01T00:00:00Z  INFO ftp_tunnel: listening on 127.0.0.1:40123 (ftp/ -> 127.0.0.1:21)";
        assert_eq!(parse_listening(l), Some(("127.0.0.1".into(), 40123)));
        let l6 = "INFO ftp_tunnel: listening on [::1]:5000";
        assert_eq!(parse_listening(l6), Some(("[::1]".into(), 5000)));
        assert_eq!(parse_listening("listening on nothing"), None);
    }

    #[test]
    fn parses_transfer_lines() {
        let l = "INFO ftp_tunnel::data: data transfer finished session=3 forward=7 mode=passive to_server=0 to_client=5242880 ms=12";
        let t = TransferLine::parse(l).expect("parses");
        assert_eq!(t.mode, "passive");
        assert_eq!(t.to_client, 5_242_880);
        assert_eq!(t.to_server, 0);
        assert_eq!(t.session, "3");
        assert!(TransferLine::parse("INFO other line mode=x").is_none());
        let coloured = "\u{1b}[2mdata transfer finished\u{1b}[0m \u{1b}[3mmode\u{1b}[0m\u{1b}[2m=\u{1b}[0m\"active\" to_server=5 to_client=0";
        let t = TransferLine::parse(&strip_ansi(coloured)).expect("parses");
        assert_eq!((t.mode.as_str(), t.to_server), ("active", 5));
    }
}
