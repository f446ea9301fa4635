//! The SSH layer against a real OpenSSH sshd on a loopback port, with its own host key,
//! authorized key and config. Skipped (with a printed reason) only when `/usr/sbin/sshd`
//! is absent and `CI` is unset.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ftp_tunnel::pump::pump;
use ftp_tunnel::ssh::{SshConnection, SshError, SshOptions, SshPool, StrictHostKeyChecking};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const SSHD: &str = "/usr/sbin/sshd";
const DEADLINE: Duration = Duration::from_secs(20);

fn sshd_available() -> bool {
    if Path::new(SSHD).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{SSHD} is missing and CI is set: install openssh-server"
    );
    eprintln!("skipping: {SSHD} not found (install openssh-server to run this test)");
    false
}

fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", "test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}

/// A running sshd, killed by PID on drop (also when the test fails).
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    async fn start(allow_tcp_forwarding: &str) -> Sshd {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_key"), "ed25519", "");
        keygen(&d.join("id_ed25519"), "ed25519", "");
        std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).expect("copy key");
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile none\n\
             AuthorizedKeysFile {ak}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
             AllowTcpForwarding {allow_tcp_forwarding}\nGatewayPorts no\nLogLevel ERROR\n",
            hk = d.join("host_key").display(),
            ak = d.join("authorized_keys").display(),
        );
        std::fs::write(d.join("sshd_config"), config).expect("write config");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let sshd = Sshd { child, port, dir };
        sshd.wait_ready().await;
        sshd
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)).await {
                let mut banner = [0u8; 4];
                if s.read_exact(&mut banner).await.is_ok() && &banner == b"SSH-" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "sshd did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn options(&self, strict: StrictHostKeyChecking) -> SshOptions {
        let mut o = SshOptions::new("127.0.0.1", self.port, whoami());
        o.identity_files = vec![self.path("id_ed25519")];
        o.known_hosts = self.path("known_hosts");
        o.strict_host_key_checking = strict;
        o.connect_timeout = Duration::from_secs(10);
        o
    }

    /// `[127.0.0.1]:port type base64` for the public key file `pub_name` in the temp dir.
    fn known_hosts_line(&self, pub_name: &str) -> String {
        let pubkey = std::fs::read_to_string(self.path(pub_name))
            .unwrap_or_else(|e| panic!("read {pub_name}: {e}"));
        let mut f = pubkey.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}",
            self.port,
            f.next().unwrap_or_default(),
            f.next().unwrap_or_default()
        )
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A TCP echo server on loopback; runs until the test's runtime ends.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A connected TCP pair: (the end the test drives, the end given to `pump`).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
    (a.expect("connect"), b.expect("accept").0)
}

/// Sends `len` random bytes through `stream` and reads them back; returns (sent, received) hashes.
async fn echo_round_trip(stream: TcpStream, len: usize) -> ([u8; 32], [u8; 32], usize) {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    let sent: [u8; 32] = Sha256::digest(&data).into();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.expect("write");
        w.shutdown().await.expect("shutdown");
    });
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n;
    }
    writer.await.expect("writer");
    (sent, hasher.finalize().into(), total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_auth_and_direct_tcpip_10mib_round_trip() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("yes").await;
    let conn = SshConnection::connect(&sshd.options(StrictHostKeyChecking::AcceptNew))
        .await
        .expect("connect");
    let kh = std::fs::read_to_string(sshd.path("known_hosts")).expect("known_hosts written");
    assert_eq!(
        kh.trim(),
        sshd.known_hosts_line("host_key.pub"),
        "accept-new appends the key"
    );

    let echo = echo_server().await;
    let (client, server_side) = tcp_pair().await;
    let originator = server_side.peer_addr().expect("peer");
    let channel = conn
        .open_direct_tcpip("127.0.0.1", echo.port(), originator)
        .await
        .expect("direct-tcpip");
    let pumping = tokio::spawn(pump(server_side, channel));
    const LEN: usize = 10 * 1024 * 1024;
    let started = Instant::now();
    let (sent, got, n) = tokio::time::timeout(DEADLINE, echo_round_trip(client, LEN))
        .await
        .expect("round trip in time");
    eprintln!("10 MiB each way in {:?}", started.elapsed());
    assert_eq!(n, LEN);
    assert_eq!(sent, got, "sha256 of echoed data");
    let stats = tokio::time::timeout(DEADLINE, pumping)
        .await
        .expect("pump ends")
        .expect("join")
        .expect("pump ok");
    assert_eq!(stats.to_channel, LEN as u64);
    assert_eq!(stats.from_channel, LEN as u64);

    // Now known: Yes accepts it.
    let again = SshConnection::connect(&sshd.options(StrictHostKeyChecking::Yes))
        .await
        .expect("known host accepted with Yes");
    again.disconnect().await;
    tokio::time::timeout(DEADLINE, again.closed())
        .await
        .expect("closed in time")
        .expect("closed by us is Ok");

    // A refused direct-tcpip is an error for that channel only.
    let dead_port = free_port();
    let err = conn
        .open_direct_tcpip("127.0.0.1", dead_port, originator)
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, SshError::ChannelOpen { .. }), "{err}");
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn unknown_host_refused_with_yes() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("yes").await;
    let err = SshConnection::connect(&sshd.options(StrictHostKeyChecking::Yes))
        .await
        .expect_err("unknown host must be refused");
    assert!(matches!(err, SshError::HostKeyUnknown { .. }), "{err}");
    assert!(err.to_string().contains("SHA256:"), "{err}");
    assert!(!sshd.path("known_hosts").exists(), "Yes never writes");
}

#[tokio::test]
async fn changed_host_key_names_file_and_line() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("yes").await;
    keygen(&sshd.path("other_key"), "ed25519", "");
    let line = format!("# a comment\n{}\n", sshd.known_hosts_line("other_key.pub"));
    std::fs::write(sshd.path("known_hosts"), line).expect("write known_hosts");
    for strict in [StrictHostKeyChecking::AcceptNew, StrictHostKeyChecking::No] {
        let err = SshConnection::connect(&sshd.options(strict))
            .await
            .expect_err("changed key must be refused");
        match &err {
            SshError::HostKeyChanged { line, .. } => assert_eq!(*line, 2),
            other => panic!("expected HostKeyChanged, got {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("known_hosts:2"), "{msg}");
    }
}

#[tokio::test]
async fn remote_forward_accept_and_cancel() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("yes").await;
    let conn = SshConnection::connect(&sshd.options(StrictHostKeyChecking::AcceptNew))
        .await
        .expect("connect");
    let mut fwd = conn.remote_forward("127.0.0.1", 0).await.expect("forward");
    assert_ne!(fwd.port(), 0);
    assert_eq!(fwd.bind_host(), "127.0.0.1");

    let mut tcp = TcpStream::connect(("127.0.0.1", fwd.port()))
        .await
        .expect("connect to the server-side listener");
    let (channel, originator, _oport) = tokio::time::timeout(DEADLINE, fwd.accept())
        .await
        .expect("accept in time")
        .expect("a forwarded channel");
    assert_eq!(originator, "127.0.0.1");
    let mut stream = channel.into_stream();
    tcp.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"ping");
    stream.write_all(b"pong").await.expect("write");
    stream.flush().await.expect("flush");
    tcp.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"pong");
    drop(stream);

    // Dropping the forward cancels it: the server stops listening.
    let port = fwd.port();
    drop(fwd);
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "forward still listening after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn remote_forward_refused_under_allow_tcp_forwarding_local() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("local").await;
    let conn = SshConnection::connect(&sshd.options(StrictHostKeyChecking::AcceptNew))
        .await
        .expect("connect");
    let err = conn
        .remote_forward("127.0.0.1", 0)
        .await
        .expect_err("tcpip-forward refused");
    assert!(matches!(err, SshError::ForwardRefused { .. }), "{err}");
    assert!(err.to_string().contains("AllowTcpForwarding"), "{err}");
    // Local forwarding still works on the same connection.
    let echo = echo_server().await;
    let origin: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    conn.open_direct_tcpip("127.0.0.1", echo.port(), origin)
        .await
        .expect("direct-tcpip allowed");
}

#[tokio::test]
async fn data_forwards_share_the_connection_by_default() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("yes").await;
    let pool = SshPool::connect(sshd.options(StrictHostKeyChecking::AcceptNew))
        .await
        .expect("pool");
    assert!(!pool.separate_data_connections());
    let first = pool.lease_data().await.expect("lease");
    let second = pool.lease_data().await.expect("concurrent lease");
    assert!(Arc::ptr_eq(&first, pool.control()));
    assert!(Arc::ptr_eq(&second, pool.control()));
    drop((first, second));
    assert_eq!(pool.idle_count(), 0);
    pool.disconnect().await;
}

#[tokio::test]
async fn separate_data_connections_are_reused() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("yes").await;
    let mut opts = sshd.options(StrictHostKeyChecking::AcceptNew);
    opts.separate_data_connections = true;
    let pool = SshPool::connect(opts).await.expect("pool");
    let first = pool.lease_data().await.expect("lease");
    assert!(!Arc::ptr_eq(&first, pool.control()));
    let first_ptr = Arc::as_ptr(&first);
    drop(first);
    assert_eq!(pool.idle_count(), 1);
    let second = pool.lease_data().await.expect("lease again");
    assert_eq!(Arc::as_ptr(&second), first_ptr, "idle connection reused");
    let third = pool.lease_data().await.expect("concurrent lease");
    assert_ne!(Arc::as_ptr(&third), first_ptr, "leases are exclusive");
    drop((second, third));
    assert_eq!(pool.idle_count(), 2);
    pool.disconnect().await;
    tokio::time::timeout(DEADLINE, pool.control().closed())
        .await
        .expect("closed")
        .expect("by us");
}

#[tokio::test]
async fn identity_errors_are_clear() {
    // No sshd needed: keys are loaded before any network traffic.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = SshOptions::new("127.0.0.1", 1, "nobody");
    o.known_hosts = dir.path().join("known_hosts");
    o.identity_files = vec![dir.path().join("missing")];
    let err = SshConnection::connect(&o).await.expect_err("missing key");
    assert!(matches!(err, SshError::KeyLoad { .. }), "{err}");
    assert!(err.to_string().contains("no such file"), "{err}");

    let enc = dir.path().join("enc");
    keygen(&enc, "ed25519", "secret");
    o.identity_files = vec![enc];
    let err = SshConnection::connect(&o).await.expect_err("encrypted key");
    assert!(err.to_string().contains("passphrase"), "{err}");

    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not a key").expect("write");
    o.identity_files = vec![junk];
    let err = SshConnection::connect(&o).await.expect_err("junk key");
    assert!(matches!(err, SshError::KeyLoad { .. }), "{err}");
}

/// A server that writes as fast as it can to every connection; counts bytes written.
async fn firehose() -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = Arc::clone(&written);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let chunk = vec![0x5a_u8; 64 * 1024];
                while s.write_all(&chunk).await.is_ok() {
                    counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    (addr, written)
}

/// Waits until `counter` stops growing (the pipeline is full), within the deadline.
async fn wait_plateau(counter: &std::sync::atomic::AtomicU64) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    let mut last = u64::MAX;
    let mut still = 0;
    loop {
        let now = counter.load(std::sync::atomic::Ordering::Relaxed);
        if now == last && now > 0 {
            still += 1;
            if still >= 10 {
                return now;
            }
        } else {
            still = 0;
            last = now;
        }
        assert!(Instant::now() < deadline, "data source never stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A channel nobody reads must stall only itself: on the same connection, other channels
/// open and carry data, and the stalled one flows again once read (per-channel flow
/// control in the patched russh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_stalls_only_its_own_channel() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("yes").await;
    let conn = SshConnection::connect(&sshd.options(StrictHostKeyChecking::AcceptNew))
        .await
        .expect("connect");
    let (source, written) = firehose().await;
    let origin: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let mut unread = conn
        .open_direct_tcpip("127.0.0.1", source.port(), origin)
        .await
        .expect("channel to the firehose");
    let stalled_at = wait_plateau(&written).await;
    eprintln!("firehose stalled after {stalled_at} bytes");

    // The same connection opens another channel and carries a round trip as usual.
    for _ in 0..3 {
        let echo = echo_server().await;
        let (client, server_side) = tcp_pair().await;
        let channel = tokio::time::timeout(
            Duration::from_secs(2),
            conn.open_direct_tcpip("127.0.0.1", echo.port(), origin),
        )
        .await
        .expect("a channel opens promptly during the stall")
        .expect("direct-tcpip");
        tokio::spawn(pump(server_side, channel));
        let (sent, got, n) = tokio::time::timeout(DEADLINE, echo_round_trip(client, 1 << 20))
            .await
            .expect("round trip in time during the stall");
        assert_eq!((sent, n), (got, 1 << 20));
    }

    // Reading again releases the stalled channel.
    let mut read = 0u64;
    tokio::time::timeout(DEADLINE, async {
        while read < 64 << 20 {
            match unread.wait().await {
                Some(russh::ChannelMsg::Data { data }) => read += data.len() as u64,
                Some(_) => {}
                None => panic!("the stalled channel ended"),
            }
        }
    })
    .await
    .expect("the stalled channel flows again once read");
    assert!(written.load(std::sync::atomic::Ordering::Relaxed) > stalled_at);
}

#[tokio::test]
async fn auth_with_ecdsa_and_rsa_keys_and_refused_key() {
    if !sshd_available() {
        return;
    }
    let sshd = Sshd::start("yes").await;
    let mut authorized = std::fs::read_to_string(sshd.path("authorized_keys")).expect("read");
    for kind in ["ecdsa", "rsa"] {
        let key = sshd.path(&format!("id_{kind}"));
        keygen(&key, kind, "");
        authorized += &std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    }
    std::fs::write(sshd.path("authorized_keys"), authorized).expect("write");
    for kind in ["ecdsa", "rsa"] {
        let mut o = sshd.options(StrictHostKeyChecking::AcceptNew);
        o.identity_files = vec![sshd.path(&format!("id_{kind}"))];
        let conn = SshConnection::connect(&o)
            .await
            .unwrap_or_else(|e| panic!("{kind} auth: {e}"));
        conn.disconnect().await;
    }

    let stranger = sshd.path("stranger");
    keygen(&stranger, "ed25519", "");
    let mut o = sshd.options(StrictHostKeyChecking::AcceptNew);
    o.identity_files = vec![stranger];
    let err = SshConnection::connect(&o)
        .await
        .expect_err("unauthorized key");
    match &err {
        SshError::AuthFailed { methods, .. } => assert!(methods.contains("publickey"), "{methods}"),
        other => panic!("expected AuthFailed, got {other}"),
    }
    assert!(err.to_string().contains("Permission denied"), "{err}");
}
