//! Server reply structure: RFC 959 section 4.2 multi-line rules.
//!
//! A multi-line reply opens with "NNN-" and ends at the first line that starts with the
//! same three digits followed by exactly one space. Everything in between, including
//! lines that look like other replies, is continuation text.

use std::borrow::Cow;

/// How one line fits into the reply structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyLine {
    /// Ends a reply: single-line "NNN text" / "NNN" or the closing "NNN text" of a multi-line reply.
    Final {
        /// The reply code.
        code: u16,
    },
    /// Opens a multi-line reply ("NNN-text").
    Start {
        /// The reply code.
        code: u16,
    },
    /// Inside a multi-line reply.
    Continuation,
    /// Not part of any reply (garbage outside a reply): relay it, interpret nothing.
    Unrecognized,
}

/// Tracks whether the server is inside a multi-line reply.
#[derive(Debug, Default, Clone)]
pub struct ReplyTracker {
    open: Option<u16>,
}

/// The three-digit code at the start of a line, if any. The first digit is 1..=6: 1-5 from
/// RFC 959, 6 for the protected replies of RFC 2228.
fn leading_code(content: &[u8]) -> Option<u16> {
    match content {
        [a @ b'1'..=b'6', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

impl ReplyTracker {
    /// A tracker outside any reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Classify one line's content (terminator stripped). Only three ASCII digits followed by
    /// exactly ' ' (or end of line, outside a multi-line reply) are a final line; "2x0", "+20",
    /// " 220", "220\t" never end a multi-line reply (vectors ML1, F5).
    pub fn classify(&mut self, content: &[u8]) -> ReplyLine {
        let code = leading_code(content);
        let sep = content.get(3).copied();
        if let Some(open) = self.open {
            if code == Some(open) && sep == Some(b' ') {
                self.open = None;
                return ReplyLine::Final { code: open };
            }
            return ReplyLine::Continuation;
        }
        match (code, sep) {
            (Some(code), None | Some(b' ')) => ReplyLine::Final { code },
            (Some(code), Some(b'-')) => {
                self.open = Some(code);
                ReplyLine::Start { code }
            }
            _ => ReplyLine::Unrecognized,
        }
    }

    /// The code of the multi-line reply in progress, if any.
    pub fn open_code(&self) -> Option<u16> {
        self.open
    }
}

/// The text of a reply line after the code and its separator, lossily decoded.
/// A line without a leading code is returned whole.
pub fn reply_text(content: &[u8]) -> Cow<'_, str> {
    let rest = match leading_code(content) {
        Some(_) => match content.get(3) {
            Some(b' ' | b'-') => &content[4..],
            None => &content[3..],
            Some(_) => content,
        },
        None => content,
    };
    String::from_utf8_lossy(rest)
}
