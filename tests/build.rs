//! Builds the policy components under `policies/` (the examples and the test-only
//! misbehaving ones) for `wasm32-wasip2`, so that the tests can load them; their directory is
//! handed to the tests as `FTP_TUNNEL_POLICIES`.
//!
//! `policies/` is a workspace of its own (the native build never links it); the nested cargo
//! gets its own target directory, next to the outer one, and none of the outer build's
//! flags. `FTP_TUNNEL_POLICIES=DIR` skips the build and uses prebuilt components.

use std::env;
use std::path::PathBuf;

#[path = "../native/build_support/guest_cargo.rs"]
mod guest_cargo;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    println!("cargo:rerun-if-env-changed=FTP_TUNNEL_POLICIES");
    if let Some(prebuilt) = env::var_os("FTP_TUNNEL_POLICIES") {
        let dir = PathBuf::from(prebuilt);
        println!("cargo:rustc-env=FTP_TUNNEL_POLICIES={}", dir.display());
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir
        .parent()
        .expect("tests/ lives in the workspace");
    let policies = workspace.join("policies");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    // Not the whole directory: a manual build there leaves a target/ that would retrigger
    // this script forever.
    for watched in [
        "Cargo.toml",
        "Cargo.lock",
        "read-only",
        "allow-hosts",
        "testdata",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            policies.join(watched).display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("wit/policy").display()
    );

    let target_dir = guest_cargo::nested_target_dir(&out_dir, workspace, "policies");
    let mut build =
        guest_cargo::guest_build(&policies, &["--locked", "--workspace"], TARGET, &target_dir);
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the policy components: {e}"));
    if !status.success() {
        panic!(
            "building the policy components in {} failed (see above). If the {TARGET} target \
             is missing, run `rustup target add {TARGET}`; or set FTP_TUNNEL_POLICIES to a \
             directory of prebuilt ones.",
            policies.display()
        );
    }
    let built = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=FTP_TUNNEL_POLICIES={}", built.display());
}
