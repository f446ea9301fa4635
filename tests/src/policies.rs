//! The policy components built from `policies/` by this crate's build script.

use std::path::PathBuf;

/// The component built from `policies/<crate>` or `policies/testdata/<crate>`, e.g.
/// `policy("read-only")`. Panics with a clear message if it was not built.
pub fn policy(name: &str) -> PathBuf {
    let file = format!("{}.wasm", name.replace('-', "_"));
    let path = PathBuf::from(env!("FTP_TUNNEL_POLICIES")).join(file);
    assert!(
        path.exists(),
        "{} was not built (tests/build.rs builds policies/)",
        path.display()
    );
    path
}
