//! The wasmtime side: loads the embedded FTP rewrite component once and instantiates it per
//! FTP control connection (one Store each, so a trap ends one session only).

use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime::{StoreLimits, StoreLimitsBuilder};

use crate::forwards::ForwardContext;

wasmtime::component::bindgen!({
    world: "ftp-tunnel",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "ftp-tunnel:plugin/forwards.forward": crate::forwards::ForwardHandle,
    },
});

pub use self::ftp_tunnel::plugin::types::{Endpoint, Note, Output, SessionConfig, TunnelKind};

/// The component built from `wasm-component/`, embedded at build time.
pub static EMBEDDED_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ftp_tunnel_component.wasm"));

/// Linear memory one session's instance may grow to.
const MAX_INSTANCE_MEMORY: usize = 16 << 20;
/// Component instances alive at once (one per FTP control connection).
const MAX_INSTANCES: u32 = 10_000;

/// Errors of loading or running the component.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine or the component could not be set up.
    #[error("cannot load the FTP rewrite component: {0}")]
    Load(wasmtime::Error),
    /// A call into a session's instance failed (trap or host error).
    #[error("the FTP rewrite component failed: {0}")]
    Call(wasmtime::Error),
}

/// What one session's Store holds.
pub struct HostState {
    /// Guest-visible resources (data forwards).
    pub table: ResourceTable,
    limits: StoreLimits,
    /// How this session opens forwards.
    pub forwards: ForwardContext,
}

impl self::ftp_tunnel::plugin::types::Host for HostState {}

/// The engine and the pre-linked component, shared by all sessions.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    pre: Arc<FtpTunnelPre<HostState>>,
}

impl Runtime {
    /// Compiles the embedded component.
    pub fn new() -> Result<Self, RuntimeError> {
        Self::from_bytes(EMBEDDED_COMPONENT)
    }

    /// Compiles a component given as bytes (a test may pass another build).
    pub fn from_bytes(wasm: &[u8]) -> Result<Self, RuntimeError> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(MAX_INSTANCES)
            .total_core_instances(MAX_INSTANCES)
            .total_memories(MAX_INSTANCES)
            .total_tables(MAX_INSTANCES)
            .max_memory_size(MAX_INSTANCE_MEMORY);
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
            .memory_reservation(MAX_INSTANCE_MEMORY as u64)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0);
        let engine = Engine::new(&config).map_err(RuntimeError::Load)?;
        let component = Component::new(&engine, wasm).map_err(RuntimeError::Load)?;
        let mut linker = Linker::<HostState>::new(&engine);
        FtpTunnel::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(RuntimeError::Load)?;
        // A std-built guest imports WASI stdio/env/exit interfaces it never uses: they trap,
        // so the guest gets no capability beyond `forwards`.
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

    /// A fresh instance for one control connection, with its session constructed.
    pub async fn start_session(
        &self,
        forwards: ForwardContext,
        config: &SessionConfig,
    ) -> Result<SessionInstance, RuntimeError> {
        let state = HostState {
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(MAX_INSTANCE_MEMORY)
                .instances(32)
                .build(),
            forwards,
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
            .call_constructor(&mut store, config)
            .await
            .map_err(RuntimeError::Call)?;
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
    session: wasmtime::component::ResourceAny,
}

impl SessionInstance {
    /// Bytes from the FTP client.
    pub async fn from_client(&mut self, bytes: &[u8]) -> Result<Output, RuntimeError> {
        let control = self.bindings.ftp_tunnel_plugin_control().session();
        control
            .call_from_client(&mut self.store, self.session, bytes)
            .await
            .map_err(RuntimeError::Call)
    }

    /// Bytes from the FTP server.
    pub async fn from_server(&mut self, bytes: &[u8]) -> Result<Output, RuntimeError> {
        let control = self.bindings.ftp_tunnel_plugin_control().session();
        control
            .call_from_server(&mut self.store, self.session, bytes)
            .await
            .map_err(RuntimeError::Call)
    }

    /// The data connection of active-mode host forward `id` reached the FTP client.
    pub async fn data_connected(&mut self, id: u32) -> Result<Output, RuntimeError> {
        let control = self.bindings.ftp_tunnel_plugin_control().session();
        control
            .call_data_connected(&mut self.store, self.session, id)
            .await
            .map_err(RuntimeError::Call)
    }

    /// The data connection of host forward `id` is over.
    pub async fn data_finished(&mut self, id: u32) -> Result<Output, RuntimeError> {
        let control = self.bindings.ftp_tunnel_plugin_control().session();
        control
            .call_data_finished(&mut self.store, self.session, id)
            .await
            .map_err(RuntimeError::Call)
    }

    /// Ends the session: the guest drops its forwards, and what it did not drop is closed with
    /// the Store.
    pub async fn close(mut self) {
        let _ = self.session.resource_drop_async(&mut self.store).await;
    }
}
