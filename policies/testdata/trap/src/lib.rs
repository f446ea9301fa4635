//! Test-only policy: configures fine, then panics on every check (a trap).

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });


struct Trap;

impl Guest for Trap {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
    fn check_command(command: Command) -> Verdict {
        panic!("this policy always panics ({})", command.verb)
    }
    fn check_forward(_forward: DataForward) -> Verdict {
        std::process::abort()
    }
}

export!(Trap);
