//! Test-only policy: decides by a file it tries to read. A policy has no filesystem, so each
//! check must fail closed.

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });


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
    fn check_command(_command: Command) -> Verdict {
        from_file()
    }
    fn check_forward(_forward: DataForward) -> Verdict {
        from_file()
    }
}

export!(ReadsFile);
