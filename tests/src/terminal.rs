//! ftp-tunnel on a real pseudo-terminal, as a person at a shell runs it: its prompts
//! (host key confirmation, passphrases) are answered by typing, and the run ends once the
//! tunnel is up (stopped then by PID with SIGTERM) or once it exits.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use crate::tunnel::{binary, parse_listening, strip_ansi};
use crate::{Error, Result, kill_pid, poll_until};

/// What to type when the terminal shows a prompt.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Text the prompt contains.
    pub prompt: &'static str,
    /// The line typed in reply (Enter added).
    pub typed: String,
}

/// How a terminal run ended.
#[derive(Debug)]
pub struct TerminalRun {
    /// The first listener, if the tunnel came up.
    pub listening: Option<(String, u16)>,
    /// The exit code (SIGTERM after coming up gives 0).
    pub code: Option<u32>,
    /// Everything the terminal showed.
    pub screen: String,
    /// How many of the answers were typed.
    pub answered: usize,
}

/// Runs ftp-tunnel with `args` and exactly `env` (plus PATH) on a new pseudo-terminal,
/// typing `answers` in order as their prompts appear.
pub fn run_on_terminal(
    args: &[String],
    env: &BTreeMap<String, String>,
    answers: &[Answer],
    timeout: Duration,
) -> Result<TerminalRun> {
    let setup = |e: &dyn std::fmt::Display| Error::Setup(format!("pseudo-terminal: {e}"));
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 50,
            cols: 250,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| setup(&e))?;
    let mut cmd = CommandBuilder::new(binary());
    cmd.args(args);
    cmd.env_clear();
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.env("RUST_LOG", "info");
    cmd.env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = pty.slave.spawn_command(cmd).map_err(|e| setup(&e))?;
    drop(pty.slave);
    let pid = child.process_id();
    let mut reader = pty.master.try_clone_reader().map_err(|e| setup(&e))?;
    let mut writer = pty.master.take_writer().map_err(|e| setup(&e))?;
    let screen = Arc::new(Mutex::new(String::new()));
    let reading = {
        let screen = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends when the terminal closes (EIO once the child and its copies are gone).
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = screen.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        })
    };
    let shown = || screen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut answered = 0;
    // Where the next prompt is looked for: after the last one answered.
    let mut seen_up_to = 0;
    let waited = poll_until(timeout, || {
        let text = shown();
        if let Some(next) = answers.get(answered)
            && let Some(at) = text[seen_up_to..].find(next.prompt)
        {
            writer.write_all(format!("{}\n", next.typed).as_bytes())?;
            writer.flush()?;
            seen_up_to += at + next.prompt.len();
            answered += 1;
        }
        if let Some(found) = text
            .lines()
            .map(strip_ansi)
            .find_map(|l| parse_listening(&l))
        {
            return Ok(Some(Some(found)));
        }
        Ok(child.try_wait()?.map(|_| None))
    });
    let stop = |child: &mut Box<dyn portable_pty::Child + Send + Sync>| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let listening = match waited {
        Ok(l) => l,
        Err(e) => {
            stop(&mut child);
            return Err(Error::Timeout(format!("{e}; terminal:\n{}", shown())));
        }
    };
    if listening.is_some()
        && let Some(pid) = pid
    {
        kill_pid(pid, "TERM");
    }
    let status = match poll_until(Duration::from_secs(10), || Ok(child.try_wait()?)) {
        Ok(s) => s,
        Err(e) => {
            stop(&mut child);
            return Err(e);
        }
    };
    drop(writer);
    drop(pty.master);
    let _ = reading.join();
    Ok(TerminalRun {
        listening,
        code: Some(status.exit_code()),
        screen: shown(),
        answered,
    })
}
