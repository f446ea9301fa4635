//! Test-only policy: denies everything, with a reason that repeats what it was given, so a
//! test can see exactly what the host passes to policies (and that passwords are masked).
//! Its settings come back too: `check-command` denies with `settings=[...]` appended.

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });

use std::cell::RefCell;

use ftp_tunnel::policy::types::DataMode;

thread_local! {
    static SETTINGS: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Echo;

impl Guest for Echo {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let text: Vec<String> = settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
        SETTINGS.with(|s| *s.borrow_mut() = text.join(","));
        Ok(())
    }
    fn check_command(c: Command) -> Verdict {
        let settings = SETTINGS.with(|s| s.borrow().clone());
        Verdict::Deny(format!(
            "session={} ssh-user={} client={} server={} ftp-user={} verb={} argument={} settings=[{settings}]",
            c.session,
            c.ssh_user,
            c.client,
            c.server,
            c.ftp_user.as_deref().unwrap_or("-"),
            c.verb,
            c.argument
        ))
    }
    fn check_forward(f: DataForward) -> Verdict {
        let mode = match f.mode {
            DataMode::Passive => "passive",
            DataMode::Active => "active",
        };
        Verdict::Deny(format!(
            "session={} mode={mode} host={} port={}",
            f.session, f.host, f.port
        ))
    }
}

export!(Echo);
