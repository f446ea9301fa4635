//! Per-channel flow control on one in-process client/server pair: a channel the client
//! does not read stops its sender after one window, while the other channels of the
//! connection keep flowing; reading it again re-opens the window; a channel whose reader
//! is gone never holds its sender back; and the client honours `Handler::adjust_window`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::server::{self, Auth, Msg, Server as _, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, client};
use ssh_key::PrivateKey;
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep, timeout};

const WINDOW: u32 = 1024 * 1024;
const DEADLINE: Duration = Duration::from_secs(30);

/// Bytes the server has handed to each channel's window, by the order channels opened.
type Written = Arc<Mutex<HashMap<usize, Arc<AtomicU64>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_channel_stops_only_itself_and_resumes_when_read() {
    let (addr, written) = start_server().await;
    let session = connect(addr, Client { window: None }).await;

    let mut stalled = session.channel_open_session().await.expect("open stalled");
    let stalled_written = counter(&written, 0).await;
    let mut live = session.channel_open_session().await.expect("open live");

    // The live channel carries 16 windows while the other one is not read at all.
    let mut got = 0u64;
    timeout(DEADLINE, async {
        while got < 16 * u64::from(WINDOW) {
            match live.wait().await {
                Some(ChannelMsg::Data { data }) => got += data.len() as u64,
                Some(_) => {}
                None => panic!("live channel ended"),
            }
        }
    })
    .await
    .expect("the live channel keeps flowing while the other is unread");

    // The unread channel got one window and no more: that is what it holds in memory.
    let plateau = wait_plateau(&stalled_written).await;
    assert!(
        plateau <= u64::from(WINDOW),
        "{plateau} bytes sent into an unread channel with a {WINDOW}-byte window"
    );
    assert!(
        plateau >= u64::from(WINDOW) / 2,
        "only {plateau} bytes sent"
    );

    // Connection-level traffic goes through while the channel is stalled.
    timeout(Duration::from_secs(5), session.send_ping())
        .await
        .expect("ping answered during the stall")
        .expect("ping");

    // Reading again re-opens the window: the channel moves several windows more.
    let mut read = 0u64;
    timeout(DEADLINE, async {
        while read < 4 * u64::from(WINDOW) {
            if let Some(ChannelMsg::Data { data }) = stalled.wait().await {
                read += data.len() as u64;
            }
        }
    })
    .await
    .expect("the stalled channel resumes once read");
    // The server counts a chunk after its send returns, which can be after the client read
    // it: wait for the count instead of reading it once.
    wait_above(&stalled_written, 4 * u64::from(WINDOW)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_without_reader_never_holds_its_sender_back() {
    let (addr, written) = start_server().await;
    let session = connect(addr, Client { window: None }).await;
    let (read_half, _write_half) = session.channel_open_session().await.expect("open").split();
    let sent = counter(&written, 0).await;
    drop(read_half);
    let deadline = Instant::now() + DEADLINE;
    while sent.load(Ordering::Relaxed) < 8 * u64::from(WINDOW) {
        assert!(
            Instant::now() < deadline,
            "data for a dropped reader was not counted as consumed ({} bytes sent)",
            sent.load(Ordering::Relaxed)
        );
        sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_uses_the_window_its_handler_returns() {
    const BIGGER: u32 = 4 * WINDOW;
    let (addr, written) = start_server().await;
    let session = connect(
        addr,
        Client {
            window: Some(BIGGER),
        },
    )
    .await;
    let mut channel = session.channel_open_session().await.expect("open");
    let sent = counter(&written, 0).await;
    // Read a window's worth so that the client announces (and asks its handler).
    let mut read = 0u64;
    timeout(DEADLINE, async {
        while read < u64::from(WINDOW) {
            if let Some(ChannelMsg::Data { data }) = channel.wait().await {
                read += data.len() as u64;
            }
        }
    })
    .await
    .expect("first window");
    let plateau = wait_plateau(&sent).await;
    let outstanding = plateau - read;
    assert!(
        outstanding > u64::from(WINDOW) && outstanding <= u64::from(BIGGER),
        "{outstanding} bytes outstanding: the handler's window ({BIGGER}) was not used"
    );
}

/// The counter of the `n`th channel the server opened, once it exists.
async fn counter(written: &Written, n: usize) -> Arc<AtomicU64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(c) = written.lock().unwrap().get(&n) {
            return Arc::clone(c);
        }
        assert!(
            Instant::now() < deadline,
            "the server never opened channel {n}"
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `counter` exceeds `bound`.
async fn wait_above(counter: &AtomicU64, bound: u64) {
    let deadline = Instant::now() + DEADLINE;
    while counter.load(Ordering::Relaxed) <= bound {
        assert!(
            Instant::now() < deadline,
            "the sender stopped at {} bytes, not above {bound}",
            counter.load(Ordering::Relaxed)
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `counter` stops growing for half a second; returns its value.
async fn wait_plateau(counter: &AtomicU64) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    let mut last = counter.load(Ordering::Relaxed);
    let mut still_since = Instant::now();
    loop {
        sleep(Duration::from_millis(20)).await;
        let now = counter.load(Ordering::Relaxed);
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() > Duration::from_millis(500) {
            return now;
        }
        assert!(Instant::now() < deadline, "the sender never stopped");
    }
}

async fn start_server() -> (SocketAddr, Written) {
    let config = Arc::new(server::Config {
        keys: vec![PrivateKey::random(&mut rand::rng(), ssh_key::Algorithm::Ed25519).unwrap()],
        ..Default::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written: Written = Arc::default();
    let mut server = Server {
        written: Arc::clone(&written),
        opened: Arc::default(),
    };
    tokio::spawn(async move { server.run_on_socket(config, &listener).await });
    (addr, written)
}

async fn connect(addr: SocketAddr, client: Client) -> client::Handle<Client> {
    let config = Arc::new(client::Config {
        window_size: WINDOW,
        ..Default::default()
    });
    let mut session = client::connect(config, addr, client).await.unwrap();
    let key = Arc::new(PrivateKey::random(&mut rand::rng(), ssh_key::Algorithm::Ed25519).unwrap());
    let auth = session
        .authenticate_publickey("user", PrivateKeyWithHashAlg::new(key, None))
        .await
        .unwrap();
    assert!(auth.success());
    session
}

/// Writes as fast as the client's window allows into every session channel.
#[derive(Clone)]
struct Server {
    written: Written,
    opened: Arc<AtomicU64>,
}

impl server::Server for Server {
    type Handler = Self;

    fn new_client(&mut self, _: Option<SocketAddr>) -> Self::Handler {
        self.clone()
    }
}

impl server::Handler for Server {
    type Error = anyhow::Error;

    async fn auth_publickey(
        &mut self,
        _: &str,
        _: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let n = self.opened.fetch_add(1, Ordering::Relaxed) as usize;
        let count = Arc::new(AtomicU64::new(0));
        self.written.lock().unwrap().insert(n, Arc::clone(&count));
        let chunk = Bytes::from(vec![0x5a; 32 * 1024]);
        tokio::spawn(async move {
            while channel.data_bytes(chunk.clone()).await.is_ok() {
                count.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        });
        Ok(())
    }
}

struct Client {
    /// What `adjust_window` returns (`None`: the default, keep the current target).
    window: Option<u32>,
}

impl client::Handler for Client {
    type Error = anyhow::Error;

    async fn check_server_key(&mut self, _: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }

    fn adjust_window(&mut self, _: ChannelId, window: u32) -> u32 {
        self.window.unwrap_or(window)
    }
}
