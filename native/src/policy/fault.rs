//! Why a policy call failed, in words an admin can act on, and the sanitising of the reasons
//! policies give.

use std::fmt;
use std::time::Duration;

use wasmtime::Trap;

/// The error a policy's memory limiter raises when the memory cap would be exceeded.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {cap} bytes hit (asked for {desired})")]
pub(crate) struct MemoryCapHit {
    /// The cap.
    pub cap: usize,
    /// What the guest asked to grow to.
    pub desired: usize,
}

/// Why a call into a policy did not produce a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The per-call deadline passed.
    Deadline(Duration),
    /// The memory cap was hit.
    MemoryCap(usize),
    /// The policy called an import it does not get (files, clock, randomness, stdio...).
    Capability(String),
    /// Any other trap (a panic, `unreachable`, a stack overflow...).
    Trap(String),
    /// The answer could not be read (bad string, bad discriminant) or the host failed.
    Malformed(String),
}

impl Fault {
    /// Classifies the error of a call; `memory_cap_hit` is the limiter's record, which holds
    /// even when the guest turned the failed growth into a trap of its own.
    pub(crate) fn classify(
        error: &wasmtime::Error,
        memory_cap_hit: Option<usize>,
        deadline: Duration,
    ) -> Self {
        if let Some(cap) = error.downcast_ref::<MemoryCapHit>().map(|hit| hit.cap) {
            return Fault::MemoryCap(cap);
        }
        if let Some(cap) = memory_cap_hit {
            return Fault::MemoryCap(cap);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => return Fault::Deadline(deadline),
            Some(trap) => return Fault::Trap(trap.to_string()),
            None => {}
        }
        let text = format!("{error:#}");
        if let Some(import) = unknown_import(&text) {
            // A Rust panic's first act is to write its message to stderr: for an admin that
            // is a crash, not an attempt at a capability (the log still names the import).
            if import.starts_with("wasi:cli/stderr") {
                return Fault::Trap(format!(
                    "called {import}, as a Rust panic does (policies get no stdio)"
                ));
            }
            return Fault::Capability(import.to_owned());
        }
        Fault::Malformed(one_line(&text, 300))
    }

    /// A few words for the FTP client's reply.
    pub fn short(&self) -> &'static str {
        match self {
            Fault::Deadline(_) => "took too long",
            Fault::MemoryCap(_) => "used too much memory",
            Fault::Capability(_) => "used a capability it does not get",
            Fault::Trap(_) => "crashed",
            Fault::Malformed(_) => "gave no usable answer",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Deadline(limit) => write!(f, "deadline of {limit:?} passed"),
            Fault::MemoryCap(cap) => write!(f, "memory cap of {} KiB hit", cap >> 10),
            Fault::Capability(import) => write!(
                f,
                "called {import}: policies get no files, environment, network, clock, \
                 randomness or stdio"
            ),
            Fault::Trap(trap) => write!(f, "trap: {trap}"),
            Fault::Malformed(error) => write!(f, "malformed answer: {error}"),
        }
    }
}

/// The import named by wasmtime's "unknown import" trap.
fn unknown_import(text: &str) -> Option<&str> {
    let start = text.find("unknown import: `")? + "unknown import: `".len();
    let len = text[start..].find('`')?;
    Some(&text[start..start + len])
}

/// `text` as one printable line of at most `max` characters.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        line.push('…');
    }
    line.trim().to_owned()
}

/// A policy's deny reason as it may appear in an FTP reply and a log line: one line, no
/// control characters, bounded, never empty.
pub(crate) fn sanitise_reason(reason: &str) -> String {
    let line = one_line(reason, 200);
    if line.is_empty() {
        "no reason given".to_owned()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(sanitise_reason("no\r\n226 fake"), "no  226 fake");
        assert_eq!(sanitise_reason("  "), "no reason given");
        assert_eq!(sanitise_reason(&"x".repeat(500)).chars().count(), 201);
    }

    #[test]
    fn unknown_imports_are_named() {
        let text = "error while executing: unknown import: `wasi:clocks/wall-clock@0.2.4#now` \
                    has not been defined";
        assert_eq!(
            unknown_import(text),
            Some("wasi:clocks/wall-clock@0.2.4#now")
        );
        assert_eq!(unknown_import("trap"), None);
    }

    #[test]
    fn a_panic_writing_to_stderr_is_a_crash_other_imports_are_capabilities() {
        let deadline = Duration::from_millis(10);
        let stderr = wasmtime::format_err!(
            "unknown import: `wasi:cli/stderr@0.2.6#get-stderr` has not been defined"
        );
        assert_eq!(Fault::classify(&stderr, None, deadline).short(), "crashed");
        let clock = wasmtime::format_err!(
            "unknown import: `wasi:clocks/wall-clock@0.2.6#now` has not been defined"
        );
        assert_eq!(
            Fault::classify(&clock, None, deadline),
            Fault::Capability("wasi:clocks/wall-clock@0.2.6#now".to_owned())
        );
        assert_eq!(
            Fault::classify(&clock, Some(1 << 20), deadline),
            Fault::MemoryCap(1 << 20)
        );
    }
}
