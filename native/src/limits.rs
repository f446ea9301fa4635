//! Limits that keep a shared tunnel serving under a flood: how many FTP control sessions and
//! data paths may be alive at once, how listeners are bound for bursts of connections, and
//! how an accept loop backs off when the process runs out of file descriptors.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

/// Pending connections a listener queues before the kernel refuses more (clamped by
/// `net.core.somaxconn`). Sized for bursts: thousands of FTP clients connecting at once get
/// queued and answered (banner or 421) instead of waiting for SYN retransmissions.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Caps on what one tunnel keeps alive at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections accepted on the tunnel's listeners (FTP control sessions and `tcp/`
    /// forwards); past it an FTP client gets `421` and is closed (`-o MaxSessions=`).
    pub max_sessions: usize,
    /// Data paths one FTP session may have open (`-o MaxDataPathsPerSession=`).
    pub max_data_paths_per_session: usize,
    /// Data paths of all sessions together (`-o MaxDataPaths=`).
    pub max_data_paths: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 256,
            // An FTP session uses one data connection at a time; a few more cover clients
            // that announce the next one before the last transfer's reply.
            max_data_paths_per_session: 8,
            max_data_paths: 1024,
        }
    }
}

/// Counts what is alive against [`Limits`]; shared by every listener and session.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    sessions: Arc<Semaphore>,
    data_paths: Arc<Semaphore>,
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            sessions: Arc::new(Semaphore::new(limits.max_sessions)),
            data_paths: Arc::new(Semaphore::new(limits.max_data_paths)),
        }
    }

    /// The limits counted against.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A place for one more session, held until the permit is dropped; `None` when full.
    pub fn session(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.sessions).try_acquire_owned().ok()
    }

    /// A place for one more data path in the whole tunnel; `None` when full.
    pub fn data_path(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.data_paths).try_acquire_owned().ok()
    }
}

/// The reply for an FTP client past the session cap (RFC 959: 421, service not available,
/// closing control connection).
pub fn too_many_sessions_reply(limits: Limits) -> String {
    format!(
        "421 Too many connections (MaxSessions={}), try again later.\r\n",
        limits.max_sessions
    )
}

/// Binds a listener on the first address `host:port` resolves to that accepts a bind, with a
/// backlog sized for bursts ([`LISTEN_BACKLOG`]).
pub async fn bind_listener(host: &str, port: u16) -> io::Result<TcpListener> {
    let mut last = None;
    for address in tokio::net::lookup_host((host, port)).await? {
        match bind_reusable(address, LISTEN_BACKLOG) {
            Ok(listener) => return Ok(listener),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind to")
    }))
}

/// A listener on exactly `address` with `SO_REUSEADDR`, as tokio's `TcpListener::bind` sets
/// it: a restarted tunnel binds its port again at once, and a passive data port left in
/// TIME_WAIT by an earlier connection can listen again (passive_port.rs). Needs a runtime.
pub fn bind_reusable(address: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// What an accept loop does after `accept` failed: per-connection errors are skipped, and
/// running out of descriptors or memory backs off (doubling up to a second) instead of
/// spinning, with one warning per burst rather than one per failure.
#[derive(Debug)]
pub struct AcceptBackoff {
    delay: Duration,
    failures: u64,
    last_warning: Option<Instant>,
}

const FIRST_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self {
            delay: FIRST_DELAY,
            failures: 0,
            last_warning: None,
        }
    }
}

impl AcceptBackoff {
    /// Handles one failed accept on `listener` (named for the log); waits before returning
    /// when the failure is one that retrying at once would only repeat.
    pub async fn failed(&mut self, listener: &str, error: &io::Error) {
        if let Some(pause) = self.pause_after(listener, error) {
            // A pause, not a synchronisation: descriptors free up as sessions end.
            tokio::time::sleep(pause).await;
        }
    }

    /// Records a failed accept and says how long to pause before the next one (`None`:
    /// accept again at once).
    fn pause_after(&mut self, listener: &str, error: &io::Error) -> Option<Duration> {
        if is_per_connection(error) {
            debug!("accept on {listener}: {error} (that connection only)");
            return None;
        }
        self.failures += 1;
        let warn_now = self
            .last_warning
            .is_none_or(|at| at.elapsed() >= WARNING_INTERVAL);
        if warn_now {
            warn!(
                "accept on {listener} failed: {error}; backing off (up to {} ms; {} failures so far)",
                MAX_DELAY.as_millis(),
                self.failures
            );
            self.last_warning = Some(Instant::now());
        }
        let pause = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Some(pause)
    }

    /// An accept succeeded: the next failure starts again from the shortest pause.
    pub fn succeeded(&mut self) {
        self.delay = FIRST_DELAY;
    }
}

/// Errors that concern one connection that went away before it was accepted, not the
/// listener or the process.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hand_out_permits_until_full_and_take_them_back() {
        let admission = Admission::new(Limits {
            max_sessions: 2,
            max_data_paths_per_session: 1,
            max_data_paths: 1,
        });
        let first = admission.session().expect("first session");
        let _second = admission.session().expect("second session");
        assert!(admission.session().is_none(), "a third is refused");
        drop(first);
        assert!(admission.session().is_some(), "a place is free again");
        let path = admission.data_path().expect("one data path");
        assert!(admission.data_path().is_none());
        drop(path);
        assert!(admission.data_path().is_some());
    }

    #[test]
    fn the_421_names_the_limit_on_one_line() {
        let reply = too_many_sessions_reply(Limits::default());
        assert!(reply.starts_with("421 ") && reply.ends_with("\r\n"));
        assert_eq!(reply.matches('\n').count(), 1);
        assert!(reply.contains("MaxSessions=256"));
    }

    #[test]
    fn running_out_of_descriptors_backs_off_doubling_up_to_a_second() {
        let mut backoff = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..9)
            .map(|_| backoff.pause_after("test", &emfile).expect("a pause"))
            .collect();
        assert_eq!(pauses[0], FIRST_DELAY);
        assert_eq!(pauses[1], FIRST_DELAY * 2);
        assert_eq!(pauses[8], MAX_DELAY);
        backoff.succeeded();
        assert_eq!(backoff.pause_after("test", &emfile), Some(FIRST_DELAY));
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(
            backoff.pause_after("test", &aborted),
            None,
            "one aborted connection costs no pause"
        );
    }
}
