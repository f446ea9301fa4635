//! Test-only policy: configures fine, then panics (a trap) on a trigger.

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });

/// Only commands whose argument, and data connections whose host, contain this misbehave;
/// everything else is allowed, so a test can show that the next call is served.
const TRIGGER: &str = "misbehave";

struct Trap;

impl Guest for Trap {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
    fn check_command(command: Command) -> Verdict {
        if command.argument.contains(TRIGGER) {
            panic!("this policy panics on {}", command.argument)
        }
        Verdict::Allow
    }
    fn check_forward(forward: DataForward) -> Verdict {
        if forward.host.contains(TRIGGER) {
            std::process::abort()
        }
        Verdict::Allow
    }
}

export!(Trap);
