//! Answering the FTP client from the client direction, which a proxy-wasm network filter
//! cannot do directly.
//!
//! While Envoy hands the filter client bytes it can only change what goes on to the server;
//! bytes for the client can only be put into the server's reply stream. So when the core
//! answers a client command itself (AUTH TLS refused, a bounce PORT refused, ...), the filter
//! sends the server a `NOOP` in the command's place and, when the NOOP's reply comes back,
//! replaces that reply with the core's answer. The client sees its answer exactly where the
//! command's reply belongs, also when it pipelines commands.
//!
//! [`ReplySlots`] keeps one slot per command sent to the server, in order, and walks the
//! server's replies (RFC 959 multi-line rules, from the core): a greeting or a 1xx reply
//! takes no slot, every other reply takes the next one.

use std::collections::VecDeque;

use ftp_tunnel_core::framing::LineFramer;
use ftp_tunnel_core::reply::{ReplyLine, ReplyTracker};

/// What the filter sends the server in place of a command the core answered itself.
pub const PLACEHOLDER_COMMAND: &[u8] = b"NOOP\r\n";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// A command the server answers: its reply goes to the core.
    Relay,
    /// A placeholder NOOP: its reply is replaced by these bytes.
    Local(Vec<u8>),
}

/// A piece of the server's byte stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerPiece {
    /// Server bytes (whole lines, or an overlong line's chunk) for the core.
    Relay(Vec<u8>),
    /// A placeholder's reply was dropped: these bytes go to the client instead.
    Local(Vec<u8>),
}

/// Whose reply the current (multi-line) reply is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// The greeting or a preliminary reply: takes no slot.
    Unslotted,
    /// A reply that took a slot.
    Slotted(Slot),
}

/// See the module documentation.
#[derive(Debug)]
pub struct ReplySlots {
    framer: LineFramer,
    tracker: ReplyTracker,
    slots: VecDeque<Slot>,
    greeted: bool,
    open: Option<Owner>,
}

impl ReplySlots {
    /// Slots for a new control connection; `max_line` as the core's.
    pub fn new(max_line: usize) -> Self {
        Self {
            framer: LineFramer::new(max_line.max(512)),
            tracker: ReplyTracker::new(),
            slots: VecDeque::new(),
            greeted: false,
            open: None,
        }
    }

    /// A command line went to the server: its reply will be relayed.
    pub fn command_sent(&mut self) {
        self.slots.push_back(Slot::Relay);
    }

    /// A [`PLACEHOLDER_COMMAND`] went to the server: its reply becomes `answer`.
    pub fn placeholder_sent(&mut self, answer: Vec<u8>) {
        self.slots.push_back(Slot::Local(answer));
    }

    /// Commands sent whose final reply has not come yet.
    pub fn pending(&self) -> usize {
        self.slots.len()
    }

    /// Bytes the server sent; returns what to do with them, in order. A partial line is
    /// kept until its end arrives (or [`ReplySlots::finish`]).
    pub fn server_bytes(&mut self, bytes: &[u8]) -> Vec<ServerPiece> {
        self.framer.push(bytes);
        let mut out = Vec::new();
        while let Some(line) = self.framer.next_line() {
            self.on_line(line.raw, line.overlong, &mut out);
        }
        out
    }

    /// The server closed its side: whatever partial line is left goes to the core.
    pub fn finish(&mut self) -> Vec<ServerPiece> {
        let rest = self.framer.take_pending();
        if rest.is_empty() {
            Vec::new()
        } else {
            vec![ServerPiece::Relay(rest)]
        }
    }

    fn on_line(&mut self, raw: Vec<u8>, overlong: bool, out: &mut Vec<ServerPiece>) {
        let suppressed = matches!(self.open, Some(Owner::Slotted(Slot::Local(_))));
        if overlong {
            // Never interpreted (as the core does); part of a placeholder's reply or not.
            if !suppressed {
                push_relay(out, raw);
            }
            return;
        }
        let content = strip_eol(&raw);
        match self.tracker.classify(content) {
            ReplyLine::Start { code } => {
                let owner = self.owner_of(code);
                self.open = Some(owner);
                if !matches!(self.open, Some(Owner::Slotted(Slot::Local(_)))) {
                    push_relay(out, raw);
                }
            }
            ReplyLine::Continuation => {
                if !suppressed {
                    push_relay(out, raw);
                }
            }
            ReplyLine::Unrecognized => push_relay(out, raw),
            ReplyLine::Final { code } => {
                let owner = match self.open.take() {
                    Some(owner) => owner,
                    None => self.owner_of(code),
                };
                match owner {
                    Owner::Slotted(Slot::Local(answer)) => out.push(ServerPiece::Local(answer)),
                    Owner::Unslotted | Owner::Slotted(Slot::Relay) => push_relay(out, raw),
                }
            }
        }
    }

    /// Decides, at a reply's first line, whose reply it is (the core's own greeting rule).
    fn owner_of(&mut self, code: u16) -> Owner {
        if !self.greeted && matches!(code, 120 | 220 | 421) {
            self.greeted = code != 120;
            return Owner::Unslotted;
        }
        self.greeted = true;
        if (100..200).contains(&code) {
            return Owner::Unslotted;
        }
        // A reply nobody asked for (e.g. an unsolicited 421) is relayed.
        Owner::Slotted(self.slots.pop_front().unwrap_or(Slot::Relay))
    }
}

fn strip_eol(raw: &[u8]) -> &[u8] {
    let c = raw.strip_suffix(b"\n").unwrap_or(raw);
    c.strip_suffix(b"\r").unwrap_or(c)
}

/// Appends to the last relayed piece when possible: the core is then called once per read.
fn push_relay(out: &mut Vec<ServerPiece>, raw: Vec<u8>) {
    if let Some(ServerPiece::Relay(last)) = out.last_mut() {
        last.extend_from_slice(&raw);
    } else {
        out.push(ServerPiece::Relay(raw));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(s: &str) -> ServerPiece {
        ServerPiece::Relay(s.as_bytes().to_vec())
    }

    fn local(s: &str) -> ServerPiece {
        ServerPiece::Local(s.as_bytes().to_vec())
    }

    #[test]
    fn replaces_the_placeholder_reply_in_order() {
        let mut s = ReplySlots::new(8192);
        assert_eq!(s.server_bytes(b"220 hi\r\n"), vec![relay("220 hi\r\n")]);
        s.command_sent(); // USER
        s.placeholder_sent(b"534 no TLS\r\n".to_vec()); // AUTH TLS
        s.command_sent(); // PASS
        let got = s.server_bytes(b"331 pw?\r\n200 NOOP ok\r\n230 in\r\n");
        assert_eq!(
            got,
            vec![
                relay("331 pw?\r\n"),
                local("534 no TLS\r\n"),
                relay("230 in\r\n")
            ]
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn multi_line_and_preliminary_replies_and_split_reads() {
        let mut s = ReplySlots::new(8192);
        // A multi-line greeting takes no slot.
        assert_eq!(
            s.server_bytes(b"220-welcome\r\n220 ready\r\n"),
            vec![relay("220-welcome\r\n220 ready\r\n")]
        );
        s.command_sent(); // RETR
        s.placeholder_sent(b"504 bounce\r\n".to_vec());
        // 150 takes no slot; 226 ends RETR; the NOOP reply is multi-line and split mid-line.
        let mut got = s.server_bytes(b"150 here\r\n226 done\r\n200-NO");
        got.extend(s.server_bytes(b"OP\r\n 200 inner\r\n200 end\r\n"));
        assert_eq!(
            got,
            vec![relay("150 here\r\n226 done\r\n"), local("504 bounce\r\n")]
        );
    }

    #[test]
    fn unsolicited_replies_and_leftovers_are_relayed() {
        let mut s = ReplySlots::new(8192);
        s.server_bytes(b"220 hi\r\n");
        assert_eq!(s.server_bytes(b"421 bye\r\n"), vec![relay("421 bye\r\n")]);
        assert_eq!(s.server_bytes(b"garbage"), vec![]);
        assert_eq!(s.finish(), vec![relay("garbage")]);
        assert_eq!(s.finish(), vec![]);
    }
}
