//! Builds the FTP rewrite component (`wasm-component/`) for `wasm32-wasip2` and hands it to
//! the host crate, so that `cargo build --release` yields one self-contained binary.
//!
//! The nested cargo gets its own target directory: sharing the outer one deadlocks on
//! cargo's lock. `FTP_TUNNEL_COMPONENT=path.wasm` skips the nested build and embeds a
//! prebuilt component instead.

use std::env;
use std::path::{Path, PathBuf};

#[path = "src/engine_config.rs"]
#[allow(dead_code)]
mod engine_config;

#[path = "build_support/guest_cargo.rs"]
mod guest_cargo;

const TARGET: &str = "wasm32-wasip2";
const ARTIFACT: &str = "ftp_tunnel_component.wasm";
const PRECOMPILED: &str = "ftp_tunnel_component.cwasm";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir
        .parent()
        .expect("native/ lives in the workspace");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    let embedded = out_dir.join(ARTIFACT);

    println!("cargo:rerun-if-env-changed=FTP_TUNNEL_COMPONENT");
    if let Some(prebuilt) = env::var_os("FTP_TUNNEL_COMPONENT") {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        copy(&prebuilt, &embedded);
        precompile(&embedded, &out_dir);
        return;
    }
    println!("cargo:rerun-if-changed=src/engine_config.rs");
    for watched in [
        "core/src",
        "core/Cargo.toml",
        "wasm-component",
        "wit",
        "Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let target_dir = guest_cargo::nested_target_dir(&out_dir, workspace, "wasm-component");
    let mut build = guest_cargo::guest_build(
        workspace,
        &["-p", "ftp-tunnel-component"],
        TARGET,
        &target_dir,
    );
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the wasm component: {e}"));
    if !status.success() {
        panic!(
            "building the wasm component failed (see above). If the {TARGET} target is \
             missing, run `rustup target add {TARGET}`; or set FTP_TUNNEL_COMPONENT to a \
             prebuilt component."
        );
    }
    copy(
        &target_dir.join(TARGET).join("release").join(ARTIFACT),
        &embedded,
    );
    precompile(&embedded, &out_dir);
}

/// Writes the component compiled ahead of time for the runtime's engine configuration
/// (`src/engine_config.rs`, shared with the runtime), so that a run does not pay Cranelift.
/// If that fails, an empty file: the runtime then compiles the component at startup.
fn precompile(component: &Path, out_dir: &Path) {
    let precompiled = out_dir.join(PRECOMPILED);
    let compiled = std::fs::read(component)
        .map_err(wasmtime::Error::from)
        .and_then(|wasm| engine_config::engine()?.precompile_component(&wasm));
    let bytes = compiled.unwrap_or_else(|error| {
        println!("cargo:warning=could not precompile the component ({error}); it will be compiled at startup");
        Vec::new()
    });
    std::fs::write(&precompiled, bytes).expect("OUT_DIR is writable");
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| {
        panic!(
            "could not copy the component {} to {}: {e}",
            from.display(),
            to.display()
        )
    });
}
