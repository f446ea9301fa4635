//! The SSH client layer: the connection, its channels and remote forwards.
//!
//! # Everything on one connection
//!
//! FTP control channels, data channels (`direct-tcpip` for passive mode, `forwarded-tcpip`
//! for active mode) and plain TCP forwards all share the one authenticated connection, as
//! with OpenSSH: one TCP connection, one key exchange, one authentication (one prompt, one
//! line in the server's auth log) per tunnel.
//!
//! That takes per-channel flow control, which russh 0.65 did not have: it re-opened a
//! channel's receive window when data *arrived*, and its session loop awaited a send into
//! the channel's bounded queue, so one stalled reader froze every channel of the
//! connection. The workspace builds a patched russh (`vendor/russh`, see its
//! `PATCHES.md`): a channel's queue never blocks the session loop, and its window is
//! re-opened as the application takes data out of it (OpenSSH's rule). A channel nobody
//! reads therefore stops its sender after one window (2 MiB, which is also what such a
//! channel can hold in memory) while the others keep flowing.
//!
//! `-o SeparateDataConnections=yes` brings back a connection per data forward (see
//! [`pool`] for when that helps).
//!
//! # Tuning (measured on the team's machines)
//!
//! aes128-gcm first when the CPU has AES-NI; a TCP socket with `TCP_NODELAY` and
//! `TCP_QUICKACK` re-armed after each read ([`tuned_stream`]); 2 MiB channel windows;
//! rekeying every 16 GiB; keepalives every 15 s so that a dead connection is noticed.
//!
//! Passphrase-protected keys and ssh-agent are not supported yet: such a key fails with
//! a clear [`SshError::KeyLoad`].

pub mod algorithms;
mod auth;
pub mod client;
mod error;
mod handler;
mod jump;
pub mod known_hosts;
pub mod options;
pub mod pool;
mod prompt;
pub mod tuned_stream;

pub use client::{RemoteForward, SshConnection, SshError};
pub use options::{AddressFamily, AgentSocket, AuthSettings, SshOptions, StrictHostKeyChecking};
pub use pool::{DataLease, SshPool};
