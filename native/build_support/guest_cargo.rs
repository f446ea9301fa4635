//! A nested cargo that builds wasm guests from a build script. Shared by `native/build.rs`
//! (the rewrite component) and `tests/build.rs` (the policy components).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a nested build keeps its artifacts: `<outer target dir>/<name>`, found from
/// `OUT_DIR` (`<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`), so that `cargo clean`
/// removes it and rebuilds reuse it. Sharing the outer directory itself would deadlock on
/// cargo's lock.
pub fn nested_target_dir(out_dir: &Path, workspace: &Path, name: &str) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace.join("target"))
        .join(name)
}

/// `cargo build --release --target TARGET ARGS...` in `dir`, into `target_dir`.
pub fn guest_build(dir: &Path, args: &[&str], target: &str, target_dir: &Path) -> Command {
    let cargo: OsString = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(dir)
        .args(["build", "--release"])
        .args(args)
        .args(["--target", target])
        .env("CARGO_TARGET_DIR", target_dir);
    // The outer build's flags and wrappers (clippy, coverage, host target) are not the guest's.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        build.env_remove(var);
    }
    build
}
