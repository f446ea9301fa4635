//! The server → client direction: replies relayed, rewritten or held.

use std::net::SocketAddr;

use super::Session;
use super::types::{DataForward, DataSeq, Expect, PassiveCommand, ServerWait};
use crate::command::sanitize_for_reply;
use crate::contract::{Action, DataMode, DataPathRequest, ForwardError, ForwardId, NoteKind};
use crate::endpoint::{PassiveTarget, format_227, format_228, format_229, parse_passive_reply};
use crate::framing::Line;
use crate::reply::{ReplyLine, reply_text};

impl Session {
    pub(super) fn on_server_line(&mut self, line: Line) {
        if line.overlong {
            self.send_client(line.raw);
            return;
        }
        // A final line that closes a multi-line reply repeats the code its first line gave.
        let closes_multiline = self.replies.open_code().is_some();
        match self.replies.classify(line.content()) {
            ReplyLine::Start { code } => {
                self.in_feat_reply = code == 211 && self.expected.front() == Some(&Expect::Feat);
                self.send_client(line.raw);
            }
            ReplyLine::Continuation => {
                if !(self.in_feat_reply && hides_tls_feature(line.content())) {
                    self.send_client(line.raw);
                }
            }
            ReplyLine::Unrecognized => self.send_client(line.raw),
            ReplyLine::Final { code } => {
                self.in_feat_reply = false;
                self.on_final_reply(code, line, closes_multiline);
            }
        }
    }

    fn on_final_reply(&mut self, code: u16, line: Line, multiline: bool) {
        if !self.greeted && matches!(code, 120 | 220 | 421) {
            self.greeted = code != 120;
            return self.send_client(line.raw);
        }
        self.greeted = true;
        if (100..200).contains(&code) {
            if let Some(&Expect::Transfer(seq, _)) = self.expected.front()
                && let Some(data) = self.data.filter(|d| d.seq == seq)
                && !data.connected
                && !data.finished
            {
                self.server_wait = Some(ServerWait::DataConnect {
                    id: data.id,
                    held: line.raw,
                });
                return;
            }
            return self.send_client(line.raw);
        }
        let expect = self.expected.pop_front().unwrap_or(Expect::Other);
        match expect {
            Expect::Passive(command, seq) if matches!(code, 227..=229) => {
                self.on_passive_reply(command, seq, code, line)
            }
            Expect::Active(id) => {
                if !(200..300).contains(&code) && self.data.is_some_and(|d| d.id == id) {
                    self.close_forward(id);
                }
                self.send_client(line.raw);
            }
            Expect::Transfer(seq, command) => {
                self.on_transfer_end(seq, command, code, line, multiline)
            }
            Expect::EpsvAll => {
                if (200..300).contains(&code) {
                    self.epsv_all = true;
                }
                self.send_client(line.raw);
            }
            Expect::Passive(..) | Expect::Feat | Expect::Other => self.send_client(line.raw),
        }
    }

    /// The final reply of a transfer (`command`) served by the data command at `seq`.
    fn on_transfer_end(
        &mut self,
        seq: DataSeq,
        command: String,
        code: u16,
        line: Line,
        multiline: bool,
    ) {
        // The data path that carried this transfer, if the session opened it.
        let carried = self.data.filter(|d| d.seq == seq).map(|d| d.id);
        match self.data {
            Some(data) if data.seq == seq && (200..300).contains(&code) && !data.finished => {
                self.server_wait = Some(ServerWait::TransferEnd {
                    id: data.id,
                    held: line.raw,
                    command,
                    multiline,
                });
            }
            // This transfer's data path (or an older one) is done with.
            Some(data) if data.seq <= seq => {
                let reply = match carried {
                    Some(id) => self.completion_reply(id, line.raw, multiline),
                    None => line.raw,
                };
                self.transfer_note(&command, &reply, carried);
                self.send_client(reply);
                self.close_forward(data.id);
            }
            // No data path, or one a later data command named: it serves the next transfer.
            _ => {
                self.transfer_note(&command, &line.raw, carried);
                self.send_client(line.raw);
            }
        }
    }

    fn on_passive_reply(&mut self, command: PassiveCommand, seq: DataSeq, code: u16, line: Line) {
        let original = sanitize_for_reply(line.content());
        let text = reply_text(line.content()).into_owned();
        let target = match parse_passive_reply(code, &text) {
            Ok(target) => target,
            Err(error) => {
                let reply = format!(
                    "425 Can't open data connection: the FTP server's passive reply is \
                     malformed ({error}): {original}\r\n"
                );
                return self.refuse(NoteKind::Malformed, &original, reply);
            }
        };
        let server_host = self.config.server_host.clone();
        let (target_host, target_port) = match target {
            PassiveTarget::Address(address) if self.config.trust_passive_address => {
                (address.ip().to_string(), address.port())
            }
            PassiveTarget::Address(address) => (server_host, address.port()),
            PassiveTarget::PortOnly(port) | PassiveTarget::ControlPeer(port) => (server_host, port),
        };
        // The server is done with the data path an earlier command named.
        if self.data.is_some_and(|d| d.seq < seq) {
            self.close_data();
        }
        let id = self.new_forward_id();
        self.actions.push_back(Action::OpenForward {
            id,
            request: DataPathRequest {
                mode: DataMode::Passive,
                target_host,
                target_port,
                expect_peer: Some(self.config.client_peer),
            },
        });
        self.server_wait = Some(ServerWait::PassiveForward {
            id,
            command,
            seq,
            original,
        });
    }

    pub(super) fn finish_passive(
        &mut self,
        id: ForwardId,
        command: PassiveCommand,
        seq: DataSeq,
        original: String,
        result: Result<SocketAddr, ForwardError>,
    ) {
        let listening = match result {
            Ok(listening) => listening,
            Err(error) => {
                let reply = format!(
                    "425 Can't open data connection: ftp-tunnel could not open the passive \
                     data path ({}).\r\n",
                    sanitize_for_reply(error.to_string().as_bytes())
                );
                return self.refuse(NoteKind::ForwardFailed, &original, reply);
            }
        };
        let reply = match (command, listening) {
            (PassiveCommand::Pasv, SocketAddr::V4(v4)) => format_227(v4),
            (PassiveCommand::Pasv, SocketAddr::V6(_)) => {
                // 227 can only name an IPv4 address (RFC 2428 section 3): an error, never
                // another reply code that no client asked for. The data path was opened,
                // so it is closed, once; it never becomes current.
                self.actions.push_back(Action::CloseForward { id });
                let reply = "522 PASV cannot name this IPv6 data address; use EPSV.\r\n";
                return self.refuse(NoteKind::Refused, &original, reply.to_owned());
            }
            (PassiveCommand::Lpsv, address) => format_228(address),
            (PassiveCommand::Epsv, address) => format_229(address.port()),
        };
        self.note_about(NoteKind::Rewrite, &original, &reply, Some(id));
        self.send_client(reply);
        self.make_current(DataForward {
            id,
            seq,
            finished: false,
            connected: true,
        });
    }
}

/// FEAT lines naming TLS features are hidden: AUTH is refused locally.
fn hides_tls_feature(content: &[u8]) -> bool {
    let feature = String::from_utf8_lossy(content);
    let feature = feature.trim_start().to_ascii_uppercase();
    ["AUTH", "PBSZ", "PROT"]
        .iter()
        .any(|name| feature == *name || feature.starts_with(&format!("{name} ")))
}
