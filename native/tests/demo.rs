//! `ftp-tunnel demo` end to end: the built binary, its exit status and its verdict line.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Generous for a debug build on a 2-core machine; the release demo takes a few seconds.
const DEADLINE: Duration = Duration::from_secs(300);

/// Kills the child (by its PID, through the handle) if the test ends before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads a pipe to its end on a thread; the receiver gets the text when the pipe closes.
fn collect(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

#[test]
fn demo_runs_all_four_modes_through_the_tunnel() {
    let child = Command::new(env!("CARGO_BIN_EXE_ftp-tunnel"))
        .arg("demo")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ftp-tunnel demo");
    let mut child = KillOnDrop(child);
    let stdout = collect(child.0.stdout.take().expect("stdout pipe"));
    let stderr = collect(child.0.stderr.take().expect("stderr pipe"));

    // Both pipes close when the process exits; waiting on them needs no polling.
    let out = stdout
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("demo did not finish within {DEADLINE:?}"));
    let err = stderr.recv_timeout(DEADLINE).unwrap_or_default();
    let status = child.0.wait().expect("wait for ftp-tunnel demo");

    let context = format!("--- stdout\n{out}\n--- stderr\n{err}");
    assert!(status.success(), "demo exited with {status}\n{context}");
    let verdict = out
        .lines()
        .find(|l| l.starts_with("Result:"))
        .unwrap_or_else(|| panic!("no Result line\n{context}"));
    for mode in ["EPSV", "PASV", "EPRT", "PORT"] {
        assert!(
            verdict.contains(&format!("{mode} OK")),
            "{mode} not OK\n{context}"
        );
    }
    // The data really crossed the SSH connection, in both directions of forwarding.
    assert!(out.contains("passive: direct-tcpip"), "{context}");
    assert!(out.contains("active: forwarded-tcpip"), "{context}");
}
