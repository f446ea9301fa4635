//! The audit records and their two renderings: one JSON object per line, or one
//! human-readable line of `key=value` fields.

use std::fmt::Write as _;

use serde::Serialize;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    /// An FTP control session, written when it ends.
    Session(SessionRecord),
    /// A data transfer, written when both its final reply and its data connection are done.
    Transfer(TransferRecord),
    /// A command or a data connection refused by policy.
    Denial(DenialRecord),
}

/// An FTP control session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    /// Host-assigned session id.
    pub session: u64,
    /// When the control connection was accepted (RFC 3339, UTC).
    pub start: String,
    /// When it ended.
    pub end: String,
    /// Milliseconds between the two.
    pub duration_ms: u64,
    /// The SSH user the tunnel logged in as.
    pub ssh_user: String,
    /// The FTP client's address.
    pub client: String,
    /// The FTP server, host:port.
    pub server: String,
    /// The last FTP user name sent with USER.
    pub ftp_user: Option<String>,
    /// Client commands in order, `VERB argument`, passwords masked; at most
    /// [`super::MAX_LISTED_COMMANDS`].
    pub commands: Vec<String>,
    /// All client commands, also those beyond the list.
    pub command_count: u64,
    /// Transfer records written for this session.
    pub transfers: u64,
    /// Denials.
    pub denials: u64,
    /// How it ended: `closed`, or the error that ended it.
    pub outcome: String,
}

/// A data transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferRecord {
    /// When the record was written.
    pub time: String,
    /// Session id.
    pub session: u64,
    /// The FTP user.
    pub ftp_user: Option<String>,
    /// `RETR`, `STOR`, `LIST`...
    pub verb: String,
    /// The command's argument: the file or directory.
    pub path: String,
    /// `download` (server to client), `upload`, or `unknown`.
    pub direction: &'static str,
    /// `passive`, `active`, or `none` when no data connection was carried.
    pub mode: &'static str,
    /// Bytes carried in the transfer's direction.
    pub bytes: u64,
    /// How long the data connection lasted, in milliseconds.
    pub duration_ms: u64,
    /// The final reply's code (e.g. 226), 0 if there was none.
    pub reply_code: u16,
    /// The final reply's text.
    pub reply: String,
}

/// A refusal by policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenialRecord {
    /// When.
    pub time: String,
    /// Session id.
    pub session: u64,
    /// The SSH user.
    pub ssh_user: String,
    /// The FTP client's address.
    pub client: String,
    /// The FTP user, if known.
    pub ftp_user: Option<String>,
    /// `command` or `data-connection`.
    pub subject: &'static str,
    /// The command (`VERB argument`, passwords masked) or the data connection
    /// (`passive 10.0.0.5:30001`).
    pub what: String,
    /// The reason given to the client.
    pub reason: String,
}

impl Record {
    /// One line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail; fall back to a valid object anyway.
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({ "record": "error", "error": e.to_string() }).to_string()
        })
    }

    /// One human-readable line, without the newline.
    pub fn to_text(&self) -> String {
        let mut line = String::new();
        match self {
            Record::Session(s) => {
                let _ = write!(line, "{} session {} ended", s.end, s.session);
                field(&mut line, "ssh-user", &s.ssh_user);
                field(&mut line, "client", &s.client);
                field(&mut line, "server", &s.server);
                field(&mut line, "ftp-user", s.ftp_user.as_deref().unwrap_or("-"));
                field(&mut line, "start", &s.start);
                field(&mut line, "duration", &format!("{}ms", s.duration_ms));
                field(&mut line, "commands", &s.command_count.to_string());
                field(&mut line, "transfers", &s.transfers.to_string());
                field(&mut line, "denials", &s.denials.to_string());
                field(&mut line, "outcome", &s.outcome);
                field(&mut line, "command-list", &s.commands.join("; "));
            }
            Record::Transfer(t) => {
                let _ = write!(line, "{} session {} transfer", t.time, t.session);
                field(&mut line, "ftp-user", t.ftp_user.as_deref().unwrap_or("-"));
                field(&mut line, "verb", &t.verb);
                field(&mut line, "path", &t.path);
                field(&mut line, "direction", t.direction);
                field(&mut line, "mode", t.mode);
                field(&mut line, "bytes", &t.bytes.to_string());
                field(&mut line, "duration", &format!("{}ms", t.duration_ms));
                field(&mut line, "reply", &t.reply);
            }
            Record::Denial(d) => {
                let _ = write!(line, "{} session {} denied", d.time, d.session);
                field(&mut line, "ssh-user", &d.ssh_user);
                field(&mut line, "client", &d.client);
                field(&mut line, "ftp-user", d.ftp_user.as_deref().unwrap_or("-"));
                field(&mut line, subject_key(d.subject), &d.what);
                field(&mut line, "reason", &d.reason);
            }
        }
        line
    }
}

fn subject_key(subject: &str) -> &str {
    if subject == "command" {
        "command"
    } else {
        "data"
    }
}

/// Appends ` key=value`, quoting the value when it has spaces, quotes or control characters
/// so that a line always reads back unambiguously.
fn field(line: &mut String, key: &str, value: &str) {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\');
    if plain {
        let _ = write!(line, " {key}={value}");
    } else {
        let _ = write!(line, " {key}={value:?}");
    }
}
