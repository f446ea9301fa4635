//! Faults on the way: a stranger reaching a passive data listener first, and SSH servers
//! that forbid forwarding (all of it, or every destination but the FTP control port). Each
//! gets a clear FTP reply, and what can go on goes on.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ftp_tunnel_e2e::files::{hex, random_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::peers::{closed_with_nothing_sent, connect_from};
use ftp_tunnel_e2e::rawftp::{RawFtp, Reply};
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::Tunnel;
use ftp_tunnel_e2e::{Error, poll_until};

const TIMEOUT: Duration = Duration::from_secs(10);

fn control(tunnel: &Tunnel) -> (RawFtp, u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
    let (ftp, greeting) = RawFtp::connect(addr, TIMEOUT).expect("connect to tunnel");
    (ftp, greeting.code)
}

/// Waits for a tunnel log line containing `needle` (lines are written as things happen,
/// which may be just after the client has seen the outcome).
fn wait_for_line(tunnel: &Tunnel, needle: &str, what: &str) {
    poll_until(TIMEOUT, || {
        Ok(tunnel
            .lines()
            .iter()
            .any(|l| l.contains(needle))
            .then_some(()))
    })
    .unwrap_or_else(|_| panic!("{what}:\n{}", tunnel.lines().join("\n")));
}

/// A control connection through `tunnel`, greeted, logged in, in binary mode.
fn logged_in(lab: &Lab, tunnel: &Tunnel) -> RawFtp {
    lab.ftp_session(tunnel, TIMEOUT).expect("logged-in session")
}

fn sha256(bytes: &[u8]) -> String {
    hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

#[test]
fn a_stranger_on_a_passive_data_listener_is_refused_and_the_client_served() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let tunnel = lab.tunnel().expect("tunnel");
    let name = "stranger.bin";
    let sum = random_file(&lab.uploaded(name), 300 * 1024).expect("file");

    let mut ftp = logged_in(&lab, &tunnel);
    let data_addr = ftp.epsv().expect("EPSV");

    // The stranger comes first, from 127.0.0.2: it is closed at once, with nothing sent.
    let mut stranger =
        connect_from([127, 0, 0, 2], data_addr, TIMEOUT).expect("the stranger connects");
    closed_with_nothing_sent(&mut stranger, TIMEOUT).expect("the stranger is shut out");
    wait_for_line(&tunnel, "127.0.0.2", "the tunnel names the refused peer");

    // The expected client is still served, on the same listener.
    let mut data = TcpStream::connect_timeout(&data_addr, TIMEOUT).expect("data connection");
    data.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let reply = ftp
        .cmd(&format!("RETR {}/{name}", lab.server.upload_dir()))
        .expect("RETR");
    assert_eq!(reply.class(), 1, "{reply:?}");
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).expect("read data");
    assert_eq!(ftp.read_reply().expect("226").class(), 2);
    assert_eq!(sha256(&bytes), sum);
}

#[test]
fn an_ssh_server_that_forbids_forwarding_gets_every_client_a_421() {
    // sshd takes the first value of a keyword: a Match block at the end overrides.
    let lab = Lab::with_sshd_config(
        ServerKind::Vsftpd,
        Forwarding::Yes,
        "Match all\n    AllowTcpForwarding no\n",
    )
    .expect("lab");
    let tunnel = lab.tunnel().expect("tunnel");
    for attempt in 0..2 {
        let (mut ftp, greeting) = control(&tunnel);
        assert_eq!(greeting, 421, "attempt {attempt}");
        // Then the control connection closes (a read that merely times out is not that).
        match ftp.read_reply() {
            Err(Error::Ftp(reason)) if reason.contains("closed") => {}
            other => panic!("closed after the 421, got {other:?}"),
        }
    }
    wait_for_line(
        &tunnel,
        "administratively prohibited",
        "the tunnel logs why",
    );
}

#[test]
fn an_ssh_server_that_permits_only_the_control_port_refuses_data_clearly() {
    let lab = Lab::with_sshd_config(
        ServerKind::Vsftpd,
        Forwarding::Local,
        "Match all\n    PermitOpen 127.0.0.1:21\n",
    )
    .expect("lab");
    assert_eq!(
        lab.server.port(),
        21,
        "PermitOpen names the FTP server's port"
    );
    let tunnel = lab.tunnel().expect("tunnel");
    let mut ftp = logged_in(&lab, &tunnel);

    // Passive: our listener is up, and the channel to the data port is opened while the
    // client connects. The SSH server refuses it; whichever comes first, the client's
    // connection or the refusal, the data connection fails at once and carries nothing:
    // refused (the listener is already gone) or closed with nothing sent. (The FTP server's
    // own verdict on a transfer would follow after its accept timeout: no transfer is
    // started here.)
    let data_addr = ftp.epsv().expect("EPSV: our listener is up");
    match TcpStream::connect_timeout(&data_addr, TIMEOUT) {
        Err(refused) if refused.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Err(other) => panic!("data connection: neither made nor refused: {other}"),
        Ok(mut data) => closed_with_nothing_sent(&mut data, TIMEOUT)
            .expect("the refused data connection is closed"),
    }
    wait_for_line(
        &tunnel,
        "administratively prohibited",
        "the tunnel logs the SSH server's refusal",
    );

    // Active mode: the remote forward is refused (Forwarding::Local): a clear 4xx at once.
    let port = ftp.cmd("PORT 127,0,0,1,195,80").expect("PORT");
    assert_eq!(port.class(), 4, "{port:?}");
    assert!(
        port.text.to_ascii_lowercase().contains("forward"),
        "the reply says what failed: {port:?}"
    );

    assert_eq!(
        ftp.cmd("NOOP").expect("NOOP").code,
        200,
        "the session goes on"
    );
}

/// EPSV and RETR of a `size`-byte file through a tunnel with `DataTimeout=2`, and no data
/// connection ever made: the final reply and how long it took after RETR.
fn retr_without_a_data_connection(size: u64) -> (Reply, Duration) {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let tunnel = Tunnel::ftp_with(
        &lab.sshd,
        "127.0.0.1",
        lab.server.port(),
        &["-o", "DataTimeout=2"],
    )
    .expect("tunnel");
    let name = "never.bin";
    random_file(&lab.uploaded(name), size).expect("file");
    let mut ftp = logged_in(&lab, &tunnel);
    let _data_addr = ftp.epsv().expect("EPSV");
    let started = std::time::Instant::now();
    let mut reply = ftp
        .cmd(&format!("RETR {}/{name}", lab.server.upload_dir()))
        .expect("RETR");
    if reply.class() == 1 {
        reply = ftp.read_reply().expect("a final reply");
    }
    let took = started.elapsed();
    wait_for_line(
        &tunnel,
        "no data connection within",
        "the tunnel logs why the data path closed",
    );
    assert_eq!(
        ftp.cmd("NOOP").expect("NOOP").code,
        200,
        "the session goes on"
    );
    (reply, took)
}

#[test]
fn a_data_client_that_never_connects_gets_a_failure_reply_after_data_timeout() {
    // Far more than every buffer between vsftpd and the tunnel: the server is still writing
    // when the data path closes, and says the transfer failed.
    let (reply, took) = retr_without_a_data_connection(64 * 1024 * 1024);
    assert_eq!(reply.class(), 4, "the transfer failed: {reply:?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "the reply came after {took:?}, DataTimeout is 2 s"
    );
}

#[test]
fn a_small_file_never_fetched_is_not_reported_complete() {
    // Small enough to fit in the buffers between vsftpd and the tunnel: vsftpd writes it all
    // and says "226 Transfer complete" although nobody received it. The tunnel reports the
    // data path failed, and the client hears 426 instead.
    let (reply, took) = retr_without_a_data_connection(4 * 1024 * 1024);
    assert_eq!(reply.code, 426, "the transfer failed: {reply:?}");
    assert!(
        reply.text.contains("no data connection within"),
        "the reply says why: {reply:?}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "the reply came after {took:?}, DataTimeout is 2 s"
    );
}
