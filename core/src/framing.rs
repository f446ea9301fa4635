//! Line framing for one direction of a control connection.
//!
//! Lines end at LF (CRLF or bare LF). Nothing is ever dropped or altered: every byte pushed
//! comes out again, in order, in some [`Line::raw`], so relaying is byte-exact. Memory is
//! bounded by the line cap: a line longer than the cap comes out in chunks marked
//! [`Line::overlong`], which the caller relays without interpreting.

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

    /// Append received bytes (any split; never allocates beyond max_line + the pushed chunk).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
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
        out
    }

    /// True while the framer is inside a line that exceeded the cap.
    pub fn in_overlong_line(&self) -> bool {
        self.in_overlong
    }
}
