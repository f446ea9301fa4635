//! The wasmtime side: loads the FTP rewrite component once and instantiates it per FTP
//! control connection (one Store each, so a trap ends one session only).
//!
//! The component imports nothing of ours (contract 0.3): every call hands it input and takes
//! back the ordered actions, so a call never waits for the network. The WASI interfaces a
//! std-built guest links are stubbed to trap: it gets no capability at all.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};

use crate::engine_config::{self, MAX_INSTANCE_MEMORY};

wasmtime::component::bindgen!({
    world: "ftp-tunnel",
    path: "../wit",
    exports: { default: async },
});

/// The contract's types, with conversions to and from the standard library's addresses.
pub mod wit {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    pub use super::ftp_tunnel::plugin::types::*;

    /// An address in the contract's form.
    pub fn ip(address: IpAddr) -> IpAddress {
        match address {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                IpAddress::Ipv4((a, b, c, d))
            }
            IpAddr::V6(v6) => {
                let [a, b, c, d, e, f, g, h] = v6.segments();
                IpAddress::Ipv6((a, b, c, d, e, f, g, h))
            }
        }
    }

    /// An address from the contract's form.
    pub fn std_ip(address: &IpAddress) -> IpAddr {
        match *address {
            IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
            }
        }
    }

    /// A socket address in the contract's form.
    pub fn socket_address(address: SocketAddr) -> SocketAddress {
        SocketAddress {
            address: ip(address.ip()),
            port: address.port(),
        }
    }
}

use self::wit::{Action, DataFailure, ForwardError, Verdict};

/// The component built from `wasm-component/`, embedded at build time.
pub static EMBEDDED_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ftp_tunnel_component.wasm"));

/// The same component compiled ahead of time for this engine's configuration (empty if the
/// build could not precompile it).
static EMBEDDED_PRECOMPILED: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ftp_tunnel_component.cwasm"));

/// Errors of loading or running the component.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine or the component could not be set up.
    #[error("cannot load the FTP rewrite component: {0}")]
    Load(wasmtime::Error),
    /// A call into a session's instance failed (trap or host error).
    #[error("the FTP rewrite component failed: {0}")]
    Call(wasmtime::Error),
    /// The component refused the session's configuration.
    #[error("the FTP rewrite component refused the session's configuration: {0:?}")]
    Config(wit::ConfigError),
}

/// What one session's Store holds.
pub struct HostState {
    limits: StoreLimits,
}

impl self::ftp_tunnel::plugin::types::Host for HostState {}

/// The engine and the pre-linked component, shared by all sessions.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    pre: Arc<FtpTunnelPre<HostState>>,
}

impl Runtime {
    /// Loads the embedded component: the precompiled form if this engine accepts it, else
    /// compiled now.
    pub fn new() -> Result<Self, RuntimeError> {
        let engine = engine_config::engine().map_err(RuntimeError::Load)?;
        let component = match crate::precompiled::load(&engine, EMBEDDED_PRECOMPILED) {
            Some(component) => component,
            None => Component::new(&engine, EMBEDDED_COMPONENT).map_err(RuntimeError::Load)?,
        };
        Self::link(engine, component)
    }

    /// Compiles a component given as bytes (`--plugin`, or a test's own build).
    pub fn from_bytes(wasm: &[u8]) -> Result<Self, RuntimeError> {
        let engine = engine_config::engine().map_err(RuntimeError::Load)?;
        let component = Component::new(&engine, wasm).map_err(RuntimeError::Load)?;
        Self::link(engine, component)
    }

    fn link(engine: Engine, component: Component) -> Result<Self, RuntimeError> {
        let mut linker = Linker::<HostState>::new(&engine);
        FtpTunnel::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |state| state)
            .map_err(RuntimeError::Load)?;
        // A std-built guest imports WASI stdio/env/exit interfaces it never uses: they trap,
        // so the guest gets no capability at all.
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(RuntimeError::Load)?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(FtpTunnelPre::new)
            .map_err(RuntimeError::Load)?;
        Ok(Self {
            engine,
            pre: Arc::new(pre),
        })
    }

    /// A fresh instance for one control connection, with its session created.
    pub async fn start_session(
        &self,
        config: &wit::SessionConfig,
    ) -> Result<SessionInstance, RuntimeError> {
        let state = HostState {
            limits: StoreLimitsBuilder::new()
                .memory_size(MAX_INSTANCE_MEMORY)
                .instances(32)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let bindings = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(RuntimeError::Call)?;
        let session = bindings
            .ftp_tunnel_plugin_control()
            .session()
            .call_create(&mut store, config)
            .await
            .map_err(RuntimeError::Call)?
            .map_err(RuntimeError::Config)?;
        Ok(SessionInstance {
            store,
            bindings,
            session,
        })
    }

    /// Names of everything the component imports (for the capability check).
    pub fn component_imports(&self) -> Vec<String> {
        self.pre
            .instance_pre()
            .component()
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }
}

/// One control connection's instance: its Store and its exported `session`.
pub struct SessionInstance {
    store: Store<HostState>,
    bindings: FtpTunnel,
    session: ResourceAny,
}

/// Calls one export of the session resource and maps its error.
macro_rules! call {
    ($self:ident, $method:ident $(, $arg:expr)*) => {{
        let control = $self.bindings.ftp_tunnel_plugin_control().session();
        control
            .$method(&mut $self.store, $self.session $(, $arg)*)
            .await
            .map_err(RuntimeError::Call)
    }};
}

impl SessionInstance {
    /// Bytes from the FTP client.
    pub async fn from_client(&mut self, bytes: &[u8]) -> Result<Vec<Action>, RuntimeError> {
        call!(self, call_from_client, bytes)
    }

    /// Bytes from the FTP server.
    pub async fn from_server(&mut self, bytes: &[u8]) -> Result<Vec<Action>, RuntimeError> {
        call!(self, call_from_server, bytes)
    }

    /// The answer to `open-data-path(id, ..)`.
    pub async fn forward_opened(
        &mut self,
        id: u32,
        result: Result<SocketAddr, ForwardError>,
    ) -> Result<Vec<Action>, RuntimeError> {
        let result = result.map(wit::socket_address);
        call!(self, call_forward_opened, id, result.as_ref().map(|a| *a))
    }

    /// The data connection of active-mode path `id` reached the FTP client.
    pub async fn data_connected(&mut self, id: u32) -> Result<Vec<Action>, RuntimeError> {
        call!(self, call_data_connected, id)
    }

    /// The data connection of path `id` is over: every byte delivered, or why not.
    pub async fn data_finished(
        &mut self,
        id: u32,
        outcome: Result<(), &DataFailure>,
    ) -> Result<Vec<Action>, RuntimeError> {
        call!(self, call_data_finished, id, outcome)
    }

    /// The answer to `check-command(id, ..)`.
    pub async fn command_verdict(
        &mut self,
        id: u32,
        verdict: &Verdict,
    ) -> Result<Vec<Action>, RuntimeError> {
        call!(self, call_command_verdict, id, verdict)
    }

    /// Ends the session's resource.
    pub async fn close(mut self) {
        let _ = self.session.resource_drop_async(&mut self.store).await;
    }
}
