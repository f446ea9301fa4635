//! Test-only policy: "office hours only", by the wall clock. A policy has no clock, so each
//! triggered check must fail closed.

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });

/// Only commands whose argument, and data connections whose host, contain this misbehave;
/// everything else is allowed, so a test can show that the next call is served.
const TRIGGER: &str = "misbehave";

use std::time::{SystemTime, UNIX_EPOCH};

struct Clock;

fn office_hours() -> Verdict {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let hour = secs / 3600 % 24;
    if (8..18).contains(&hour) {
        Verdict::Allow
    } else {
        Verdict::Deny(format!("outside office hours (hour {hour} UTC)"))
    }
}

impl Guest for Clock {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
    fn check_command(command: Command) -> Verdict {
        if command.argument.contains(TRIGGER) {
            office_hours()
        } else {
            Verdict::Allow
        }
    }
    fn check_forward(forward: DataForward) -> Verdict {
        if forward.host.contains(TRIGGER) {
            office_hours()
        } else {
            Verdict::Allow
        }
    }
}

export!(Clock);
