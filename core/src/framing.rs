//! Line framing for one direction of a control connection.
//!
//! Lines end at LF (CRLF or bare LF). Nothing is ever dropped or altered: every byte pushed
//! comes out again, in order, in some [`Line::raw`], so relaying is byte-exact. A line longer
//! than the cap comes out in chunks marked [`Line::overlong`], which the caller relays
//! without interpreting.
//!
//! # Memory bound
//!
//! With `M` the cap and `P` the bytes pushed but not yet returned ([`LineFramer::pending`]):
//! - A consumer that takes every line after each push (so `P < M` before the next push)
//!   never has more than `M + C` bytes allocated while it pushes a chunk of `C` bytes, and
//!   at most `M` once the lines are taken: a 1 MiB push is given back as its lines go.
//! - Bytes left untaken are all held (nothing is dropped); the allocation is then at most
//!   `2 * P` (amortized growth), and shrinks again as lines are taken.
//!
//! In short, after every call: [`LineFramer::allocated`] `<= max(M, 2 * P)`, and
//! `<= M` whenever `P < M`.

/// One framed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Exactly the bytes received, terminator included (CRLF or bare LF).
    pub raw: Vec<u8>,
    /// This is a chunk of a line longer than the cap: relay it unchanged, do not interpret it.
    /// Every chunk of such a line, including the one with its terminator, has this set.
    pub overlong: bool,
}

impl Line {
    /// The content without the CR/LF terminator.
    pub fn content(&self) -> &[u8] {
        match self.raw.strip_suffix(b"\n") {
            Some(c) => c.strip_suffix(b"\r").unwrap_or(c),
            None => &self.raw,
        }
    }

    /// True if the line ended with a terminator (false for a non-final overlong chunk).
    pub fn is_terminated(&self) -> bool {
        self.raw.ends_with(b"\n")
    }
}

/// Splits a byte stream into lines, with a cap on the length of one line.
#[derive(Debug, Clone)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Start of the unreturned bytes in `buf`; compaction is deferred to `push`, so that
    /// returning many short lines from one read costs no repeated shifting.
    start: usize,
    max_line: usize,
    /// Inside a line that exceeded the cap: the following chunks are overlong too.
    in_overlong: bool,
}

impl Default for LineFramer {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_LINE)
    }
}

impl LineFramer {
    /// Default cap on one line, terminator included.
    pub const DEFAULT_MAX_LINE: usize = 8192;

    /// A framer whose lines (terminator included) are at most `max_line` bytes; longer lines
    /// come out as overlong chunks of at most `max_line` bytes. A cap below 2 is raised to 2.
    pub fn new(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max_line: max_line.max(2),
            in_overlong: false,
        }
    }

    /// Append received bytes, in any split (see the module's memory bound).
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        let pending = self.buf.len();
        let needed = pending + bytes.len();
        if needed > self.buf.capacity() {
            // Vec's own doubling could allocate twice what is needed; grow by doubling only
            // up to one line's worth, or while the consumer leaves lines untaken.
            let doubled = needed.max(2 * self.buf.capacity());
            let target = if needed <= self.max_line {
                doubled.min(self.max_line)
            } else if pending < self.max_line {
                needed
            } else {
                doubled
            };
            self.buf.reserve_exact(target - pending);
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Moves the unreturned bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Gives memory back once the lines that needed it are taken: down to one line's worth
    /// when less than that is pending, or to what is pending when that is under half.
    fn shrink(&mut self) {
        let pending = self.pending();
        let capacity = self.buf.capacity();
        if capacity > self.max_line && (pending < self.max_line || 2 * pending < capacity) {
            self.compact();
            self.buf.shrink_to(pending.max(self.max_line));
        }
    }

    /// Next complete line (or overlong chunk), if any.
    pub fn next_line(&mut self) -> Option<Line> {
        let avail = &self.buf[self.start..];
        if avail.is_empty() {
            return None;
        }
        let window = &avail[..avail.len().min(self.max_line)];
        let (len, terminated) = match window.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None if window.len() == self.max_line => (self.max_line, false),
            None => return None,
        };
        let raw = avail[..len].to_vec();
        self.start += len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.shrink();
        let overlong = self.in_overlong || !terminated;
        self.in_overlong = !terminated;
        Some(Line { raw, overlong })
    }

    /// Bytes buffered but not yet returned (a partial line).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes the buffered partial line, e.g. to relay it when the connection closes.
    pub fn take_pending(&mut self) -> Vec<u8> {
        let out = self.buf[self.start..].to_vec();
        self.buf.clear();
        self.start = 0;
        self.shrink();
        out
    }

    /// Bytes the framer has allocated (its buffer's capacity), for checking the memory
    /// bound of the module documentation.
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// The cap on one line, terminator included.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// True while the framer is inside a line that exceeded the cap.
    pub fn in_overlong_line(&self) -> bool {
        self.in_overlong
    }
}
