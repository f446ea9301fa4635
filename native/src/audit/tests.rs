//! The audit log's records: they parse, pair up, and never contain a password.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ftp_tunnel_core::contract::DataMode;
use serde_json::Value;

use super::{AuditLog, LogFormat, SessionInfo};

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn log(format: LogFormat) -> (Arc<AuditLog>, Buffer) {
    let buffer = Buffer::default();
    (
        Arc::new(AuditLog::to_writer(Box::new(buffer.clone()), format)),
        buffer,
    )
}

fn info() -> SessionInfo {
    SessionInfo {
        session: 7,
        ssh_user: "admin".to_owned(),
        client: "127.0.0.1:40000".to_owned(),
        server: "ftp.internal:21".to_owned(),
    }
}

/// A session with a login, a download, an upload denied, and a listing.
fn sample_session(log: &Arc<AuditLog>) {
    let mut session = log.session_started(info());
    session.command("USER", "alice");
    session.command("pass", "s3cret-Passw0rd");
    session.command("ACCT", "s3cret-Account");
    session.command("EPSV", "");
    session.command("RETR", "dir/file name.bin");
    // Data finishes first for this one, the reply first for the listing.
    session.data_finished(
        1,
        DataMode::Passive,
        0,
        1_048_576,
        Duration::from_millis(35),
    );
    session.transfer_reply(Some(1), "RETR dir/file name.bin", "226 Transfer complete.");
    session.command("STOR", "upload.bin");
    session.denied_command("STOR", "upload.bin", "STOR is not allowed: read-only");
    session.denied_forward(DataMode::Active, "::1", 2000, "not in the allowed list");
    session.command("LIST", "");
    session.transfer_reply(Some(2), "LIST", "226 Directory send OK.");
    session.data_finished(2, DataMode::Active, 0, 300, Duration::from_millis(2));
    session.transfer_reply(None, "RETR missing", "550 Failed to open file.");
    session.session_ended("closed");
}

#[test]
fn json_lines_parse_and_agree() {
    let (log, buffer) = log(LogFormat::Json);
    sample_session(&log);
    let text = buffer.text();
    assert!(!text.contains("s3cret"), "a password leaked:\n{text}");
    let records: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["record"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "transfer", "denial", "denial", "transfer", "transfer", "session"
        ]
    );
    let retr = &records[0];
    assert_eq!(retr["verb"], "RETR");
    assert_eq!(retr["path"], "dir/file name.bin");
    assert_eq!(retr["direction"], "download");
    assert_eq!(retr["mode"], "passive");
    assert_eq!(retr["bytes"], 1_048_576);
    assert_eq!(retr["duration_ms"], 35);
    assert_eq!(retr["reply_code"], 226);
    assert_eq!(retr["ftp_user"], "alice");
    assert_eq!(records[1]["what"], "STOR upload.bin");
    assert_eq!(records[2]["what"], "active [::1]:2000");
    assert_eq!(records[3]["mode"], "active");
    assert_eq!(records[3]["bytes"], 300);
    assert_eq!(records[4]["mode"], "none");
    assert_eq!(records[4]["reply_code"], 550);
    let session = &records[5];
    assert_eq!(session["session"], 7);
    assert_eq!(session["ssh_user"], "admin");
    assert_eq!(session["client"], "127.0.0.1:40000");
    assert_eq!(session["server"], "ftp.internal:21");
    assert_eq!(session["ftp_user"], "alice");
    assert_eq!(session["command_count"], 7);
    assert_eq!(session["transfers"], 3);
    assert_eq!(session["denials"], 2);
    assert_eq!(session["outcome"], "closed");
    assert_eq!(session["commands"][1], "PASS ***");
    assert_eq!(session["commands"][2], "ACCT ***");
}

#[test]
fn text_lines_are_readable_and_hold_no_password() {
    let (log, buffer) = log(LogFormat::Text);
    sample_session(&log);
    let text = buffer.text();
    assert!(!text.contains("s3cret"), "a password leaked:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[0].contains(" session 7 transfer ")
            && lines[0].contains(" path=\"dir/file name.bin\" ")
            && lines[0].contains(" bytes=1048576 "),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(" denied ")
            && lines[1].contains("command=\"STOR upload.bin\"")
            && lines[1].contains("reason=\"STOR is not allowed: read-only\""),
        "{}",
        lines[1]
    );
    assert!(
        lines[5].contains(" session 7 ended ") && lines[5].contains(" outcome=closed "),
        "{}",
        lines[5]
    );
}

#[test]
fn a_dropped_session_is_still_recorded_with_its_pending_transfer() {
    let (log, buffer) = log(LogFormat::Json);
    {
        let mut session = log.session_started(info());
        session.command("STOR", "half.bin");
        session.data_finished(3, DataMode::Passive, 4096, 0, Duration::from_millis(1));
    }
    let records: Vec<Value> = buffer
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["record"], "transfer");
    assert_eq!(records[0]["bytes"], 4096);
    assert_eq!(records[1]["outcome"], "dropped");
}

#[test]
fn control_characters_cannot_forge_lines() {
    let (log, buffer) = log(LogFormat::Text);
    let mut session = log.session_started(info());
    session.command(
        "RETR",
        "a\r\n2025-01-01T00:00:00.000Z session 1 ended outcome=closed",
    );
    session.session_ended("closed");
    assert_eq!(buffer.text().lines().count(), 1, "{}", buffer.text());
}
