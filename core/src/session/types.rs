//! The session's private bookkeeping: what a reply or a wait means. The public vocabulary
//! lives in [`crate::contract`].

use crate::contract::{CheckId, ForwardId};
use crate::framing::Line;

/// Position of a data command (PASV, PORT, ...) in the stream of commands the server
/// received. The server serves a transfer with the data path its latest data command
/// before the transfer named; comparing positions tells which data path that is, also when
/// the host answers requests late or out of order.
pub(super) type DataSeq = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PassiveCommand {
    Pasv,
    Epsv,
    Lpsv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ActiveCommand {
    Port,
    Eprt,
    Lprt,
}

impl ActiveCommand {
    pub(super) fn verb(self) -> &'static str {
        match self {
            ActiveCommand::Port => "PORT",
            ActiveCommand::Eprt => "EPRT",
            ActiveCommand::Lprt => "LPRT",
        }
    }
}

/// What the reply to a command sent to the server means to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expect {
    /// A passive command, at this position.
    Passive(PassiveCommand, DataSeq),
    /// The rewritten active command naming this data path.
    Active(ForwardId),
    /// A transfer, served by the data command at this position; the command, sanitised,
    /// for its [`NoteKind::Transfer`](crate::contract::NoteKind::Transfer) note.
    Transfer(DataSeq, String),
    EpsvAll,
    Feat,
    Other,
}

/// Why the server direction is waiting.
#[derive(Debug)]
pub(super) enum ServerWait {
    /// For the data path that the rewritten passive reply will name.
    PassiveForward {
        id: ForwardId,
        command: PassiveCommand,
        seq: DataSeq,
        original: String,
    },
    /// For the data connection to finish before relaying its completion reply (for the
    /// transfer `command`).
    TransferEnd {
        id: ForwardId,
        held: Vec<u8>,
        command: String,
        /// `held` closes a multi-line reply.
        multiline: bool,
    },
    /// For an active-mode data connection to reach the client before relaying the
    /// transfer's preliminary reply: curl treats control data that arrives before the data
    /// connection as an error, and through a tunnel the server's `150` can overtake it.
    DataConnect { id: ForwardId, held: Vec<u8> },
}

impl ServerWait {
    /// The data path whose data connection a held reply waits for.
    pub(super) fn holds_for(&self) -> Option<ForwardId> {
        match self {
            ServerWait::TransferEnd { id, .. } | ServerWait::DataConnect { id, .. } => Some(*id),
            ServerWait::PassiveForward { .. } => None,
        }
    }

    pub(super) fn held_len(&self) -> usize {
        match self {
            ServerWait::TransferEnd { held, .. } | ServerWait::DataConnect { held, .. } => {
                held.len()
            }
            ServerWait::PassiveForward { .. } => 0,
        }
    }
}

/// The client direction waits for the data path an active command will name.
#[derive(Debug)]
pub(super) struct ActiveWait {
    pub(super) id: ForwardId,
    pub(super) command: ActiveCommand,
    pub(super) original: String,
}

/// Why the client direction is waiting.
#[derive(Debug)]
pub(super) enum ClientWait {
    /// For the data path an active command will name.
    Active(ActiveWait),
    /// For the host's verdict on this command line.
    Verdict { id: CheckId, line: Line },
}

#[derive(Debug, Clone, Copy)]
pub(super) struct DataForward {
    pub(super) id: ForwardId,
    /// Position of the data command that named this data path to the server.
    pub(super) seq: DataSeq,
    pub(super) finished: bool,
    /// The data connection reached the FTP client (always true for passive mode, where the
    /// client connects to us).
    pub(super) connected: bool,
}
