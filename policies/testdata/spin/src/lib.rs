//! Test-only policy: configures fine, then never returns from a check (the deadline must
//! stop it).

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });


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
    fn check_command(_command: Command) -> Verdict {
        forever()
    }
    fn check_forward(_forward: DataForward) -> Verdict {
        forever()
    }
}

export!(Spin);
