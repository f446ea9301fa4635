//! Test-only policy: configures fine, then allocates without end on every check (the memory
//! cap must stop it).

wit_bindgen::generate!({ world: "policy", path: "../../../wit/policy" });


struct Hog;

fn hoard() -> Verdict {
    let mut heap: Vec<Vec<u8>> = Vec::new();
    loop {
        heap.push(std::hint::black_box(vec![1u8; 1 << 20]));
        std::hint::black_box(&heap);
    }
}

impl Guest for Hog {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
    fn check_command(_command: Command) -> Verdict {
        hoard()
    }
    fn check_forward(_forward: DataForward) -> Verdict {
        hoard()
    }
}

export!(Hog);
