//! Conversions between the core's types and the WIT types, one function per type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ftp_tunnel_core::session::{
    Action, ConfigError, DataFailure, DataMode, DataPathRequest, ForwardError, Note, NoteKind,
    SessionConfig, Verdict,
};

use crate::bindings::ftp_tunnel::plugin::types as wit;

pub(crate) fn ip(address: wit::IpAddress) -> IpAddr {
    match address {
        wit::IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

pub(crate) fn wit_ip(address: IpAddr) -> wit::IpAddress {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            wit::IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

pub(crate) fn socket_address(address: wit::SocketAddress) -> SocketAddr {
    SocketAddr::new(ip(address.address), address.port)
}

pub(crate) fn config(config: wit::SessionConfig) -> SessionConfig {
    let mut core = SessionConfig::new(ip(config.client_peer), config.server_host);
    core.trust_passive_address = config.trust_passive_address;
    core.allow_foreign_data_address = config.allow_foreign_data_address;
    core.max_line = config.max_line as usize;
    core.check_commands = config.check_commands;
    core
}

pub(crate) fn config_error(error: ConfigError) -> wit::ConfigError {
    match error {
        ConfigError::MaxLineTooSmall(n) => {
            wit::ConfigError::MaxLineTooSmall(u32::try_from(n).unwrap_or(u32::MAX))
        }
        ConfigError::BadServerHost(host) => wit::ConfigError::BadServerHost(host),
    }
}

pub(crate) fn forward_error(error: wit::ForwardError) -> ForwardError {
    match error {
        wit::ForwardError::Refused(reason) => ForwardError::Refused(reason),
        wit::ForwardError::Denied(reason) => ForwardError::Denied(reason),
        wit::ForwardError::Failed(reason) => ForwardError::Failed(reason),
    }
}

pub(crate) fn data_failure(failure: wit::DataFailure) -> DataFailure {
    match failure {
        wit::DataFailure::NotConnected(reason) => DataFailure::NotConnected(reason),
        wit::DataFailure::Broken(reason) => DataFailure::Broken(reason),
    }
}

pub(crate) fn verdict(verdict: wit::Verdict) -> Verdict {
    match verdict {
        wit::Verdict::Allow => Verdict::Allow,
        wit::Verdict::Deny(reason) => Verdict::Deny(reason),
    }
}

fn data_path(request: DataPathRequest) -> wit::DataPath {
    wit::DataPath {
        mode: match request.mode {
            DataMode::Passive => wit::DataMode::Passive,
            DataMode::Active => wit::DataMode::Active,
        },
        target_host: request.target_host,
        target_port: request.target_port,
        expect_peer: request.expect_peer.map(wit_ip),
    }
}

fn note(note: Note) -> wit::Note {
    wit::Note {
        kind: match note.kind {
            NoteKind::Rewrite => wit::NoteKind::Rewrite,
            NoteKind::Refused => wit::NoteKind::Refused,
            NoteKind::Malformed => wit::NoteKind::Malformed,
            NoteKind::ForwardFailed => wit::NoteKind::ForwardFailed,
            NoteKind::Denied => wit::NoteKind::Denied,
            NoteKind::Transfer => wit::NoteKind::Transfer,
        },
        original: note.original,
        replacement: note.replacement,
        forward: note.forward,
    }
}

pub(crate) fn action(action: Action) -> wit::Action {
    match action {
        Action::ToServer(bytes) => wit::Action::ToServer(bytes),
        Action::ToClient(bytes) => wit::Action::ToClient(bytes),
        Action::OpenForward { id, request } => wit::Action::OpenDataPath((id, data_path(request))),
        Action::CloseForward { id } => wit::Action::CloseDataPath(id),
        Action::CheckCommand(check) => wit::Action::CheckCommand(wit::CommandCheck {
            id: check.id,
            verb: check.verb,
            argument: check.argument,
        }),
        Action::Note(n) => wit::Action::Note(note(n)),
    }
}
