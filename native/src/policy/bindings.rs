//! Host bindings for the policy world (`wit/policy/policy.wit`, `ftp-tunnel:policy@0.1.0`).
//!
//! The world imports nothing but type definitions: a policy decides from what it is given
//! and gets no capability.

wasmtime::component::bindgen!({
    world: "policy",
    path: "../wit/policy",
    exports: { default: async },
});

// The world's `use types.{...}` already puts `Command`, `DataForward` and `Verdict` here.
pub use self::ftp_tunnel::policy::types::DataMode;

/// The package a policy component must implement, for messages.
pub const PACKAGE: &str = "ftp-tunnel:policy@0.1.0";

/// The functions a policy component must export, in the world's order.
pub const EXPORTS: [&str; 3] = ["configure", "check-command", "check-forward"];
