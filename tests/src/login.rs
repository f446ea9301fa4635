//! Fixtures for the login tests: a real `ssh-agent`, an askpass script, a local user with a
//! password, and a runner that starts ftp-tunnel with a chosen environment and reports
//! whether it got its listener up (logged in) or how it exited.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::tunnel::{binary, parse_listening, strip_ansi};
use crate::{Error, Result, kill_pid, poll_until, run_checked};

/// The local user the password tests log in as (created once, idempotently).
pub const TEST_USER: &str = "ftptlogin";
/// Its password.
pub const TEST_PASSWORD: &str = "Corr3ct-horse";

/// Creates [`TEST_USER`] with [`TEST_PASSWORD`] if it does not exist (no home, no shell).
pub fn ensure_test_user() -> Result<()> {
    let exists = Command::new("id")
        .arg(TEST_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if !exists {
        // A concurrent test may have created it meanwhile: useradd's "already exists" is fine.
        let _ = Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", TEST_USER])
            .status();
    }
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Spawn("chpasswd".into(), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        writeln!(stdin, "{TEST_USER}:{TEST_PASSWORD}")?;
    }
    if !child.wait()?.success() {
        return Err(Error::Command("chpasswd".into()));
    }
    Ok(())
}

/// `sshd_config` lines letting [`TEST_USER`] in with a password (a `Match` block, because
/// the fixture's earlier `PasswordAuthentication no` would otherwise win).
pub fn password_sshd_lines() -> String {
    format!("Match User {TEST_USER}\n  PasswordAuthentication yes\n")
}

/// An executable script that prints `answer` (an `SSH_ASKPASS` program); it also appends
/// each prompt to `<path>.prompts`, so a test can see what was asked.
pub fn askpass_script(dir: &Path, name: &str, answer: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    let prompts = dir.join(format!("{name}.prompts"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nprintf '%s\\n' '{answer}'\n",
            prompts.display()
        ),
    )?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// A real `ssh-agent` on its own socket, killed by PID on Drop.
pub struct Agent {
    child: Option<Child>,
    socket: PathBuf,
}

impl Agent {
    /// Starts `ssh-agent -D -a SOCKET` and waits for the socket.
    pub fn start(dir: &Path) -> Result<Self> {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Spawn("ssh-agent".into(), e))?;
        let agent = Agent {
            child: Some(child),
            socket,
        };
        poll_until(Duration::from_secs(10), || {
            Ok(agent.socket.exists().then_some(()))
        })?;
        Ok(agent)
    }

    /// Loads a private key with `ssh-add`.
    pub fn add(&self, key: &Path) -> Result<()> {
        run_checked(
            Command::new("ssh-add")
                .arg(key)
                .env("SSH_AUTH_SOCK", &self.socket)
                .stdin(Stdio::null()),
        )
        .map(|_| ())
    }

    /// The socket, for `SSH_AUTH_SOCK`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The environment of a user whose home is `home` (HOME, plus `pairs`): with an empty home
/// there are no default keys, no ~/.ssh/config and no agent unless one is given.
pub fn home_env(home: &Path, pairs: &[(&str, &Path)]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([("HOME".to_owned(), home.display().to_string())]);
    for (name, value) in pairs {
        env.insert((*name).to_owned(), value.display().to_string());
    }
    env
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The first listener, if the tunnel came up (it was then stopped with SIGTERM).
    pub listening: Option<(String, u16)>,
    /// The exit status.
    pub status: ExitStatus,
    /// Its stderr.
    pub stderr: String,
}

/// Runs ftp-tunnel with `args` and exactly the environment `env` (plus PATH), no standard
/// input, until it prints a listener (then stops it with SIGTERM) or exits.
pub fn run(args: &[String], env: &BTreeMap<String, String>, timeout: Duration) -> Result<Outcome> {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // No controlling terminal either: prompts must go through SSH_ASKPASS.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Spawn(binary().display().to_string(), e))?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = child.stderr.take().map(|err| {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(err)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if let Ok(mut l) = lines.lock() {
                    l.push(strip_ansi(&line));
                }
            }
        })
    });
    let snapshot =
        |lines: &Arc<Mutex<Vec<String>>>| lines.lock().map(|l| l.clone()).unwrap_or_default();
    let waited = poll_until(timeout, || {
        if let Some(found) = snapshot(&lines).iter().find_map(|l| parse_listening(l)) {
            return Ok(Some(Some(found)));
        }
        Ok(child.try_wait()?.map(|_| None))
    });
    let listening = match waited {
        Ok(l) => l,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout(format!(
                "{e}; stderr:\n{}",
                snapshot(&lines).join("\n")
            )));
        }
    };
    if listening.is_some() {
        kill_pid(child.id(), "TERM");
    }
    let status = match poll_until(Duration::from_secs(10), || Ok(child.try_wait()?)) {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    if let Some(r) = reader {
        let _ = r.join();
    }
    Ok(Outcome {
        listening,
        status,
        stderr: snapshot(&lines).join("\n"),
    })
}
