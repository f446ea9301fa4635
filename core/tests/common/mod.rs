//! Helpers shared by the core's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use ftp_tunnel_core::framing::{Line, LineFramer};

/// Frames the input pushed in the given pieces; returns every line and what stays pending.
pub fn frame_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
    cap: usize,
) -> (Vec<Line>, usize) {
    let mut framer = LineFramer::new(cap);
    let mut lines = Vec::new();
    for piece in pieces {
        framer.push(piece);
        while let Some(line) = framer.next_line() {
            lines.push(line);
        }
    }
    (lines, framer.pending())
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
