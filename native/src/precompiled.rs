//! Loading the component that the build compiled ahead of time, so that a run does not pay
//! Cranelift at startup.
// The one unsafe call of the library: `Component::deserialize` trusts its bytes to be
// wasmtime's own output. These bytes are: the build script wrote them with
// `Engine::precompile_component` and they are embedded in this binary, read-only; wasmtime
// still checks the engine's compatibility (version, configuration, CPU features) first.
#![allow(unsafe_code)]

use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

/// The precompiled component, if `bytes` are one and this engine can run them.
pub fn load(engine: &Engine, bytes: &[u8]) -> Option<Component> {
    if Engine::detect_precompiled(bytes) != Some(Precompiled::Component) {
        return None;
    }
    // SAFETY: see the module comment: bytes written by wasmtime's own precompiler at build
    // time and embedded in the binary; deserialize checks compatibility before use.
    match unsafe { Component::deserialize(engine, bytes) } {
        Ok(component) => Some(component),
        Err(error) => {
            tracing::debug!(%error, "precompiled component not usable; compiling it now");
            None
        }
    }
}
