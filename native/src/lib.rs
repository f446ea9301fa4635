//! The native ftp-tunnel host: the CLI, the SSH client, the wasmtime runtime that runs the
//! FTP rewrite component (one instance per control connection), listeners and data pumps.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod cli;
pub mod demo;
pub mod forwards;
pub mod gate;
pub mod policy;
pub mod pump;
pub mod runtime;
pub mod session;
pub mod spec;
pub mod ssh;
pub mod tunnel;
