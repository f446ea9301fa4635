//! Test-only policy: configures fine, then allocates without end on a trigger (the memory
//! cap must stop it).

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });

/// Only commands whose argument, and data connections whose host, contain this misbehave;
/// everything else is allowed, so a test can show that the next call is served.
const TRIGGER: &str = "misbehave";

struct Hog;

fn hoard() -> Verdict {
    let mut heap: Vec<Vec<u8>> = Vec::new();
    loop {
        // Big blocks, one byte written in each: the memory grows fast without spending the
        // call's deadline on filling pages, so it is the cap (not the deadline) that stops it.
        let mut block = Vec::with_capacity(4 << 20);
        block.push(1u8);
        heap.push(std::hint::black_box(block));
        std::hint::black_box(&heap);
    }
}

impl Guest for Hog {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
    fn check_command(command: Command) -> Verdict {
        if command.argument.contains(TRIGGER) {
            hoard()
        } else {
            Verdict::Allow
        }
    }
    fn check_forward(forward: DataForward) -> Verdict {
        if forward.host.contains(TRIGGER) {
            hoard()
        } else {
            Verdict::Allow
        }
    }
}

export!(Hog);
