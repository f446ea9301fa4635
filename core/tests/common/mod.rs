//! Helpers shared by the core's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

pub mod codec_checks;
pub mod session_input;
pub mod session_model;

use ftp_tunnel_core::framing::{Line, LineFramer};

/// Frames the input pushed in the given pieces; returns every line and what stays pending.
/// Checks the framer's memory bound after every call.
pub fn frame_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
    cap: usize,
) -> (Vec<Line>, usize) {
    let mut framer = LineFramer::new(cap);
    let mut lines = Vec::new();
    for piece in pieces {
        let before = framer.pending();
        framer.push(piece);
        check_bound(&framer);
        // The consumer below takes every line, so the push stays within cap + piece.
        assert!(before < framer.max_line());
        assert!(framer.allocated() <= framer.max_line() + piece.len());
        while let Some(line) = framer.next_line() {
            check_bound(&framer);
            lines.push(line);
        }
    }
    (lines, framer.pending())
}

/// The framer's documented memory bound: at most `max(cap, 2 * pending)` allocated, and at
/// most `cap` while less than `cap` is pending.
pub fn check_bound(framer: &LineFramer) {
    let (cap, pending, allocated) = (framer.max_line(), framer.pending(), framer.allocated());
    assert!(
        allocated <= cap.max(2 * pending),
        "{allocated} allocated for {pending} pending, cap {cap}"
    );
    if pending < cap {
        assert!(
            allocated <= cap,
            "{allocated} allocated for {pending} pending, cap {cap}"
        );
    }
}

/// xorshift64: deterministic, no extra crates.
pub struct Rng(pub u64);

impl Rng {
    /// The next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
