//! Tests of the demo's building blocks on their own (no tunnel): the FTP client against
//! libunftp in all four modes, and the SSH server against a plain russh client.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::ftp_client::{FtpMode, Step, run_mode};
use super::ftp_server::FtpServer;
use super::make_payload;
use super::ssh_server::{SshServer, generate_ed25519, private_key_openssh};

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn ftp_client_and_libunftp_all_modes() {
    let served = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = FtpServer::start(served.path()).await.unwrap();
    let payloads = [make_payload(&local.path().join("a.bin"), 300_000).unwrap()];
    for mode in FtpMode::ALL {
        let outcome =
            tokio::time::timeout(DEADLINE, run_mode(server.local_addr(), mode, &payloads))
                .await
                .unwrap_or_else(|_| panic!("{mode} timed out"));
        if let Err(e) = &outcome.result {
            panic!("{mode}: {e}");
        }
        assert!(outcome.client_addr.is_some());
        let transfers = outcome.transfers;
        let steps: Vec<Step> = transfers.iter().map(|t| t.step).collect();
        assert_eq!(steps, [Step::Upload, Step::List, Step::Download], "{mode}");
        assert_eq!(transfers[0].bytes, 300_000);
        assert_eq!(transfers[2].bytes, 300_000);
        let stored = served
            .path()
            .join(format!("demo-{}-0.bin", mode.verb().to_ascii_lowercase()));
        assert_eq!(std::fs::metadata(stored).unwrap().len(), 300_000);
    }
    assert_eq!(
        server.eprt_rewrites(),
        3,
        "one EPRT per STOR, LIST and RETR"
    );
}

#[test]
fn openssh_private_key_round_trips() {
    let key = generate_ed25519();
    let text = private_key_openssh(&key).unwrap();
    assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let parsed = PrivateKey::from_openssh(&text).unwrap();
    assert_eq!(parsed.public_key(), key.public_key());
}

/// A russh client that checks the host key and hands out forwarded-tcpip channels.
struct TestClient {
    host_key: KeyData,
    forwarded: mpsc::UnboundedSender<russh::Channel<client::Msg>>,
}

impl client::Handler for TestClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(key.certificate().is_none() && key.public_key().key_data() == &self.host_key)
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let _ = self.forwarded.send(channel);
        Ok(())
    }
}

async fn connect(
    server: &SshServer,
    key: PrivateKey,
) -> (
    client::Handle<TestClient>,
    bool,
    mpsc::UnboundedReceiver<russh::Channel<client::Msg>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = TestClient {
        host_key: server.host_public_key().key_data().clone(),
        forwarded: tx,
    };
    let mut handle = client::connect(
        Arc::new(client::Config::default()),
        server.local_addr(),
        handler,
    )
    .await
    .unwrap();
    let auth = handle
        .authenticate_publickey("demo", PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .unwrap();
    (handle, auth.success(), rx)
}

/// An echo server that uppercases nothing: it returns what it reads, then closes.
async fn echo_once(listener: TcpListener) {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    s.write_all(&buf).await.unwrap();
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn ssh_server_direct_tcpip_and_remote_forward() {
    let client_key = generate_ed25519();
    let server = SshServer::start(
        (Ipv4Addr::LOCALHOST, 0).into(),
        generate_ed25519(),
        client_key.public_key().clone(),
    )
    .await
    .unwrap();
    let line = server.known_hosts_line().unwrap();
    assert!(
        line.starts_with(&format!(
            "[127.0.0.1]:{} ssh-ed25519 AAAA",
            server.local_addr().port()
        )),
        "{line}"
    );
    assert_eq!(line.split(' ').count(), 3, "{line}");

    // A key other than the authorized one is refused.
    let (_h, ok, _) = connect(&server, generate_ed25519()).await;
    assert!(!ok);

    let (handle, ok, mut forwarded) = connect(&server, client_key).await;
    assert!(ok);

    // direct-tcpip with half-close: the echo only answers after our EOF.
    let target = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let echo = tokio::spawn(echo_once(target));
    let channel = handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(target_addr.port()), "127.0.0.1", 1)
        .await
        .unwrap();
    let mut stream = channel.into_stream();
    stream.write_all(b"through the tunnel").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, b"through the tunnel");
    echo.await.unwrap();

    // direct-tcpip to a closed port is refused, not hung.
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(
        handle
            .channel_open_direct_tcpip("127.0.0.1", u32::from(closed_port), "127.0.0.1", 1)
            .await
            .is_err()
    );

    // tcpip-forward on port 0: the server picks a port and connections come back to us.
    let port = handle.tcpip_forward("127.0.0.1", 0).await.unwrap();
    assert_ne!(port, 0);
    let remote: SocketAddr = (Ipv4Addr::LOCALHOST, u16::try_from(port).unwrap()).into();
    let mut outside = TcpStream::connect(remote).await.unwrap();
    let channel = tokio::time::timeout(DEADLINE, forwarded.recv())
        .await
        .unwrap()
        .unwrap();
    let mut inside = channel.into_stream();
    outside.write_all(b"active mode").await.unwrap();
    outside.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(DEADLINE, inside.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"active mode");
    inside.write_all(b"reply").await.unwrap();
    inside.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(DEADLINE, outside.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"reply");

    // cancel-tcpip-forward closes the listener: poll until connecting fails.
    handle
        .cancel_tcpip_forward("127.0.0.1", port)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while TcpStream::connect(remote).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "forward still open");
        tokio::task::yield_now().await;
    }
    // Cancelling an unknown forward is refused.
    assert!(
        handle
            .cancel_tcpip_forward("127.0.0.1", port)
            .await
            .is_err()
    );

    let stats = server.stats();
    assert_eq!(stats.direct_tcpip, 1);
    assert_eq!(stats.forwards_requested, 1);
    assert_eq!(stats.forwards_cancelled, 1);
    assert_eq!(stats.forwarded_tcpip, 1);
    assert!(stats.auth_rejected >= 1);
}

/// The demo's host-key check is real: with a known_hosts entry for another key and
/// StrictHostKeyChecking=yes, the tunnel refuses to start against the demo SSH server.
#[tokio::test]
async fn tunnel_refuses_a_wrong_host_key() {
    use crate::settings::FtpSettings;
    use crate::ssh::{SshOptions, StrictHostKeyChecking};
    use crate::tunnel::{Tunnel, TunnelConfig};

    let dir = tempfile::tempdir().unwrap();
    let client_key = generate_ed25519();
    let identity = dir.path().join("id_ed25519");
    super::write_private(
        &identity,
        private_key_openssh(&client_key).unwrap().as_bytes(),
    )
    .unwrap();
    let server = SshServer::start(
        (Ipv4Addr::LOCALHOST, 0).into(),
        generate_ed25519(),
        client_key.public_key().clone(),
    )
    .await
    .unwrap();
    // A second server's line, rewritten to name the first server's address.
    let impostor = SshServer::start(
        (Ipv4Addr::LOCALHOST, 0).into(),
        generate_ed25519(),
        client_key.public_key().clone(),
    )
    .await
    .unwrap();
    let wrong = impostor.known_hosts_line().unwrap().replace(
        &format!(":{} ", impostor.local_addr().port()),
        &format!(":{} ", server.local_addr().port()),
    );
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{wrong}\n")).unwrap();

    let config = TunnelConfig {
        ssh: SshOptions {
            host: "127.0.0.1".to_owned(),
            port: server.local_addr().port(),
            user: "demo".to_owned(),
            identity_files: vec![identity],
            known_hosts,
            strict_host_key_checking: StrictHostKeyChecking::Yes,
            connect_timeout: DEADLINE,
            ..SshOptions::new("127.0.0.1", 0, "demo")
        },
        forwards: vec![],
        remote_forwards: vec![],
        ftp: FtpSettings::default(),
        admin: Default::default(),
    };
    let started = tokio::time::timeout(DEADLINE, Tunnel::start(config))
        .await
        .expect("Tunnel::start hung");
    let Err(error) = started else {
        panic!("a changed host key was accepted");
    };
    assert!(
        error
            .to_string()
            .contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{error}"
    );
    assert_eq!(server.stats().direct_tcpip, 0);
}
