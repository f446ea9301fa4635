//! `-R ftp/` tunnels: the FTP client beyond the SSH server, the FTP server on the tunnel's
//! side (see `remote_lab`: the two loopbacks are apart, so only the tunnel connects them).
//! Every server × client × mode round trip with SHA-256 on both ends and the bytes seen in
//! the tunnel's transfer lines; plain `-R tcp/` and `-L tcp/`; several tunnels on one SSH
//! connection; a stranger on a remote data listener; hundreds of transfers through dropbear.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ftp_tunnel_e2e::checked::checked_round_trip;
use ftp_tunnel_e2e::clients::{Client, Mode, round_trip};
use ftp_tunnel_e2e::files::{random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::peers::{closed_with_nothing_sent, connect_from};
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::remote_lab::{RemoteLab, SshKind};
use ftp_tunnel_e2e::sshd::{Forwarding, SshServer};
use ftp_tunnel_e2e::tunnel::{Tunnel, ssh_args};
use ftp_tunnel_e2e::{free_port, poll_until, python, run_checked, workspace_root};

const WAIT: Duration = Duration::from_secs(15);

fn transfer(kind: ServerKind, client: Client, mode: Mode) {
    let lab = RemoteLab::new(kind, SshKind::OpenSsh).expect("lab");
    // lftp sends EPRT only on an IPv6 control connection.
    let bind = if client == Client::Lftp && mode == Mode::Eprt {
        "[::1]"
    } else {
        "127.0.0.1"
    };
    let tunnel = lab.tunnel(bind, &[]).expect("tunnel");
    let target = lab.target(&tunnel);
    let scratch = tempfile::tempdir().expect("scratch");
    checked_round_trip(
        &tunnel,
        lab.server.as_ref(),
        &target,
        client,
        mode,
        scratch.path(),
        1024 * 1024 + 17,
    );
}

macro_rules! remote_cases {
    ($($name:ident: $kind:ident, $client:ident, $mode:ident;)*) => {$(
        #[test]
        fn $name() {
            transfer(ServerKind::$kind, Client::$client, Mode::$mode);
        }
    )*};
}

remote_cases! {
    remote_vsftpd_curl_epsv: Vsftpd, Curl, Epsv;
    remote_vsftpd_curl_pasv: Vsftpd, Curl, Pasv;
    remote_vsftpd_curl_eprt: Vsftpd, Curl, Eprt;
    remote_vsftpd_curl_port: Vsftpd, Curl, Port;
    remote_vsftpd_ftplib_epsv: Vsftpd, Ftplib, Epsv;
    remote_vsftpd_ftplib_pasv: Vsftpd, Ftplib, Pasv;
    remote_vsftpd_ftplib_eprt: Vsftpd, Ftplib, Eprt;
    remote_vsftpd_ftplib_port: Vsftpd, Ftplib, Port;
    remote_vsftpd_lftp_epsv: Vsftpd, Lftp, Epsv;
    remote_vsftpd_lftp_pasv: Vsftpd, Lftp, Pasv;
    remote_vsftpd_lftp_eprt: Vsftpd, Lftp, Eprt;
    remote_vsftpd_lftp_port: Vsftpd, Lftp, Port;
    remote_pyftpd_curl_epsv: Pyftpd, Curl, Epsv;
    remote_pyftpd_curl_pasv: Pyftpd, Curl, Pasv;
    remote_pyftpd_curl_eprt: Pyftpd, Curl, Eprt;
    remote_pyftpd_curl_port: Pyftpd, Curl, Port;
    remote_pyftpd_ftplib_epsv: Pyftpd, Ftplib, Epsv;
    remote_pyftpd_ftplib_pasv: Pyftpd, Ftplib, Pasv;
    remote_pyftpd_ftplib_eprt: Pyftpd, Ftplib, Eprt;
    remote_pyftpd_ftplib_port: Pyftpd, Ftplib, Port;
    remote_pyftpd_lftp_epsv: Pyftpd, Lftp, Epsv;
    remote_pyftpd_lftp_pasv: Pyftpd, Lftp, Pasv;
    remote_pyftpd_lftp_eprt: Pyftpd, Lftp, Eprt;
    remote_pyftpd_lftp_port: Pyftpd, Lftp, Port;
}

/// The first reply line a server sends on connecting to `addr`.
fn banner(addr: SocketAddr) -> String {
    let (_, reply) = RawFtp::connect(addr, WAIT).expect("connect");
    reply.text
}

#[test]
fn plain_tcp_forwards_both_ways_and_several_tunnels_share_one_ssh_connection() {
    let lab = RemoteLab::new(ServerKind::Pyftpd, SshKind::OpenSsh).expect("lab");
    let ftp_port = lab.server.port();
    let (r_ftp, r_tcp) = (free_port().expect("port"), free_port().expect("port"));
    let tunnel = lab
        .tunnel_with(
            &[
                "-R",
                &format!("ftp/127.0.0.1:{r_ftp}:127.0.0.1:{ftp_port}"),
                "-R",
                &format!("tcp/127.0.0.1:{r_tcp}:127.0.0.1:{ftp_port}"),
            ],
            &[],
        )
        .expect("tunnel");
    // -R tcp/: the FTP server's banner, carried as plain bytes.
    let plain = banner(SocketAddr::from(([127, 0, 0, 1], r_tcp)));
    assert!(plain.starts_with("220"), "{plain}");
    // -R ftp/ on the same connection still serves a whole round trip.
    let target = lab.target(&tunnel);
    let scratch = tempfile::tempdir().expect("scratch");
    let src = scratch.path().join("src.bin");
    let out = scratch.path().join("out.bin");
    let sum = random_file(&src, 200_000).expect("file");
    round_trip(Client::Curl, Mode::Epsv, &target, &src, "shared.bin", &out).expect("round trip");
    assert_eq!(sha256_file(&out).expect("hash"), sum);
    assert_eq!(tunnel.listeners().len(), 2, "{:?}", tunnel.listeners());
}

#[test]
fn local_plain_tcp_forward_carries_bytes() {
    let lab = Lab::new(ServerKind::Pyftpd, Forwarding::Yes).expect("lab");
    let mut args = ssh_args(&lab.sshd);
    args.extend([
        "-L".to_string(),
        format!("tcp/127.0.0.1:0:127.0.0.1:{}", lab.server.port()),
        lab.sshd.addr().to_string(),
    ]);
    let tunnel = Tunnel::start(&args, 1).expect("tunnel");
    let text = banner(SocketAddr::from(([127, 0, 0, 1], tunnel.port())));
    assert!(text.starts_with("220"), "{text}");
}

#[test]
fn a_stranger_on_the_remote_data_listener_is_refused_and_the_client_served() {
    let lab = RemoteLab::new(ServerKind::Pyftpd, SshKind::OpenSsh).expect("lab");
    let tunnel = lab.tunnel("127.0.0.1", &[]).expect("tunnel");
    let control = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
    let (mut ftp, _) = RawFtp::connect(control, WAIT).expect("connect");
    ftp.login("user", "pass").expect("login");
    let data = ftp.epsv().expect("EPSV");
    // The stranger comes from another loopback address than the client's 127.0.0.1, and
    // first.
    let mut stranger =
        connect_from([127, 0, 0, 2], data, WAIT).expect("the stranger could not connect at all");
    ftp.send("LIST").expect("LIST");
    let mut client_data = TcpStream::connect(data).expect("the client's data connection");
    let reply = ftp.read_reply().expect("150");
    assert!(reply.class() == 1, "{reply:?}");
    let mut listing = String::new();
    std::io::Read::read_to_string(&mut client_data, &mut listing).expect("listing");
    let done = ftp.read_reply().expect("226");
    assert_eq!(done.class(), 2, "{done:?}");
    // The stranger got nothing: its connection was closed without a byte.
    closed_with_nothing_sent(&mut stranger, WAIT).expect("the stranger received data");
    poll_until(WAIT, || {
        Ok(tunnel
            .lines()
            .iter()
            .any(|l| l.contains("refused a data connection"))
            .then_some(()))
    })
    .expect("the refusal is logged");
}

fn many_transfers(lab_target: &ftp_tunnel_e2e::clients::Target, count: usize) {
    let script = workspace_root().join("tests/tools/many_transfers.py");
    let out = run_checked(
        std::process::Command::new(python())
            .arg(script)
            .arg(&lab_target.host)
            .arg(lab_target.port.to_string())
            .arg(&lab_target.user)
            .arg(&lab_target.pass)
            .arg(&lab_target.dir)
            .arg(count.to_string()),
    )
    .expect("many transfers");
    assert_eq!(out.trim(), format!("ok {count} {count}"));
}

#[test]
fn dropbear_remote_tunnel_carries_300_passive_and_300_active_transfers_in_one_session() {
    let lab = RemoteLab::new(ServerKind::Pyftpd, SshKind::Dropbear).expect("lab");
    let tunnel = lab.tunnel("127.0.0.1", &[]).expect("tunnel");
    many_transfers(&lab.target(&tunnel), 300);
}

#[test]
fn dropbear_local_tunnel_carries_300_passive_and_300_active_transfers_in_one_session() {
    let ns = ftp_tunnel_e2e::netns::NetNs::new().expect("ns");
    let ssh = ftp_tunnel_e2e::dropbear::Dropbear::start(&ns, ftp_tunnel_e2e::sshd::Side::Namespace)
        .expect("dropbear");
    let server = ftp_tunnel_e2e::pyftpd::Pyftpd::start(&ns).expect("pyftpd");
    let mut args = ssh_args(&ssh);
    args.extend([
        "-L".to_string(),
        format!(
            "ftp/127.0.0.1:0:127.0.0.1:{}",
            ftp_tunnel_e2e::FtpServer::port(&server)
        ),
        ssh.addr().to_string(),
    ]);
    let tunnel = Tunnel::start(&args, 1).expect("tunnel");
    let target = ftp_tunnel_e2e::clients::Target {
        host: "127.0.0.1".into(),
        port: tunnel.port(),
        user: "user".into(),
        pass: "pass".into(),
        dir: String::new(),
        netns: None,
    };
    many_transfers(&target, 300);
    drop(tunnel);
    drop(server);
}
