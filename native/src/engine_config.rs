//! The wasmtime engine configuration of the rewrite component, shared by the runtime and by
//! the build script that precompiles the component for it: a precompiled component loads
//! only into an engine configured the same way.

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Linear memory one session's instance may grow to.
pub const MAX_INSTANCE_MEMORY: usize = 16 << 20;
/// Component instances alive at once (one per FTP control connection).
pub const MAX_INSTANCES: u32 = 10_000;

/// The configuration: a pooling allocator sized for many small sessions.
pub fn config() -> Config {
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
    config
}

/// An engine with [`config`].
pub fn engine() -> wasmtime::Result<Engine> {
    Engine::new(&config())
}
