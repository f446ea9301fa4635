//! Test-only policy: decides by a file it tries to read. A policy has no filesystem, so each
//! triggered check must fail closed.

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });

/// Only commands whose argument, and data connections whose host, contain this misbehave;
/// everything else is allowed, so a test can show that the next call is served.
const TRIGGER: &str = "misbehave";

struct ReadsFile;

fn from_file() -> Verdict {
    match std::fs::read_to_string("/etc/hostname") {
        Ok(text) => Verdict::Deny(format!("read the host's file: {}", text.trim())),
        Err(e) => Verdict::Deny(format!("no file: {e}")),
    }
}

impl Guest for ReadsFile {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
    fn check_command(command: Command) -> Verdict {
        if command.argument.contains(TRIGGER) {
            from_file()
        } else {
            Verdict::Allow
        }
    }
    fn check_forward(forward: DataForward) -> Verdict {
        if forward.host.contains(TRIGGER) {
            from_file()
        } else {
            Verdict::Allow
        }
    }
}

export!(ReadsFile);
