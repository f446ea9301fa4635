//! The audit log: what passed through the tunnel, for the admin to read afterwards.
//!
//! One record per FTP control session (written when it ends), one per data transfer, one per
//! denial; human-readable lines by default, JSON lines with `--log-format json`; to stderr or
//! to `-o AuditLog=FILE`. Passwords are never written: `PASS` and `ACCT` arguments read
//! `***` whatever the caller passes.
//!
//! The session loop drives it with plain calls: [`AuditLog::session_started`] returns an
//! [`AuditSession`], fed with [`AuditSession::command`], [`AuditSession::denied_command`],
//! [`AuditSession::denied_forward`], [`AuditSession::transfer_reply`] and
//! [`AuditSession::data_finished`] (which pair up into transfer records in whatever order
//! they come), and closed by [`AuditSession::session_ended`].

mod clock;
mod record;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ftp_tunnel_core::contract::DataMode;
use serde::{Deserialize, Serialize};

pub use self::record::{DenialRecord, Record, SessionRecord, TransferRecord};

/// Commands listed by name in a session record; the count goes on beyond.
pub const MAX_LISTED_COMMANDS: usize = 1000;
/// Longest argument kept in a listed command or a path.
const MAX_ARGUMENT: usize = 512;

/// How audit records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One `key=value` line per record.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected text or json, got {text:?}")),
        }
    }
}

/// Where records go, shared by every session of the process.
pub struct AuditLog {
    format: LogFormat,
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Who and where, for a session's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Host-assigned session id.
    pub session: u64,
    /// The SSH user the tunnel logged in as.
    pub ssh_user: String,
    /// The FTP client's address.
    pub client: String,
    /// The FTP server, host:port.
    pub server: String,
}

impl AuditLog {
    /// Records to standard error.
    pub fn stderr(format: LogFormat) -> Self {
        Self::to_writer(Box::new(std::io::stderr()), format)
    }

    /// Records appended to `path` (created if missing).
    pub fn to_file(path: &Path, format: LogFormat) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::to_writer(Box::new(file), format))
    }

    /// Records to any writer (tests).
    pub fn to_writer(sink: Box<dyn Write + Send>, format: LogFormat) -> Self {
        Self {
            format,
            sink: Mutex::new(sink),
        }
    }

    /// The format records are written in.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// A control connection was accepted: returns the session's recorder.
    pub fn session_started(self: &Arc<Self>, info: SessionInfo) -> AuditSession {
        AuditSession {
            log: self.clone(),
            info,
            start: SystemTime::now(),
            started: Instant::now(),
            ftp_user: None,
            commands: Vec::new(),
            command_count: 0,
            transfers: 0,
            denials: 0,
            replies: HashMap::new(),
            data: HashMap::new(),
            ended: false,
        }
    }

    /// Writes one record as one line, flushed: a crash loses nothing already written.
    pub fn write(&self, record: &Record) {
        let mut line = match self.format {
            LogFormat::Text => record.to_text(),
            LogFormat::Json => record.to_json(),
        };
        line.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = sink.write_all(line.as_bytes()).and_then(|()| sink.flush()) {
            tracing::warn!("cannot write the audit log: {error}");
        }
    }
}

/// A transfer's final reply, waiting for its data connection's figures.
#[derive(Debug)]
struct Reply {
    verb: String,
    path: String,
    reply: String,
}

/// A data connection's figures, waiting for the transfer's final reply.
#[derive(Debug)]
struct Data {
    mode: DataMode,
    to_server: u64,
    to_client: u64,
    elapsed: Duration,
}

/// One control session's recorder. Dropping it without [`Self::session_ended`] still writes
/// the session record, with outcome `dropped`.
#[derive(Debug)]
pub struct AuditSession {
    log: Arc<AuditLog>,
    info: SessionInfo,
    start: SystemTime,
    started: Instant,
    ftp_user: Option<String>,
    commands: Vec<String>,
    command_count: u64,
    transfers: u64,
    denials: u64,
    replies: HashMap<u32, Reply>,
    data: HashMap<u32, Data>,
    ended: bool,
}

impl AuditSession {
    /// The FTP user name, once USER was sent: policies are told it.
    pub fn ftp_user(&self) -> Option<&str> {
        self.ftp_user.as_deref()
    }

    /// The session's id, SSH user, client and server.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// A client command (verb as sent; `PASS`/`ACCT` arguments are masked here).
    pub fn command(&mut self, verb: &str, argument: &str) {
        let verb = verb.to_ascii_uppercase();
        let argument = mask(&verb, argument);
        if verb == "USER" {
            self.ftp_user = Some(clip(&argument));
        }
        self.command_count += 1;
        if self.commands.len() < MAX_LISTED_COMMANDS {
            self.commands.push(command_line(&verb, &argument));
        }
    }

    /// A command was denied by policy with `reason`.
    pub fn denied_command(&mut self, verb: &str, argument: &str, reason: &str) {
        let verb = verb.to_ascii_uppercase();
        let what = command_line(&verb, &mask(&verb, argument));
        self.denied("command", what, reason);
    }

    /// A data connection was denied by policy with `reason`.
    pub fn denied_forward(&mut self, mode: DataMode, host: &str, port: u16, reason: &str) {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        self.denied(
            "data-connection",
            format!("{} {host}:{port}", mode.as_str()),
            reason,
        );
    }

    fn denied(&mut self, subject: &'static str, what: String, reason: &str) {
        self.denials += 1;
        self.log.write(&Record::Denial(DenialRecord {
            time: clock::rfc3339(SystemTime::now()),
            session: self.info.session,
            ssh_user: self.info.ssh_user.clone(),
            client: self.info.client.clone(),
            ftp_user: self.ftp_user.clone(),
            subject,
            what,
            reason: reason.to_owned(),
        }));
    }

    /// A transfer command got its final reply (the core's `transfer` note): `command` is the
    /// command line (`RETR file`), `reply` the reply line, `forward` the data path that
    /// carried it. Written once the data path's figures are in too (at once without one).
    pub fn transfer_reply(&mut self, forward: Option<u32>, command: &str, reply: &str) {
        let (verb, path) = command.split_once(' ').unwrap_or((command, ""));
        let reply = Reply {
            verb: verb.to_ascii_uppercase(),
            path: clip(path.trim()),
            reply: clip(reply.trim()),
        };
        match forward {
            Some(id) => match self.data.remove(&id) {
                Some(data) => self.transfer(reply, Some(data)),
                None => {
                    self.replies.insert(id, reply);
                }
            },
            None => self.transfer(reply, None),
        }
    }

    /// A data path's connection is over: `to_server`/`to_client` are the bytes carried each
    /// way. Written once the transfer's final reply is in too.
    pub fn data_finished(
        &mut self,
        forward: u32,
        mode: DataMode,
        to_server: u64,
        to_client: u64,
        elapsed: Duration,
    ) {
        let data = Data {
            mode,
            to_server,
            to_client,
            elapsed,
        };
        match self.replies.remove(&forward) {
            Some(reply) => self.transfer(reply, Some(data)),
            None => {
                self.data.insert(forward, data);
            }
        }
    }

    fn transfer(&mut self, reply: Reply, data: Option<Data>) {
        let direction = direction(&reply.verb);
        let bytes = data.as_ref().map_or(0, |d| match direction {
            "upload" => d.to_server,
            "download" => d.to_client,
            _ => d.to_server + d.to_client,
        });
        self.transfers += 1;
        self.log.write(&Record::Transfer(TransferRecord {
            time: clock::rfc3339(SystemTime::now()),
            session: self.info.session,
            ftp_user: self.ftp_user.clone(),
            reply_code: reply_code(&reply.reply),
            verb: reply.verb,
            path: reply.path,
            direction,
            mode: data.as_ref().map_or("none", |d| d.mode.as_str()),
            bytes,
            duration_ms: data.as_ref().map_or(0, |d| millis(d.elapsed)),
            reply: reply.reply,
        }));
    }

    /// The session is over; `outcome` is `closed` or what ended it. Transfers still waiting
    /// for their other half are written as they are.
    pub fn session_ended(mut self, outcome: &str) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: &str) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let mut replies: Vec<_> = self.replies.drain().collect();
        replies.sort_by_key(|(id, _)| *id);
        for (_, reply) in replies {
            self.transfer(reply, None);
        }
        // A data connection whose command never got a final reply (the session ended first).
        let mut data: Vec<_> = self.data.drain().collect();
        data.sort_by_key(|(id, _)| *id);
        for (_, data) in data {
            let reply = Reply {
                verb: "?".to_owned(),
                path: String::new(),
                reply: String::new(),
            };
            self.transfer(reply, Some(data));
        }
        let end = SystemTime::now();
        self.log.write(&Record::Session(SessionRecord {
            session: self.info.session,
            start: clock::rfc3339(self.start),
            end: clock::rfc3339(end),
            duration_ms: millis(self.started.elapsed()),
            ssh_user: self.info.ssh_user.clone(),
            client: self.info.client.clone(),
            server: self.info.server.clone(),
            ftp_user: self.ftp_user.clone(),
            commands: std::mem::take(&mut self.commands),
            command_count: self.command_count,
            transfers: self.transfers,
            denials: self.denials,
            outcome: outcome.to_owned(),
        }));
    }
}

impl Drop for AuditSession {
    fn drop(&mut self) {
        self.finish("dropped");
    }
}

/// The argument as it may be logged.
fn mask(verb: &str, argument: &str) -> String {
    if matches!(verb, "PASS" | "ACCT") {
        "***".to_owned()
    } else {
        clip(argument.trim())
    }
}

fn command_line(verb: &str, argument: &str) -> String {
    if argument.is_empty() {
        verb.to_owned()
    } else {
        format!("{verb} {argument}")
    }
}

/// Bounded and free of control characters.
fn clip(text: &str) -> String {
    text.chars()
        .take(MAX_ARGUMENT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn direction(verb: &str) -> &'static str {
    match verb {
        "RETR" | "LIST" | "NLST" | "MLSD" => "download",
        "STOR" | "STOU" | "APPE" => "upload",
        _ => "unknown",
    }
}

fn reply_code(reply: &str) -> u16 {
    reply
        .get(..3)
        .filter(|code| code.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
