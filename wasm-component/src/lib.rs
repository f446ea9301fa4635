//! The ftp-tunnel FTP rewrite component: thin WIT glue around [`ftp_tunnel_core`].
//!
//! Each exported `session` wraps one [`ftp_tunnel_core::session::Session`]. Every call feeds
//! the core and returns its actions one for one, in order, converted to the WIT types; the
//! host answers data-path requests and command checks in later calls. The component imports
//! nothing and never blocks.
//!
//! Built for `wasm32-wasip2` this is the component the native host embeds; built natively it
//! only type-checks (the export is gated), so `cargo build --workspace` works.
// No `forbid(unsafe_code)` here: the bindings wit-bindgen generates (export shims, custom
// sections) need it, and the lint cannot be scoped to them. This file itself has none.

mod convert;

use std::cell::RefCell;

use ftp_tunnel_core::session::Session;

mod bindings {
    wit_bindgen::generate!({
        world: "ftp-tunnel",
        path: "../wit",
        pub_export_macro: true,
        generate_all,
    });
}

use bindings::exports::ftp_tunnel::plugin::control::Session as SessionHandle;
use bindings::exports::ftp_tunnel::plugin::control::{Guest, GuestSession};
use bindings::ftp_tunnel::plugin::types as wit;

/// The component's export implementation.
pub struct Component;

impl Guest for Component {
    type Session = SessionResource;
}

/// One FTP control connection, as exported to the host.
pub struct SessionResource {
    core: RefCell<Session>,
}

impl SessionResource {
    /// Runs `input` against the core and hands out everything it asked for, in order.
    fn step(&self, input: impl FnOnce(&mut Session)) -> Vec<wit::Action> {
        let mut core = self.core.borrow_mut();
        input(&mut core);
        core.drain_actions().map(convert::action).collect()
    }
}

impl GuestSession for SessionResource {
    fn create(config: wit::SessionConfig) -> Result<SessionHandle, wit::ConfigError> {
        let core = Session::try_new(convert::config(config)).map_err(convert::config_error)?;
        Ok(SessionHandle::new(SessionResource {
            core: RefCell::new(core),
        }))
    }

    fn from_client(&self, bytes: Vec<u8>) -> Vec<wit::Action> {
        self.step(|core| core.handle_client_bytes(&bytes))
    }

    fn from_server(&self, bytes: Vec<u8>) -> Vec<wit::Action> {
        self.step(|core| core.handle_server_bytes(&bytes))
    }

    fn forward_opened(
        &self,
        id: u32,
        result: Result<wit::SocketAddress, wit::ForwardError>,
    ) -> Vec<wit::Action> {
        let result = result
            .map(convert::socket_address)
            .map_err(convert::forward_error);
        self.step(|core| core.handle_forward_opened(id, result))
    }

    fn data_connected(&self, id: u32) -> Vec<wit::Action> {
        self.step(|core| core.handle_data_connected(id))
    }

    fn data_finished(&self, id: u32, outcome: Result<(), wit::DataFailure>) -> Vec<wit::Action> {
        let outcome = outcome.map_err(convert::data_failure);
        self.step(|core| core.handle_data_finished(id, outcome))
    }

    fn command_verdict(&self, id: u32, verdict: wit::Verdict) -> Vec<wit::Action> {
        let verdict = convert::verdict(verdict);
        self.step(|core| core.handle_command_verdict(id, verdict))
    }
}

#[cfg(target_family = "wasm")]
bindings::export!(Component with_types_in bindings);
