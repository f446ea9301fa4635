//! End-to-end test harness for ftp-tunnel: real OpenSSH sshd, real FTP servers (vsftpd,
//! pyftpdlib) and real FTP clients (curl, Python ftplib, lftp), each test in its own
//! network namespace so that the FTP server is reachable only through SSH.
//!
//! Every fixture is a Drop guard that kills what it started by PID, also when the test
//! panics, and prints its logs when the test failed.
#![forbid(unsafe_code)]

pub mod checked;
pub mod clients;
pub mod dropbear;
pub mod envoy;
pub mod files;
pub mod lab;
pub mod login;
pub mod netns;
pub mod peers;
pub mod policies;
pub mod pyftpd;
pub mod rawftp;
pub mod remote_lab;
pub mod sshd;
pub mod terminal;
pub mod tunnel;
pub mod vsftpd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What can go wrong while setting up or driving a fixture.
#[derive(thiserror::Error)]
pub enum Error {
    /// A program could not be started at all.
    #[error("cannot run {0}: {1}")]
    Spawn(String, #[source] std::io::Error),
    /// A setup command ran but failed.
    #[error("command failed: {0}")]
    Command(String),
    /// A fixture could not be prepared.
    #[error("setup failed: {0}")]
    Setup(String),
    /// Something did not happen within its deadline.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// Local I/O (temp files, sockets).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An FTP client or peer misbehaved.
    #[error("ftp: {0}")]
    Ftp(String),
}

// Tests report errors through `expect`, which prints Debug: make that the readable,
// multi-line Display text (tunnel stderr, client transcripts) instead of an escaped string.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An FTP server fixture running inside a namespace on 127.0.0.1.
pub trait FtpServer {
    /// Its control port on 127.0.0.1 inside the namespace.
    fn port(&self) -> u16;
    /// The login name.
    fn user(&self) -> &str;
    /// The password.
    fn pass(&self) -> &str;
    /// The directory (FTP path, relative to the login directory) where uploads are allowed.
    fn upload_dir(&self) -> &str;
    /// The same directory on the local filesystem.
    fn upload_dir_local(&self) -> PathBuf;
    /// The server's log file.
    fn log_path(&self) -> PathBuf;
    /// A short name for messages.
    fn name(&self) -> &'static str;
}

/// Runs a command to completion and fails with its output if it exits non-zero.
pub fn run_checked(cmd: &mut Command) -> Result<String> {
    let desc = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Spawn(desc.clone(), e))?;
    if !out.status.success() {
        return Err(Error::Command(format!(
            "{desc}: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Calls `f` every 20 ms until it yields `Some`, an error, or `timeout` passes.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout(format!("condition after {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (e.g. "TERM", "KILL") to `pid` with the `kill` command (no unsafe code).
pub fn kill_pid(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Kills `child` and every process it forked (SIGKILL), then reaps it.
pub fn kill_tree(child: &mut Child) {
    // Children first: once the parent is gone they are reparented and harder to find.
    for d in descendants(child.id()) {
        kill_pid(d, "KILL");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// All descendants of `pid`, found through /proc (deepest last).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // The command name may contain spaces and parentheses: parse after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(cur) = frontier.pop() {
        for &(p, pp) in &parents {
            if pp == cur && !out.contains(&p) {
                out.push(p);
                frontier.push(p);
            }
        }
    }
    out
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The Python interpreter the harness uses for pyftpdlib and ftplib.
pub fn python() -> PathBuf {
    std::env::var_os("FTP_TUNNEL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Prints a fixture's log file to stderr under a header, if the current thread is panicking.
pub fn dump_log_if_panicking(what: &str, path: &Path) {
    if std::thread::panicking() {
        dump_log(what, path);
    }
}

/// Prints a log file to stderr under a header (the last 200 lines).
pub fn dump_log(what: &str, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<unreadable: {e}>"));
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(200);
    eprintln!("----- {what} log ({}) -----", path.display());
    for l in &lines[start..] {
        eprintln!("{l}");
    }
    eprintln!("----- end of {what} log -----");
}

/// A temporary directory that the unprivileged FTP server processes can traverse.
pub fn open_tempdir(prefix: &str) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Kills a child process (by PID) when dropped, also when the test panics.
#[derive(Debug)]
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port that was free on 127.0.0.1 a moment ago (for programs that need a number).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits until a TCP connection to `addr` succeeds (for servers in the root namespace).
pub fn wait_connectable(addr: std::net::SocketAddr, timeout: Duration) -> Result<()> {
    poll_until(timeout, || {
        Ok(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .ok()
                .map(|_| ()),
        )
    })
    .map_err(|_| Error::Timeout(format!("{addr} accepting connections")))
}
