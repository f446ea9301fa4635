//! The SSH client layer: connections, forwards and the connection pool.
//!
//! # Why data forwards get their own SSH connection
//!
//! russh 0.65 refills a channel's receive window when data *arrives*, not when the
//! application reads it: in `client/encrypted.rs` the `CHANNEL_DATA` branch first calls
//! `adjust_window_size` (which sends `CHANNEL_WINDOW_ADJUST` as soon as the window is below
//! half of `Config::window_size`) and then does `chan.send(ChannelMsg::Data{..}).await` into
//! the channel's bounded `mpsc` (capacity `Config::channel_buffer_size`, 100 messages). So
//! the SSH window never holds back a server that outruns a slow reader; instead, once those
//! 100 messages are queued, that `.await` parks the session loop (`Session::run_inner`),
//! and with it every channel of the connection: the FTP control channel and all other
//! transfers stop until the slow reader reads.
//!
//! The API offers no way around it: `Handler::adjust_window` only changes a
//! session-wide target that `CHANNEL_DATA` handling does not use (it passes
//! `config.window_size`), a bigger `channel_buffer_size` only moves the cliff, and reading
//! in `Handler::data` instead still goes through the same bounded send first.
//!
//! So: FTP control channels live on the pool's control connection (their traffic is small
//! and always read), and each data forward leases a data connection for its lifetime
//! ([`SshPool::lease_data`]). A slow FTP client then stalls only its own connection. Idle
//! data connections are kept (up to 8) and reused by the next lease, so a run of small
//! transfers pays the SSH handshake once; they are opened lazily, verify the host key the
//! control connection verified (no second prompt) and authenticate with its key.
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
mod prompt;
pub mod known_hosts;
pub mod options;
pub mod pool;
pub mod tuned_stream;

pub use client::{RemoteForward, SshConnection, SshError};
pub use options::{AddressFamily, AgentSocket, AuthSettings, SshOptions, StrictHostKeyChecking};
pub use pool::{DataLease, SshPool};
