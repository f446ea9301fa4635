//! The host side of the WIT `forwards` interface: real listeners, real SSH forwards, and the
//! tasks that carry each data connection. Data bytes never pass through wasm.
//!
//! Every forward carries exactly one data connection (DESIGN.md: one connection per data
//! forward, from the expected peer only, within a deadline), and reports its end to the
//! session as a [`DataEvent`], which the session hands to the component (`data-finished`)
//! so that a held `226` can go out after the last data byte. Dropping a [`ForwardHandle`]
//! (the guest dropped its `forward`) aborts the task: listener closed, remote forward
//! cancelled, an unfinished data connection cut.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{debug, warn};
use wasmtime::component::Resource;

use crate::pump::{DataChannel, PumpStats, pump};
use crate::runtime::ftp_tunnel::plugin::forwards::{Host, HostForward};
use crate::runtime::{Endpoint, HostState};
use crate::ssh::SshPool;

/// How a data connection crossed the SSH connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// PASV/EPSV/LPSV: accepted on our side, carried by `direct-tcpip`.
    Passive,
    /// PORT/EPRT/LPRT: arrived as `forwarded-tcpip`, delivered to the client's listener.
    Active,
}

impl DataMode {
    /// Lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DataMode::Passive => "passive",
            DataMode::Active => "active",
        }
    }
}

/// What a forward's task tells its session.
#[derive(Debug)]
pub enum DataEvent {
    /// An active-mode data connection reached the FTP client (host forward id).
    Connected(u32),
    /// The data connection is over.
    Finished(DataFinished),
}

/// The end of one forward's data connection.
#[derive(Debug)]
pub struct DataFinished {
    /// The host id of the forward (as the guest knows it).
    pub id: u32,
    /// Passive or active.
    pub mode: DataMode,
    /// Bytes moved, or why no data connection was carried.
    pub result: Result<PumpStats, String>,
    /// From the first byte of the connection to its end.
    pub elapsed: Duration,
}

/// What a session's host state needs to open forwards.
pub struct ForwardContext {
    /// `None` for a session without SSH (benchmarks, tests): every forward is refused.
    pool: Option<Arc<SshPool>>,
    events: mpsc::UnboundedSender<DataEvent>,
    accept_timeout: Duration,
    next_id: u32,
}

impl ForwardContext {
    /// Forwards over `pool`, reporting to `events`; a forward with no connection after
    /// `accept_timeout` reports a failure and closes.
    pub fn new(
        pool: Arc<SshPool>,
        events: mpsc::UnboundedSender<DataEvent>,
        accept_timeout: Duration,
    ) -> Self {
        Self {
            pool: Some(pool),
            events,
            accept_timeout,
            next_id: 1,
        }
    }

    /// A context with no SSH connection behind it: every forward is refused. For measuring
    /// and testing the component's control path alone.
    pub fn detached(events: mpsc::UnboundedSender<DataEvent>) -> Self {
        Self {
            pool: None,
            events,
            accept_timeout: Duration::from_secs(1),
            next_id: 1,
        }
    }

    fn pool(&self) -> Result<Arc<SshPool>, String> {
        self.pool
            .clone()
            .ok_or_else(|| "no SSH connection in this context".to_owned())
    }

    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }
}

/// A live forward as the guest holds it.
pub struct ForwardHandle {
    id: u32,
    address: Endpoint,
    task: AbortHandle,
}

impl Drop for ForwardHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hands the outcome of a data task to the session.
fn report(
    events: &mpsc::UnboundedSender<DataEvent>,
    id: u32,
    mode: DataMode,
    started: Instant,
    result: Result<PumpStats, String>,
) {
    if let Err(reason) = &result {
        warn!(
            forward = id,
            mode = mode.as_str(),
            "data connection failed: {reason}"
        );
    }
    // The session may be gone already; then nobody waits for this.
    let _ = events.send(DataEvent::Finished(DataFinished {
        id,
        mode,
        result,
        elapsed: started.elapsed(),
    }));
}

fn parse_ip(text: &str, what: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("{what} {text:?} is not an IP address"))
}

impl HostState {
    async fn open_local_forward(
        &mut self,
        bind: Endpoint,
        connect_to: Endpoint,
        expect_peer: String,
    ) -> Result<ForwardHandle, String> {
        let pool = self.forwards.pool()?;
        let bind_ip = parse_ip(&bind.host, "passive bind address")?;
        let expect_peer = parse_ip(&expect_peer, "client address")?.to_canonical();
        let listener = TcpListener::bind(SocketAddr::new(bind_ip, bind.port))
            .await
            .map_err(|e| format!("cannot listen on {bind_ip}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("listener address: {e}"))?;
        let ctx = &mut self.forwards;
        let id = ctx.next_id();
        let events = ctx.events.clone();
        let deadline = ctx.accept_timeout;
        // The channel to the server's data port opens while the rewritten reply travels to
        // the client and the client connects: one SSH round trip off every transfer. Polled
        // once here, so that the CHANNEL_OPEN is queued before the reply goes out rather than
        // when the task below first runs; the FTP server may see the data command soon after.
        let mut open = Box::pin(async move {
            let lease = pool.lease_data().await.map_err(|e| e.to_string())?;
            let originator = SocketAddr::new(expect_peer, 0);
            let channel = lease
                .open_direct_tcpip(&connect_to.host, connect_to.port, originator)
                .await
                .map_err(|e| e.to_string())?;
            // From here on, dropping it (no client came, the forward was dropped) closes it.
            Ok::<_, String>((lease, DataChannel::from(channel)))
        });
        let opened_early = match futures::poll!(open.as_mut()) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        };
        let task = tokio::spawn(async move {
            let accept = async {
                match tokio::time::timeout(deadline, accept_from(&listener, expect_peer)).await {
                    Err(_) => Err(format!("no data connection within {deadline:?}")),
                    Ok(Err(e)) => Err(format!("accept failed: {e}")),
                    Ok(Ok(accepted)) => Ok(accepted),
                }
            };
            let open = async {
                match opened_early {
                    Some(result) => result,
                    None => open.await,
                }
            };
            let ready = tokio::try_join!(accept, open);
            drop(listener);
            let started = Instant::now();
            let result = match ready {
                Err(reason) => Err(reason),
                Ok(((tcp, _peer), (lease, channel))) => {
                    let stats = pump(tcp, channel).await.map_err(|e| e.to_string());
                    // Only now is the connection free for the next lease.
                    drop(lease);
                    stats
                }
            };
            report(&events, id, DataMode::Passive, started, result);
        });
        debug!(forward = id, %local, "passive forward open");
        Ok(ForwardHandle {
            id,
            address: Endpoint {
                host: local.ip().to_string(),
                port: local.port(),
            },
            task: task.abort_handle(),
        })
    }

    async fn open_remote_forward(
        &mut self,
        bind: Endpoint,
        deliver_to: Endpoint,
    ) -> Result<ForwardHandle, String> {
        let deliver_ip = parse_ip(&deliver_to.host, "client data address")?;
        let deliver_to = SocketAddr::new(deliver_ip, deliver_to.port);
        let ctx = &mut self.forwards;
        let lease = ctx.pool()?.lease_data().await.map_err(|e| e.to_string())?;
        let mut remote = lease
            .remote_forward(&bind.host, bind.port)
            .await
            .map_err(|e| e.to_string())?;
        let address = Endpoint {
            host: remote.bind_host().to_owned(),
            port: remote.port(),
        };
        let id = ctx.next_id();
        let events = ctx.events.clone();
        let deadline = ctx.accept_timeout;
        let task = tokio::spawn(async move {
            let arrived = tokio::time::timeout(deadline, remote.accept()).await;
            let started = Instant::now();
            // One connection per forward: the server stops listening while the data flows.
            let carry = async {
                match arrived {
                    Err(_) => Err(format!("no data connection within {deadline:?}")),
                    Ok(None) => Err("the SSH connection closed the remote forward".to_owned()),
                    Ok(Some((channel, _, _))) => {
                        // Closed when dropped, also if the client cannot be reached.
                        let channel = DataChannel::from(channel);
                        match TcpStream::connect(deliver_to).await {
                            Ok(tcp) => {
                                let _ = events.send(DataEvent::Connected(id));
                                pump(tcp, channel).await.map_err(|e| e.to_string())
                            }
                            Err(e) => {
                                Err(format!("cannot reach the FTP client at {deliver_to}: {e}"))
                            }
                        }
                    }
                }
            };
            let ((), result) = tokio::join!(remote.cancel(), carry);
            // Only now is the connection free for the next lease.
            drop(lease);
            report(&events, id, DataMode::Active, started, result);
        });
        debug!(forward = id, port = address.port, %deliver_to, "active forward open");
        Ok(ForwardHandle {
            id,
            address,
            task: task.abort_handle(),
        })
    }
}

/// Accepts the first connection from `expected`; others are refused (port theft).
async fn accept_from(
    listener: &TcpListener,
    expected: IpAddr,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        if peer.ip().to_canonical() == expected {
            return Ok((tcp, peer));
        }
        warn!(%peer, %expected, "refused a data connection from an unexpected peer");
    }
}

impl Host for HostState {
    async fn open_local(
        &mut self,
        bind: Endpoint,
        connect_to: Endpoint,
        expect_peer: String,
    ) -> wasmtime::Result<Result<Resource<ForwardHandle>, String>> {
        match self.open_local_forward(bind, connect_to, expect_peer).await {
            Ok(handle) => Ok(Ok(self.table.push(handle)?)),
            Err(reason) => Ok(Err(reason)),
        }
    }

    async fn open_remote(
        &mut self,
        bind: Endpoint,
        deliver_to: Endpoint,
    ) -> wasmtime::Result<Result<Resource<ForwardHandle>, String>> {
        match self.open_remote_forward(bind, deliver_to).await {
            Ok(handle) => Ok(Ok(self.table.push(handle)?)),
            Err(reason) => Ok(Err(reason)),
        }
    }
}

impl HostForward for HostState {
    async fn address(&mut self, forward: Resource<ForwardHandle>) -> wasmtime::Result<Endpoint> {
        Ok(self.table.get(&forward)?.address.clone())
    }

    async fn id(&mut self, forward: Resource<ForwardHandle>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&forward)?.id)
    }

    async fn drop(&mut self, forward: Resource<ForwardHandle>) -> wasmtime::Result<()> {
        // The real close lives in `ForwardHandle::drop`, which also runs when a whole Store
        // is dropped.
        self.table.delete(forward)?;
        Ok(())
    }
}
