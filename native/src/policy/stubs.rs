//! Empty implementations of the WASI environment interface for policies.
//!
//! A policy gets no capability; most WASI imports are linked to traps. The environment is
//! the exception: a Rust panic asks for `RUST_BACKTRACE` before it writes its message, so a
//! trap there would make every panicking policy look like one that reached for the
//! environment. It gets an empty one instead (no variables, no arguments, no directory),
//! which gives nothing away; the panic then goes on to stderr, which traps.

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Result};

/// Defines `wasi:cli/environment` (whichever 0.2 version the component imports) as empty.
pub(crate) fn link_empty_environment<T: 'static>(
    linker: &mut Linker<T>,
    engine: &Engine,
    component: &Component,
) -> Result<()> {
    let names: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with("wasi:cli/environment@0.2."))
        .collect();
    for name in names {
        let mut instance = linker.instance(&name)?;
        instance.func_wrap("get-environment", |_, ()| {
            Ok((Vec::<(String, String)>::new(),))
        })?;
        instance.func_wrap("get-arguments", |_, ()| Ok((Vec::<String>::new(),)))?;
        instance.func_wrap("initial-cwd", |_, ()| Ok((None::<String>,)))?;
    }
    Ok(())
}
