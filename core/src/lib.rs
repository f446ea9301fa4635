//! Sans-I/O FTP control-channel rewrite core of ftp-tunnel.
#![forbid(unsafe_code)]

pub mod command;
pub mod contract;
pub mod endpoint;
pub mod framing;
pub mod reply;
pub mod session;
