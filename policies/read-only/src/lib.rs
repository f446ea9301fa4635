//! An ftp-tunnel policy that makes an FTP server read-only through the tunnel: commands that
//! store, append, delete, rename or create anything, and `SITE` (CHMOD and friends), are
//! denied; everything else, data connections included, is allowed.
//!
//! Settings: none (any setting is refused, so that a typo does not go unnoticed).

wit_bindgen::generate!({ world: "policy", path: "../../wit/policy" });

/// Verbs that change something on the server.
const WRITES: [&str; 9] = [
    "STOR", "STOU", "APPE", "DELE", "RNFR", "RNTO", "MKD", "RMD", "SITE",
];

struct ReadOnly;

impl Guest for ReadOnly {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        match settings.first() {
            None => Ok(()),
            Some((name, _)) => Err(format!("read-only takes no settings, got {name:?}")),
        }
    }

    fn check_command(command: Command) -> Verdict {
        // Old clients send the RFC 775 spellings XMKD/XRMD.
        let verb = command
            .verb
            .strip_prefix('X')
            .filter(|v| v.len() == 3)
            .unwrap_or(&command.verb);
        if WRITES.contains(&verb) || WRITES.contains(&command.verb.as_str()) {
            Verdict::Deny(format!(
                "{} is not allowed: this server is read-only",
                command.verb
            ))
        } else {
            Verdict::Allow
        }
    }

    fn check_forward(_forward: DataForward) -> Verdict {
        Verdict::Allow
    }
}

export!(ReadOnly);
