//! Client commands: verb recognition with Telnet IAC handling (RFC 854, RFC 959 4.1.3),
//! and helpers that keep untrusted bytes out of generated lines.

/// Telnet "interpret as command".
const IAC: u8 = 0xFF;
/// Subnegotiation begin / end.
const SB: u8 = 0xFA;
const SE: u8 = 0xF0;
/// WILL, WONT, DO, DONT: each takes one option byte.
const WILL: u8 = 0xFB;
const DONT: u8 = 0xFE;

/// Longest text [`sanitize_for_reply`] keeps, in characters.
pub const MAX_QUOTED_CHARS: usize = 200;

/// A recognised client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The verb, ASCII upper-case, Telnet IAC sequences removed.
    pub verb: String,
    /// The argument, trimmed of ASCII whitespace and lossily decoded (empty if none).
    pub arg: String,
}

/// Removes Telnet command sequences, keeping IAC IAC as one literal 0xFF.
///
/// An IAC followed by a byte that is not a Telnet command drops only the IAC: when the
/// sender marks the DM of "IAC IP IAC DM" as TCP urgent data, the kernel takes the DM out of
/// the stream, leaving "IAC IP IAC" right before the verb, whose first letter must survive.
pub fn strip_telnet(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != IAC {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            Some(&(WILL..=DONT)) => i += 3,
            Some(&SB) => {
                // Skip to IAC SE, or to the end if it never comes.
                let mut j = i + 2;
                while j < bytes.len() && !(bytes[j] == IAC && bytes.get(j + 1) == Some(&SE)) {
                    j += 1;
                }
                i = j + 2;
            }
            Some(&(SE..=0xF9)) => i += 2,
            _ => i += 1,
        }
    }
    out
}

/// Parse one command line's content (terminator stripped). Telnet IAC sequences are dropped
/// for recognition and IAC IAC is a literal 0xFF (vector C12: 0xFF 0xF4 0xFF 0xF2 "ABOR" →
/// verb "ABOR"). Returns None for an empty line, a verb that is not 3-4 ASCII letters, or a
/// line containing CR, LF or NUL (vector F3); such lines are relayed uninterpreted.
pub fn parse_command(content: &[u8]) -> Option<Command> {
    let clean = strip_telnet(content);
    if has_control_bytes(&clean) {
        return None;
    }
    let clean = clean.trim_ascii_end();
    let (verb, arg) = match clean.iter().position(|&b| b == b' ') {
        Some(i) => (&clean[..i], &clean[i + 1..]),
        None => (clean, &[][..]),
    };
    if !(3..=4).contains(&verb.len()) || !verb.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    Some(Command {
        verb: String::from_utf8_lossy(verb).to_ascii_uppercase(),
        arg: String::from_utf8_lossy(arg.trim_ascii()).into_owned(),
    })
}

/// True if the bytes contain CR, LF or NUL (never copied into a generated line).
pub fn has_control_bytes(s: &[u8]) -> bool {
    s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

/// Make untrusted text safe to quote inside a generated reply: drop CR/LF/NUL and other
/// control characters, and cap the length at [`MAX_QUOTED_CHARS`] characters.
pub fn sanitize_for_reply(s: &[u8]) -> String {
    String::from_utf8_lossy(s)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_QUOTED_CHARS)
        .collect()
}
