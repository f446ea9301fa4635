//! The ftp-tunnel FTP rewrite component: thin WIT glue around [`ftp_tunnel_core`].
//!
//! Each exported `session` wraps one [`ftp_tunnel_core::session::Session`]. When the core asks
//! for a data forward, the glue calls the host's imported `forwards` functions (the host
//! awaits the SSH round trip; to the guest the call is plain) and feeds the answer straight
//! back into the core; when the core closes a forward, the glue drops the `forward` resource,
//! which the host turns into closing the listener or cancelling the remote forward.
//!
//! Built for `wasm32-wasip2` this is the component the native host embeds; built natively it
//! only type-checks (the export is gated), so `cargo build --workspace` works.
// No `forbid(unsafe_code)` here: the bindings wit-bindgen generates (export shims, custom
// sections) need it, and the lint cannot be scoped to them. This file itself has none.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ftp_tunnel_core::session::{Action, ForwardId, ForwardRequest, Session, SessionConfig};

mod bindings {
    wit_bindgen::generate!({
        world: "ftp-tunnel",
        path: "../wit",
        pub_export_macro: true,
        generate_all,
    });
}

use bindings::exports::ftp_tunnel::plugin::control::{Guest, GuestSession};
use bindings::ftp_tunnel::plugin::forwards::{self, Forward};
use bindings::ftp_tunnel::plugin::types::{self as wit, Endpoint, Output};

/// The component's export implementation.
pub struct Component;

impl Guest for Component {
    type Session = SessionResource;
}

/// One FTP control connection, as exported to the host.
pub struct SessionResource {
    inner: RefCell<Glue>,
}

/// BTreeMaps, not HashMaps: std's HashMap seeds itself from `wasi:random`, a capability the
/// host does not grant (the call would trap).
struct Glue {
    core: Session,
    /// Open forwards by the core's id: the resource (drop = close) and the host's id.
    forwards: BTreeMap<ForwardId, Forward>,
    /// Host id → core id, to route `data-finished`.
    by_host_id: BTreeMap<u32, ForwardId>,
}

impl GuestSession for SessionResource {
    fn new(config: wit::SessionConfig) -> Self {
        Self {
            inner: RefCell::new(Glue {
                core: Session::new(core_config(&config)),
                forwards: BTreeMap::new(),
                by_host_id: BTreeMap::new(),
            }),
        }
    }

    fn from_client(&self, bytes: Vec<u8>) -> Output {
        let mut glue = self.inner.borrow_mut();
        glue.core.handle_client_bytes(&bytes);
        glue.carry_out()
    }

    fn from_server(&self, bytes: Vec<u8>) -> Output {
        let mut glue = self.inner.borrow_mut();
        glue.core.handle_server_bytes(&bytes);
        glue.carry_out()
    }

    fn data_connected(&self, id: u32) -> Output {
        let mut glue = self.inner.borrow_mut();
        if let Some(core_id) = glue.by_host_id.get(&id).copied() {
            glue.core.handle_data_connected(core_id);
        }
        glue.carry_out()
    }

    fn data_finished(&self, id: u32) -> Output {
        let mut glue = self.inner.borrow_mut();
        if let Some(core_id) = glue.by_host_id.get(&id).copied() {
            glue.core.handle_data_finished(core_id);
        }
        glue.carry_out()
    }
}

impl Glue {
    /// Runs the core's actions until it has nothing more to do, calling the host for forwards.
    fn carry_out(&mut self) -> Output {
        let mut output = Output {
            to_server: Vec::new(),
            to_client: Vec::new(),
            notes: Vec::new(),
        };
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::ToServer(bytes) => output.to_server.extend_from_slice(&bytes),
                Action::ToClient(bytes) => output.to_client.extend_from_slice(&bytes),
                Action::Note(note) => output.notes.push(wit::Note {
                    kind: note.kind.as_str().to_owned(),
                    original: note.original,
                    replacement: note.replacement,
                }),
                Action::OpenForward { id, request } => {
                    let result = self.open(id, &request);
                    self.core.handle_forward_opened(id, result);
                }
                Action::CloseForward { id } => {
                    if let Some(forward) = self.forwards.remove(&id) {
                        self.by_host_id.remove(&forward.id());
                        drop(forward);
                    }
                }
            }
        }
        output
    }

    fn open(&mut self, id: ForwardId, request: &ForwardRequest) -> Result<SocketAddr, String> {
        let forward = match request {
            ForwardRequest::Local {
                bind,
                connect_host,
                connect_port,
                expect_peer,
            } => forwards::open_local(
                &endpoint(&bind.ip().to_string(), bind.port()),
                &endpoint(connect_host, *connect_port),
                &expect_peer.to_string(),
            )?,
            ForwardRequest::Remote {
                bind_host,
                deliver_to,
            } => forwards::open_remote(
                &endpoint(bind_host, 0),
                &endpoint(&deliver_to.ip().to_string(), deliver_to.port()),
            )?,
        };
        let address = forward.address();
        let ip = address
            .host
            .parse::<IpAddr>()
            .ok()
            .filter(|ip| !ip.is_unspecified())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        self.by_host_id.insert(forward.id(), id);
        self.forwards.insert(id, forward);
        Ok(SocketAddr::new(ip, address.port))
    }
}

fn endpoint(host: &str, port: u16) -> Endpoint {
    Endpoint {
        host: host.to_owned(),
        port,
    }
}

fn core_config(config: &wit::SessionConfig) -> SessionConfig {
    let client_peer = config
        .client_peer
        .parse()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut core = SessionConfig::new(client_peer, config.server.host.clone());
    if let Ok(bind) = config.passive_bind.parse() {
        core.passive_bind = bind;
    }
    core.active_bind = config.active_bind.clone();
    core.trust_passive_address = config.trust_passive_address;
    core.allow_foreign_data_address = config.allow_foreign_data_address;
    core.max_line = config.max_line as usize;
    core
}

#[cfg(target_family = "wasm")]
bindings::export!(Component with_types_in bindings);
