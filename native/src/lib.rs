//! The native ftp-tunnel host: the CLI, the SSH client, the wasmtime runtime that runs the
//! FTP rewrite component (one instance per control connection), listeners and data pumps.
// Denied everywhere; allowed in one place (`precompiled`), which says why.
#![deny(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod background;
pub mod cli;
pub mod config_file;
pub mod control_io;
pub mod datapath;
/// `ftp-tunnel demo` (cargo feature `demo`): in-process servers and clients for a
/// self-contained run. Not part of the library's API.
#[cfg(feature = "demo")]
#[doc(hidden)]
pub mod demo;
pub mod engine_config;
pub mod events;
pub mod gate;
pub mod limits;
pub mod own_options;
mod passive_port;
pub mod policy;
mod precompiled;
pub mod pump;
pub mod resolve;
pub mod runtime;
pub mod session;
pub mod settings;
pub mod spec;
pub mod ssh;
pub mod ssh_config;
pub mod tunnel;
