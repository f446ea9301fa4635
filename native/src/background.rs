//! `-f`: go to the background once logged in and every forward is up.
//!
//! Forking a process that runs a multi-threaded async runtime is unsound, so the
//! foreground process starts itself again (same arguments, standard input from
//! `/dev/null`) and waits: the copy does the work, says "ready" on a pipe once the tunnel
//! is up, and the foreground process then exits 0, as `ssh -f` returns to the shell. Until
//! then the copy's standard error is relayed, so prompts and errors are seen; afterwards it
//! goes nowhere, as with `ssh -f` (use `-E` to keep a log). A copy that fails exits with its
//! own status, which the foreground process passes on.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

/// Set in the background copy's environment.
const CHILD_ENV: &str = "FTP_TUNNEL_BACKGROUND_CHILD";
/// What the copy writes to its standard output once the tunnel is up.
const READY: &str = "ftp-tunnel-ready";

/// Whether this process is the background copy.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// In the foreground process: starts the copy and waits until it is ready or gone.
pub fn run_in_background() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "ftp-tunnel: -f: cannot find my own executable: {e}"
            );
            return ExitCode::from(255);
        }
    };
    let mut child = match Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "ftp-tunnel: -f: cannot start the background process: {e}"
            );
            return ExitCode::from(255);
        }
    };
    if let Some(stderr) = child.stderr.take() {
        // Relayed until this process exits; the copy's later writes then fail quietly.
        std::thread::spawn(move || {
            let mut out = std::io::stderr();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(out, "{line}");
            }
        });
    }
    let ready = child.stdout.take().is_some_and(|stdout| {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l == READY)
    });
    if ready {
        return ExitCode::SUCCESS;
    }
    match child.wait() {
        Ok(status) => ExitCode::from(
            status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(255),
        ),
        Err(_) => ExitCode::from(255),
    }
}

/// In the copy: tells the foreground process that the tunnel is up, and from now on
/// ignores the terminal's hangup.
pub fn announce_ready() {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{READY}");
    let _ = out.flush();
    if let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move { while hangup.recv().await.is_some() {} });
    }
}
