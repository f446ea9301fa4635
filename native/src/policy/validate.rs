//! Telling an admin precisely why a file is not a usable policy: not WebAssembly, a core
//! module instead of a component, or a component that lacks the policy world's exports.

use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::PolicyError;
use super::bindings::{EXPORTS, PACKAGE};

/// `\0asm`, the magic number of every WebAssembly binary.
const MAGIC: &[u8; 4] = b"\0asm";

/// Checks the binary's header before compiling it, for a clearer message than the
/// compiler's.
pub(crate) fn check_header(path: &Path, bytes: &[u8]) -> Result<(), PolicyError> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(PolicyError::NotWasm {
            path: path.to_owned(),
        });
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    if bytes[6..8] == [0, 0] {
        return Err(PolicyError::CoreModule {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// The policy world's exports that `component` does not have.
pub(crate) fn missing_exports(engine: &Engine, component: &Component) -> Vec<&'static str> {
    let ty = component.component_type();
    let exported: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    EXPORTS
        .into_iter()
        .filter(|name| !exported.contains(name))
        .collect()
}

/// What the component imports, for a debug line at load time: each will trap if called.
pub(crate) fn imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| !name.starts_with(PACKAGE.split('@').next().unwrap_or(PACKAGE)))
        .collect()
}
