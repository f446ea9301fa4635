//! Asking the user for a passphrase, a password or a one-time code, as OpenSSH's
//! `read_passphrase` does: on the terminal (`/dev/tty`, no echo), or through the
//! `SSH_ASKPASS` program when there is no terminal and a display, or always with
//! `SSH_ASKPASS_REQUIRE=force`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};

/// OpenSSH's default askpass program.
const DEFAULT_ASKPASS: &str = "/usr/bin/ssh-askpass";

/// How a question would be asked, if at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Asker {
    /// `/dev/tty`.
    Terminal,
    /// This askpass program.
    Askpass(String),
}

/// Which way OpenSSH would ask now; `None` when it could not ask at all.
pub(crate) fn asker() -> Option<Asker> {
    let require = std::env::var("SSH_ASKPASS_REQUIRE").unwrap_or_default();
    let program = std::env::var("SSH_ASKPASS")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_ASKPASS.to_owned());
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    let terminal = std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_ok();
    let askpass = match require.as_str() {
        "force" => true,
        "never" => false,
        "prefer" => display,
        _ => display && !terminal,
    };
    if askpass {
        Some(Asker::Askpass(program))
    } else if terminal || std::fs::File::open("/dev/tty").is_ok() {
        Some(Asker::Terminal)
    } else {
        None
    }
}

/// Asks `prompt`; `None` when there is no way to ask or the user cancelled.
pub(crate) async fn ask(prompt: String, echo: bool) -> Option<String> {
    let asker = asker()?;
    tokio::task::spawn_blocking(move || match asker {
        Asker::Terminal => ask_terminal(&prompt, echo),
        Asker::Askpass(program) => ask_program(&program, &prompt, echo),
    })
    .await
    .ok()
    .flatten()
}

fn ask_terminal(prompt: &str, echo: bool) -> Option<String> {
    if echo {
        let mut tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        tty.write_all(prompt.as_bytes()).ok()?;
        tty.flush().ok()?;
        let mut line = String::new();
        std::io::BufReader::new(tty).read_line(&mut line).ok()?;
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        rpassword::prompt_password(prompt).ok()
    }
}

fn ask_program(program: &str, prompt: &str, echo: bool) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.arg(prompt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if echo {
        // OpenSSH's hint to askpass programs that the answer is not secret.
        cmd.env("SSH_ASKPASS_PROMPT", "none");
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!("cannot run askpass program {program}: {e}");
            return None;
        }
    };
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.trim_end_matches(['\r', '\n']).to_owned())
}
