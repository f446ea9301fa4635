//! The server → client direction: replies relayed, rewritten or held.

use std::net::SocketAddr;

use super::{DataForward, DataSeq, Expect, PassiveCommand, ServerWait, Session};
use crate::command::sanitize_for_reply;
use crate::endpoint::{PassiveTarget, format_227, format_228, format_229, parse_passive_reply};
use crate::framing::Line;
use crate::reply::{ReplyLine, reply_text};
use crate::session::{Action, ForwardId, ForwardRequest, NoteKind};

impl Session {
    pub(super) fn on_server_line(&mut self, line: Line) {
        if line.overlong {
            self.send_client(line.raw);
            return;
        }
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
                self.on_final_reply(code, line);
            }
        }
    }

    fn on_final_reply(&mut self, code: u16, line: Line) {
        if !self.greeted && matches!(code, 120 | 220 | 421) {
            self.greeted = code != 120;
            return self.send_client(line.raw);
        }
        self.greeted = true;
        if (100..200).contains(&code) {
            if let Some(Expect::Transfer(seq)) = self.expected.front().copied()
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
            Expect::Transfer(seq) => self.on_transfer_end(seq, code, line),
            Expect::EpsvAll => {
                if (200..300).contains(&code) {
                    self.epsv_all = true;
                }
                self.send_client(line.raw);
            }
            Expect::Passive(..) | Expect::Feat | Expect::Other => self.send_client(line.raw),
        }
    }

    /// The final reply of a transfer served by the data command at `seq`.
    fn on_transfer_end(&mut self, seq: DataSeq, code: u16, line: Line) {
        match self.data {
            Some(data) if data.seq == seq && (200..300).contains(&code) && !data.finished => {
                self.server_wait = Some(ServerWait::TransferEnd {
                    id: data.id,
                    held: line.raw,
                });
            }
            // This transfer's data path (or an older one) is done with.
            Some(data) if data.seq <= seq => {
                self.send_client(line.raw);
                self.close_forward(data.id);
            }
            // No data path, or one a later data command named: it serves the next transfer.
            _ => self.send_client(line.raw),
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
        let (connect_host, connect_port) = match target {
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
            request: ForwardRequest::Local {
                bind: SocketAddr::new(self.config.passive_bind, 0),
                connect_host,
                connect_port,
                expect_peer: self.config.client_peer,
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
        result: Result<SocketAddr, String>,
    ) {
        let listening = match result {
            Ok(listening) => listening,
            Err(reason) => {
                let reply = format!(
                    "425 Can't open data connection: ftp-tunnel could not open the passive \
                     data forward ({}).\r\n",
                    sanitize_for_reply(reason.as_bytes())
                );
                return self.refuse(NoteKind::ForwardFailed, &original, reply);
            }
        };
        let reply = match (command, listening) {
            (PassiveCommand::Pasv, SocketAddr::V4(v4)) => format_227(v4),
            (PassiveCommand::Lpsv, address) => format_228(address),
            (_, address) => format_229(address.port()),
        };
        self.note(NoteKind::Rewrite, &original, &reply);
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
