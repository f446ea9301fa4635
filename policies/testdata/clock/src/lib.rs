//! Test-only policy: "office hours only", by the wall clock. A policy has no clock, so each
//! check must fail closed.

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });

use std::time::{SystemTime, UNIX_EPOCH};


struct Clock;

fn office_hours() -> Verdict {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
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
    fn check_command(_command: Command) -> Verdict {
        office_hours()
    }
    fn check_forward(_forward: DataForward) -> Verdict {
        office_hours()
    }
}

export!(Clock);
