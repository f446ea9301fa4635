//! The client → server direction: commands relayed, rewritten or refused.

use std::net::SocketAddr;

use std::net::IpAddr;

use super::Session;
use super::types::{ActiveCommand, ActiveWait, ClientWait, DataForward, Expect, PassiveCommand};
use crate::command::{parse_command, sanitize_for_reply};
use crate::contract::{Action, CommandCheck, DataMode, DataPathRequest, ForwardError, NoteKind};
use crate::endpoint::{
    EndpointError, format_eprt, format_lprt, format_port, parse_eprt_arg, parse_lprt_arg,
    parse_port_arg,
};
use crate::framing::Line;

impl Session {
    pub(super) fn on_client_line(&mut self, line: Line) {
        if line.overlong {
            // Never relayed, not even in part: a server with a shorter line limit might act
            // on a prefix nobody checked (a PORT naming another host, a command a policy
            // would deny). The client hears one refusal, once its line has ended.
            if line.is_terminated() {
                let reply = format!(
                    "500 Command line too long (the limit is {} bytes); nothing was sent.\r\n",
                    self.config.max_line.max(512)
                );
                self.refuse(NoteKind::Malformed, "(an overlong command line)", reply);
            }
            return;
        }
        if line.content().contains(&0) {
            // A server may read the line only up to the NUL: what it then sees was never
            // checked here (a PORT behind a NUL would bounce), so it is not relayed.
            let reply = "500 Command refused: it contains a NUL byte.\r\n".to_owned();
            let original = sanitize_for_reply(line.content());
            return self.refuse(NoteKind::Malformed, &original, reply);
        }
        if self.config.check_commands
            && let Some(command) = parse_command(line.content())
        {
            let id = self.next_check;
            self.next_check = self.next_check.wrapping_add(1).max(1);
            let argument = if command.verb == "PASS" {
                "***".to_owned()
            } else {
                command.arg
            };
            self.actions.push_back(Action::CheckCommand(CommandCheck {
                id,
                verb: command.verb,
                argument,
            }));
            self.client_wait = Some(ClientWait::Verdict { id, line });
            return;
        }
        self.on_checked_line(line);
    }

    /// A client line that passed the host's check (or needed none).
    pub(super) fn on_checked_line(&mut self, line: Line) {
        let Some(command) = parse_command(line.content()) else {
            if !line.content().iter().all(u8::is_ascii_whitespace) {
                self.expected.push_back(Expect::Other);
            }
            self.send_server(line.raw);
            return;
        };
        let expect = match command.verb.as_str() {
            "PASV" if !self.epsv_all => self.passive_command(PassiveCommand::Pasv),
            "LPSV" if !self.epsv_all => self.passive_command(PassiveCommand::Lpsv),
            "EPSV" if command.arg.eq_ignore_ascii_case("ALL") => Expect::EpsvAll,
            "EPSV" => self.passive_command(PassiveCommand::Epsv),
            "PORT" => return self.on_active_command(ActiveCommand::Port, &line, &command.arg),
            "EPRT" => return self.on_active_command(ActiveCommand::Eprt, &line, &command.arg),
            "LPRT" => return self.on_active_command(ActiveCommand::Lprt, &line, &command.arg),
            "RETR" | "STOR" | "STOU" | "APPE" | "LIST" | "NLST" | "MLSD" => {
                Expect::Transfer(self.data_commands, sanitize_for_reply(line.content()))
            }
            "FEAT" => Expect::Feat,
            "AUTH" => return self.refuse_auth(&line),
            "ABOR" => {
                // The data channel ends now; a reply held for it is stale.
                self.close_data();
                Expect::Other
            }
            _ => Expect::Other,
        };
        self.expected.push_back(expect);
        self.send_server(line.raw);
    }

    fn passive_command(&mut self, command: PassiveCommand) -> Expect {
        Expect::Passive(command, self.next_data_command())
    }

    fn refuse_auth(&mut self, line: &Line) {
        let reply = "534 ftp-tunnel refuses AUTH: the SSH connection already encrypts this \
                     session, and TLS would hide the data ports from the tunnel.\r\n";
        self.refuse(
            NoteKind::Refused,
            &sanitize_for_reply(line.content()),
            reply.to_owned(),
        );
    }

    fn on_active_command(&mut self, command: ActiveCommand, line: &Line, arg: &str) {
        let original = sanitize_for_reply(line.content());
        let parsed = match command {
            ActiveCommand::Port => parse_port_arg(arg).map(SocketAddr::V4),
            ActiveCommand::Eprt => parse_eprt_arg(arg),
            ActiveCommand::Lprt => parse_lprt_arg(arg),
        };
        let verb = command.verb();
        let address = match parsed {
            Ok(address) if address.port() != 0 => address,
            Err(EndpointError::UnsupportedProtocol(_)) => {
                let reply = "522 Network protocol not supported, use (1,2)\r\n".to_owned();
                return self.refuse(NoteKind::Malformed, &original, reply);
            }
            Ok(_) | Err(_) => {
                let reply = format!("501 Syntax error in {verb} argument; nothing was sent.\r\n");
                return self.refuse(NoteKind::Malformed, &original, reply);
            }
        };
        // IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
        let peer = self.config.client_peer.to_canonical();
        // lftp names `::` (EPRT |2|::|port|) for "the address you see me at".
        let address = if address.ip().is_unspecified() {
            SocketAddr::new(peer, address.port())
        } else {
            address
        };
        let named = address.ip().to_canonical();
        if named != peer && !self.config.allow_foreign_data_address {
            let reply = format!(
                "504 {verb} refused: {named} is not this FTP client's address ({peer}); \
                 ftp-tunnel does not relay FTP bounce.\r\n"
            );
            return self.refuse(NoteKind::Refused, &original, reply);
        }
        // A new data address replaces the previous one (and lets go of a reply held for it).
        self.close_data();
        let id = self.new_forward_id();
        // The FTP server connects to the data path; it is the expected peer where its
        // address is known.
        let expect_peer = self.config.server_host.parse::<IpAddr>().ok();
        self.actions.push_back(Action::OpenForward {
            id,
            request: DataPathRequest {
                mode: DataMode::Active,
                target_host: address.ip().to_string(),
                target_port: address.port(),
                expect_peer,
            },
        });
        self.client_wait = Some(ClientWait::Active(ActiveWait {
            id,
            command,
            original,
        }));
    }

    pub(super) fn finish_active(
        &mut self,
        wait: ActiveWait,
        result: Result<SocketAddr, ForwardError>,
    ) {
        let ActiveWait {
            id,
            command,
            original,
        } = wait;
        let listening = match result {
            Ok(listening) => listening,
            Err(error) => {
                let reply = format!(
                    "425 Can't open data connection: ftp-tunnel could not open the active-mode \
                     data path ({}). Use passive mode.\r\n",
                    sanitize_for_reply(error.to_string().as_bytes())
                );
                return self.refuse(NoteKind::ForwardFailed, &original, reply);
            }
        };
        let line = match (command, listening) {
            (ActiveCommand::Port, SocketAddr::V4(v4)) => format_port(v4),
            (ActiveCommand::Lprt, address) => format_lprt(address),
            (_, address) => format_eprt(address),
        };
        self.note_about(NoteKind::Rewrite, &original, &line, Some(id));
        self.send_server(line);
        self.expected.push_back(Expect::Active(id));
        let seq = self.next_data_command();
        self.make_current(DataForward {
            id,
            seq,
            finished: false,
            connected: false,
        });
    }
}
