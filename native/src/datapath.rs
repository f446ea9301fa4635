//! The data paths of one FTP session: real listeners, real SSH forwards, and the tasks that
//! carry each data connection. Data bytes never pass through wasm.
//!
//! The session asks for a *passive* or an *active* data path; which mechanism serves it
//! follows from the tunnel's direction:
//!
//! | tunnel | passive | active |
//! |---|---|---|
//! | `-L ftp/` | listen here, `direct-tcpip` to the server's data port | `tcpip-forward` there, connect here to the client's data port |
//! | `-R ftp/` | `tcpip-forward` there, connect here to the server's data port | listen here, `direct-tcpip` to the client's data port |
//!
//! [`DataPaths`] owns each path's whole life (open, accept or connect, pump, finish, close)
//! as one task behind a [`DataPath`] handle: dropping the handle aborts the task, which
//! closes its listener, its channels and its data connection. Each task reports to the
//! session as [`DataEvent`]s; a path that was closed reports nothing more.
//!
//! Remote listeners (`tcpip-forward`) are one per session, opened on first use and reused by
//! its transfers: dropbear never frees a cancelled forward and allows about 20 per
//! connection, and reuse also saves an SSH round trip per transfer. Each connection it
//! delivers goes to the one data path waiting for it, from the expected peer only; any other
//! is closed at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::Msg;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use crate::limits::Admission;
use crate::pump::{DataChannel, PumpStats, pump, pump_server_on_tcp};
use crate::runtime::wit::{self, DataFailure, DataMode, ForwardError};
use crate::settings::Direction;
use crate::ssh::{DataLease, RemoteForward, SshPool};

/// What a data path's task tells its session.
#[derive(Debug)]
pub enum DataEvent {
    /// The answer to the session's request: where the data connection is to be made.
    Opened {
        /// The session's id of the path.
        id: u32,
        /// The address to name, or why there is none.
        result: Result<SocketAddr, ForwardError>,
    },
    /// An active-mode data connection reached the FTP client.
    Connected(u32),
    /// The data connection is over.
    Finished(DataFinished),
}

/// The end of one data path's connection.
#[derive(Debug)]
pub struct DataFinished {
    /// The session's id of the path.
    pub id: u32,
    /// Passive or active.
    pub mode: DataMode,
    /// Bytes moved, or why the data connection did not deliver them all.
    pub result: Result<Transferred, DataFailure>,
    /// From the first byte of the connection to its end.
    pub elapsed: Duration,
}

/// Bytes moved by one data connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transferred {
    /// From the FTP client to the FTP server.
    pub to_server: u64,
    /// From the FTP server to the FTP client.
    pub to_client: u64,
}

/// Where a session's data paths are set up.
#[derive(Debug, Clone)]
pub struct DataPlan {
    /// `-L` or `-R`.
    pub direction: Direction,
    /// Where listeners on our side bind.
    pub local_bind: IpAddr,
    /// Where remote listeners bind on the SSH server.
    pub remote_bind: String,
    /// The address to name for a remote listener (the bind address, unless that is a
    /// wildcard or a name).
    pub remote_name: IpAddr,
    /// How long a data path waits for its connection.
    pub timeout: Duration,
}

/// A live data path; dropping it closes everything of it.
#[derive(Debug)]
pub struct DataPath {
    task: AbortHandle,
    /// Its place under the tunnel's `MaxDataPaths`, given back when the path goes.
    _place: OwnedSemaphorePermit,
}

impl Drop for DataPath {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The data paths of one session, by the session's id.
pub struct DataPaths {
    plan: DataPlan,
    pool: Arc<SshPool>,
    admission: Arc<Admission>,
    events: mpsc::UnboundedSender<DataEvent>,
    open: std::collections::HashMap<u32, DataPath>,
    remote: Arc<OnceCell<SessionListener>>,
}

impl DataPaths {
    /// Paths set up by `plan` over `pool` within `admission`'s limits, reporting to
    /// `events`.
    pub fn new(
        plan: DataPlan,
        pool: Arc<SshPool>,
        admission: Arc<Admission>,
        events: mpsc::UnboundedSender<DataEvent>,
    ) -> Self {
        Self {
            plan,
            pool,
            admission,
            events,
            open: std::collections::HashMap::new(),
            remote: Arc::new(OnceCell::new()),
        }
    }

    /// Data paths alive now.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no data path is alive.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Starts opening data path `id`. The answer comes as [`DataEvent::Opened`]; for a
    /// listener on our side it is sent before this returns, so that the session can name
    /// it at once.
    pub fn open(&mut self, id: u32, request: wit::DataPath) {
        let listen_here = matches!(
            (self.plan.direction, request.mode),
            (Direction::Local, DataMode::Passive) | (Direction::Remote, DataMode::Active)
        );
        let job = Job {
            id,
            mode: request.mode,
            target_host: request.target_host,
            target_port: request.target_port,
            expect_peer: request.expect_peer.as_ref().map(wit::std_ip),
            events: self.events.clone(),
            timeout: self.plan.timeout,
            server_on_channel: self.plan.direction == Direction::Local,
        };
        // An id the session reuses replaces its old path: that one's place is about to free.
        self.open.remove(&id);
        let limits = self.admission.limits();
        if self.open.len() >= limits.max_data_paths_per_session {
            return job.answer(Err(ForwardError::Failed(format!(
                "too many data connections in this session (MaxDataPathsPerSession={})",
                limits.max_data_paths_per_session
            ))));
        }
        let Some(place) = self.admission.data_path() else {
            return job.answer(Err(ForwardError::Failed(format!(
                "too many data connections in the tunnel (MaxDataPaths={})",
                limits.max_data_paths
            ))));
        };
        let task = if listen_here {
            match bind_here(self.plan.local_bind) {
                Ok((listener, address)) => {
                    job.answer(Ok(address));
                    tokio::spawn(job.listen_here(self.pool.clone(), listener))
                }
                Err(reason) => return job.answer(Err(ForwardError::Failed(reason))),
            }
        } else {
            let remote = Arc::clone(&self.remote);
            let pool = self.pool.clone();
            let plan = self.plan.clone();
            tokio::spawn(async move {
                let listener = remote
                    .get_or_try_init(|| SessionListener::open(pool, &plan))
                    .await;
                match listener {
                    Ok(listener) => job.listen_there(listener).await,
                    Err(error) => job.answer(Err(error.clone())),
                }
            })
        };
        self.open.insert(
            id,
            DataPath {
                task: task.abort_handle(),
                _place: place,
            },
        );
    }

    /// Closes data path `id`, if it is open; it reports nothing more.
    pub fn close(&mut self, id: u32) {
        self.open.remove(&id);
    }

    /// Forgets a path whose task has ended on its own.
    pub fn finished(&mut self, id: u32) {
        self.open.remove(&id);
    }
}

/// A listener on our side, bound at once on a free port (see passive_port.rs for why we
/// pick it).
fn bind_here(ip: IpAddr) -> Result<(TcpListener, SocketAddr), String> {
    let bind = || -> std::io::Result<(TcpListener, SocketAddr)> {
        let listener = crate::passive_port::bind_passive(ip)?;
        let address = listener.local_addr()?;
        Ok((listener, address))
    };
    bind().map_err(|e| format!("cannot listen on {ip}: {e}"))
}

/// One data path's work, from the answer to the end of its connection.
struct Job {
    id: u32,
    mode: DataMode,
    target_host: String,
    target_port: u16,
    expect_peer: Option<IpAddr>,
    events: mpsc::UnboundedSender<DataEvent>,
    timeout: Duration,
    /// `-L`: the FTP server's end of a data connection is the SSH channel.
    server_on_channel: bool,
}

impl Job {
    fn answer(&self, result: Result<SocketAddr, ForwardError>) {
        if let Err(error) = &result {
            warn!(
                forward = self.id,
                mode = mode_name(self.mode),
                "data path not opened: {error:?}"
            );
        }
        let _ = self.events.send(DataEvent::Opened {
            id: self.id,
            result,
        });
    }

    fn connected(&self) {
        if self.mode == DataMode::Active {
            let _ = self.events.send(DataEvent::Connected(self.id));
        }
    }

    fn finish(&self, started: Instant, result: Result<PumpStats, DataFailure>) {
        if let Err(failure) = &result {
            let reason = match failure {
                DataFailure::NotConnected(reason) => reason.clone(),
                DataFailure::Broken(reason) => format!("broke: {reason}"),
            };
            warn!(
                forward = self.id,
                mode = mode_name(self.mode),
                "data connection failed: {reason}"
            );
        }
        let result = result.map(|stats| {
            // The pumps count by socket and channel; the session wants client and server.
            if self.server_on_channel {
                Transferred {
                    to_server: stats.to_channel,
                    to_client: stats.from_channel,
                }
            } else {
                Transferred {
                    to_server: stats.from_channel,
                    to_client: stats.to_channel,
                }
            }
        });
        let _ = self.events.send(DataEvent::Finished(DataFinished {
            id: self.id,
            mode: self.mode,
            result,
            elapsed: started.elapsed(),
        }));
    }

    async fn carry(&self, tcp: TcpStream, channel: DataChannel) -> Result<PumpStats, DataFailure> {
        let result = if self.server_on_channel {
            pump(tcp, channel).await
        } else {
            pump_server_on_tcp(tcp, channel).await
        };
        result.map_err(|e| DataFailure::Broken(e.to_string()))
    }

    /// A listener here; its one connection (from the expected peer) is carried through a
    /// `direct-tcpip` channel to the target, opened while the peer connects.
    async fn listen_here(self, pool: Arc<SshPool>, listener: TcpListener) {
        let deadline = self.timeout;
        let accept = async {
            match tokio::time::timeout(deadline, accept_from(&listener, self.expect_peer)).await {
                Err(_) => Err(format!("no data connection within {deadline:?}")),
                Ok(Err(e)) => Err(format!("accept failed: {e}")),
                Ok(Ok(accepted)) => Ok(accepted),
            }
        };
        let open = async {
            let lease = pool.lease_data().await.map_err(|e| e.to_string())?;
            // The peer that the SSH server is told about: the client, or (`-R` active) the
            // FTP server connecting to us.
            let originator = SocketAddr::new(self.expect_peer.unwrap_or(listener_ip(&listener)), 0);
            let channel = lease
                .open_direct_tcpip(&self.target_host, self.target_port, originator)
                .await
                .map_err(|e| e.to_string())?;
            // From here on, dropping it (no peer came, the path was closed) closes it.
            Ok::<_, String>((lease, DataChannel::from(channel)))
        };
        let ready = tokio::try_join!(accept, open);
        drop(listener);
        let started = Instant::now();
        let result = match ready {
            Err(reason) => Err(DataFailure::NotConnected(reason)),
            Ok(((tcp, _peer), (lease, channel))) => {
                self.connected();
                let stats = self.carry(tcp, channel).await;
                // Released only now: with -o SeparateDataConnections the lease is a connection of its own.
                drop(lease);
                stats
            }
        };
        self.finish(started, result);
    }

    /// The session's remote listener; its next connection from the expected peer is
    /// connected here to the target.
    async fn listen_there(self, listener: &SessionListener) {
        let (tx, rx) = oneshot::channel();
        listener.expect(self.expect_peer, tx);
        self.answer(Ok(listener.address));
        let arrived = tokio::time::timeout(self.timeout, rx).await;
        let started = Instant::now();
        let not_connected = |reason: String| Err(DataFailure::NotConnected(reason));
        let result = match arrived {
            Err(_) => not_connected(format!("no data connection within {:?}", self.timeout)),
            Ok(Err(_)) => not_connected("the SSH connection closed the remote forward".to_owned()),
            Ok(Ok(channel)) => {
                // Closed when dropped, also if the target cannot be reached.
                let channel = DataChannel::from(channel);
                let target = (self.target_host.as_str(), self.target_port);
                match TcpStream::connect(target).await {
                    Ok(tcp) => {
                        self.connected();
                        self.carry(tcp, channel).await
                    }
                    Err(e) => not_connected(format!(
                        "cannot reach {}:{}: {e}",
                        self.target_host, self.target_port
                    )),
                }
            }
        };
        self.finish(started, result);
    }
}

fn listener_ip(listener: &TcpListener) -> IpAddr {
    listener
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

fn mode_name(mode: DataMode) -> &'static str {
    match mode {
        DataMode::Passive => "passive",
        DataMode::Active => "active",
    }
}

/// Accepts the first connection from `expected` (any peer if `None`); others are refused
/// (port theft).
async fn accept_from(
    listener: &TcpListener,
    expected: Option<IpAddr>,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        if expected.is_none_or(|ip| peer.ip().to_canonical() == ip.to_canonical()) {
            return Ok((tcp, peer));
        }
        warn!(%peer, ?expected, "refused a data connection from an unexpected peer");
    }
}

/// A data path waiting for its connection on the session's remote listener.
struct Waiter {
    expect_peer: Option<IpAddr>,
    deliver: oneshot::Sender<russh::Channel<Msg>>,
}

/// The session's one remote listener (`tcpip-forward`), shared by its data paths.
struct SessionListener {
    address: SocketAddr,
    waiter: Arc<Mutex<Option<Waiter>>>,
    dispatcher: AbortHandle,
}

impl Drop for SessionListener {
    fn drop(&mut self) {
        // The dispatcher owns the forward: aborting it cancels the forward.
        self.dispatcher.abort();
    }
}

impl SessionListener {
    async fn open(pool: Arc<SshPool>, plan: &DataPlan) -> Result<Self, ForwardError> {
        let lease = pool
            .lease_data()
            .await
            .map_err(|e| ForwardError::Failed(e.to_string()))?;
        let forward = lease
            .remote_forward(&plan.remote_bind, 0)
            .await
            .map_err(|e| ForwardError::Refused(e.to_string()))?;
        let address = SocketAddr::new(plan.remote_name, forward.port());
        debug!(%address, "session remote listener open");
        let waiter: Arc<Mutex<Option<Waiter>>> = Arc::default();
        let dispatcher = tokio::spawn(dispatch(lease, forward, Arc::clone(&waiter)));
        Ok(Self {
            address,
            waiter,
            dispatcher: dispatcher.abort_handle(),
        })
    }

    /// The next connection from `expect_peer` goes to `deliver` (replacing any earlier
    /// waiter, whose path the session has closed).
    fn expect(&self, expect_peer: Option<IpAddr>, deliver: oneshot::Sender<russh::Channel<Msg>>) {
        if let Ok(mut waiter) = self.waiter.lock() {
            *waiter = Some(Waiter {
                expect_peer,
                deliver,
            });
        }
    }
}

/// Hands each arriving connection to the waiting data path, if it comes from the expected
/// peer; any other is closed.
async fn dispatch(
    lease: DataLease,
    mut forward: RemoteForward,
    waiter: Arc<Mutex<Option<Waiter>>>,
) {
    while let Some((channel, originator, _port)) = forward.accept().await {
        let peer = originator
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical());
        let taken = waiter.lock().ok().and_then(|mut slot| {
            let fits = slot.as_ref().is_some_and(|w| {
                !w.deliver.is_closed()
                    && w.expect_peer
                        .is_none_or(|ip| Some(ip.to_canonical()) == peer)
            });
            if fits { slot.take() } else { None }
        });
        match taken {
            Some(waiter) => {
                if let Err(channel) = waiter.deliver.send(channel) {
                    drop(DataChannel::from(channel));
                }
            }
            None => {
                warn!(%originator, "refused a data connection on the remote listener: no data path expects it from there");
                drop(DataChannel::from(channel));
            }
        }
    }
    forward.cancel().await;
    drop(lease);
}
