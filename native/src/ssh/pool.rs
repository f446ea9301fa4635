//! The SSH connection of a tunnel, and, only with `-o SeparateDataConnections=yes`, extra
//! connections for data forwards.
//!
//! By default every channel (FTP control, `direct-tcpip` and `forwarded-tcpip` data, plain
//! TCP forwards) is carried on the one authenticated connection: the patched russh gives
//! each channel its own flow control, so a stalled reader holds up only its own channel
//! (see the module doc of [`crate::ssh`]). [`SshPool::lease_data`] then hands out that
//! connection.
//!
//! Separate data connections are for when one connection is the bottleneck: OpenSSH's sshd
//! encrypts a connection on one CPU core, so parallel bulk transfers on one connection
//! share that core, and one TCP connection's losses delay all its channels. They cost a
//! TCP connection, a key exchange and an authentication each (idle ones are reused), run
//! into `MaxStartups` and per-user connection limits, and show in the server's auth log.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use super::client::{SshConnection, SshError};
use super::options::SshOptions;

/// Idle data connections kept for reuse; more are closed when returned.
const MAX_IDLE: usize = 8;

/// New data connections being set up at once. OpenSSH's sshd drops unauthenticated
/// connections at random beyond `MaxStartups` (10 by default), so a burst of transfers must
/// not open dozens of handshakes together.
const MAX_CONCURRENT_HANDSHAKES: usize = 4;

/// The connection of one tunnel (and its separate data connections, if enabled).
#[derive(Debug)]
pub struct SshPool {
    opts: SshOptions,
    control: Arc<SshConnection>,
    idle: Arc<Mutex<Vec<Arc<SshConnection>>>>,
    handshakes: tokio::sync::Semaphore,
}

impl SshPool {
    /// Connects and authenticates now, so that errors surface at startup.
    pub async fn connect(opts: SshOptions) -> Result<Arc<SshPool>, SshError> {
        let control = SshConnection::connect(&opts).await?;
        Ok(Arc::new(SshPool {
            opts,
            control,
            idle: Arc::default(),
            handshakes: tokio::sync::Semaphore::new(MAX_CONCURRENT_HANDSHAKES),
        }))
    }

    /// The tunnel's connection: FTP control channels, and by default everything else.
    pub fn control(&self) -> &Arc<SshConnection> {
        &self.control
    }

    /// Whether data forwards get connections of their own.
    pub fn separate_data_connections(&self) -> bool {
        self.opts.separate_data_connections
    }

    /// The connection for one data forward (a `direct-tcpip` channel or a remote forward).
    /// By default the tunnel's one connection. With separate data connections, an idle one
    /// if there is one, else a new one, which accepts only the host key the first
    /// connection verified and reuses its key, so it never prompts.
    ///
    /// Keep the lease until the forward's channels are finished: a separate connection goes
    /// back to the pool when the lease is dropped.
    pub async fn lease_data(&self) -> Result<DataLease, SshError> {
        if !self.opts.separate_data_connections {
            return Ok(DataLease {
                conn: Some(Arc::clone(&self.control)),
                idle: None,
            });
        }
        if let Some(conn) = self.take_idle() {
            return Ok(self.lease(conn));
        }
        let _permit = self.handshakes.acquire().await;
        // While we waited, another forward may have returned a connection.
        if let Some(conn) = self.take_idle() {
            return Ok(self.lease(conn));
        }
        let conn = SshConnection::connect_with(&self.opts, Some(self.control.pinned())).await?;
        tracing::debug!(addr = %conn.addr(), "new data connection");
        Ok(self.lease(Arc::new(conn)))
    }

    /// An idle data connection that is still open.
    fn take_idle(&self) -> Option<Arc<SshConnection>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(conn) = idle.pop() {
            if !conn.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Number of idle separate data connections (for diagnostics and tests).
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    fn lease(&self, conn: Arc<SshConnection>) -> DataLease {
        DataLease {
            conn: Some(conn),
            idle: Some(Arc::clone(&self.idle)),
        }
    }

    /// Disconnects the connection and every idle data connection.
    pub async fn disconnect(&self) {
        let idle: Vec<_> = self
            .idle
            .lock()
            .map(|mut i| i.drain(..).collect())
            .unwrap_or_default();
        for c in idle {
            c.disconnect().await;
        }
        self.control.disconnect().await;
    }
}

/// The connection a data forward uses. A separate data connection is used exclusively and
/// returns to the pool on drop; the shared connection is simply shared.
#[derive(Debug)]
pub struct DataLease {
    conn: Option<Arc<SshConnection>>,
    /// Where a separate connection goes back to; `None` for the shared connection.
    idle: Option<Arc<Mutex<Vec<Arc<SshConnection>>>>>,
}

impl Deref for DataLease {
    type Target = Arc<SshConnection>;

    fn deref(&self) -> &Self::Target {
        // Always Some until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for DataLease {
    fn drop(&mut self) {
        let (Some(conn), Some(idle)) = (self.conn.take(), self.idle.take()) else {
            return;
        };
        // Someone else still holds it (e.g. a RemoteForward not yet dropped): it is not idle,
        // and handing it out again could share a stalled connection.
        if conn.is_closed() || Arc::strong_count(&conn) > 1 {
            return;
        }
        if let Ok(mut idle) = idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }
}
