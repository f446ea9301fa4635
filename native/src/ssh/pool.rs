//! A control connection plus a pool of data connections; see the module doc of
//! [`crate::ssh`] for why data forwards get a connection of their own.

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

/// The control connection and the data connections of one tunnel.
#[derive(Debug)]
pub struct SshPool {
    opts: SshOptions,
    control: Arc<SshConnection>,
    idle: Arc<Mutex<Vec<Arc<SshConnection>>>>,
    handshakes: tokio::sync::Semaphore,
}

impl SshPool {
    /// Connects the control connection now, so that errors surface at startup.
    pub async fn connect(opts: SshOptions) -> Result<Arc<SshPool>, SshError> {
        let control = SshConnection::connect(&opts).await?;
        Ok(Arc::new(SshPool {
            opts,
            control,
            idle: Arc::default(),
            handshakes: tokio::sync::Semaphore::new(MAX_CONCURRENT_HANDSHAKES),
        }))
    }

    /// Connection for FTP control channels.
    pub fn control(&self) -> &Arc<SshConnection> {
        &self.control
    }

    /// A connection for one data forward's lifetime (a `direct-tcpip` channel or a remote
    /// forward): an idle one if there is one, else a new one. Later connections accept only
    /// the host key the control connection verified and reuse its key, so they never prompt.
    ///
    /// Keep the lease until the forward's channels are finished: the connection goes back
    /// to the pool when the lease is dropped.
    pub async fn lease_data(&self) -> Result<DataLease, SshError> {
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

    /// Number of idle data connections (for diagnostics and tests).
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    fn lease(&self, conn: Arc<SshConnection>) -> DataLease {
        DataLease {
            conn: Some(conn),
            idle: Arc::clone(&self.idle),
        }
    }

    /// Disconnects the control connection and every idle data connection.
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

/// Exclusive use of a data connection; returns it to the pool on drop.
#[derive(Debug)]
pub struct DataLease {
    conn: Option<Arc<SshConnection>>,
    idle: Arc<Mutex<Vec<Arc<SshConnection>>>>,
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
        let Some(conn) = self.conn.take() else { return };
        // Someone else still holds it (e.g. a RemoteForward not yet dropped): it is not idle,
        // and handing it out again could share a stalled connection.
        if conn.is_closed() || Arc::strong_count(&conn) > 1 {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }
}
