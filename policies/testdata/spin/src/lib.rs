//! Test-only policy: configures fine, then never returns from a triggered check (the
//! deadline must stop it).

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });

/// Only commands whose argument, and data connections whose host, contain this misbehave;
/// everything else is allowed, so a test can show that the next call is served.
const TRIGGER: &str = "misbehave";

struct Spin;

fn forever() -> Verdict {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Guest for Spin {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
    fn check_command(command: Command) -> Verdict {
        if command.argument.contains(TRIGGER) {
            forever()
        } else {
            Verdict::Allow
        }
    }
    fn check_forward(forward: DataForward) -> Verdict {
        if forward.host.contains(TRIGGER) {
            forever()
        } else {
            Verdict::Allow
        }
    }
}

export!(Spin);
