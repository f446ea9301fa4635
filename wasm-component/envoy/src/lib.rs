//! An Envoy network filter (proxy-wasm, `wasm32-wasip1`) that carries FTP through Envoy with
//! the ftp-tunnel rewrite core: it rewrites passive replies to name one of Envoy's data
//! listeners and routes each data connection to its session's data port on the FTP server.
//! See `README.md` for the design and `envoy.yaml` for the configuration it expects.
//!
//! Everything but the proxy-wasm glue ([`filter`], wasm only) is plain Rust and unit-tested
//! natively.
// The proxy-wasm entry points need `#[no_mangle]`; only the glue module is allowed it.
#![deny(unsafe_code)]

pub mod config;
pub mod control;
pub mod filter_state;
pub mod routes;
pub mod slots;

#[cfg(target_family = "wasm")]
pub mod filter;
