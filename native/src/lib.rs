//! The native ftp-tunnel host.
#![forbid(unsafe_code)]

pub mod demo;
pub mod pump;
pub mod ssh;
