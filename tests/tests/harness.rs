//! Self-tests of the fixtures, independent of ftp-tunnel: the clients and servers work
//! in every mode inside the namespace, and OpenSSH's plain `ssh -L` carries the control
//! connection but not the data connection (proof that the namespace isolation is real).

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use ftp_tunnel_e2e::clients::{Client, Mode, round_trip};
use ftp_tunnel_e2e::files::{random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::{ChildGuard, free_port, poll_until};

/// Runs a client against the server directly inside the namespace (no SSH at all).
fn direct(kind: ServerKind, client: Client, mode: Mode) {
    let lab = Lab::new(kind, Forwarding::Yes).expect("lab");
    let src = lab.scratch().join("src.bin");
    let out = lab.scratch().join("out.bin");
    let sum = random_file(&src, 256 * 1024).expect("random file");
    let target = lab.target_at("127.0.0.1", lab.server.port(), Some(lab.ns.name()));
    let name = format!("direct-{client}-{}.bin", mode.verb());
    let rt = round_trip(client, mode, &target, &src, &name, &out).expect("round trip");
    assert!(
        rt.listing.contains(&name),
        "listing lacks {name}: {}",
        rt.listing
    );
    assert_eq!(sha256_file(&out).expect("hash"), sum);
    assert_eq!(sha256_file(&lab.uploaded(&name)).expect("hash"), sum);
}

macro_rules! direct_cases {
    ($($name:ident: $kind:ident, $client:ident, $mode:ident;)*) => {$(
        #[test]
        fn $name() {
            direct(ServerKind::$kind, Client::$client, Mode::$mode);
        }
    )*};
}

direct_cases! {
    direct_vsftpd_curl_epsv: Vsftpd, Curl, Epsv;
    direct_vsftpd_curl_pasv: Vsftpd, Curl, Pasv;
    direct_vsftpd_curl_eprt: Vsftpd, Curl, Eprt;
    direct_vsftpd_curl_port: Vsftpd, Curl, Port;
    direct_vsftpd_ftplib_epsv: Vsftpd, Ftplib, Epsv;
    direct_vsftpd_ftplib_pasv: Vsftpd, Ftplib, Pasv;
    direct_vsftpd_ftplib_eprt: Vsftpd, Ftplib, Eprt;
    direct_vsftpd_ftplib_port: Vsftpd, Ftplib, Port;
    direct_vsftpd_lftp_epsv: Vsftpd, Lftp, Epsv;
    direct_vsftpd_lftp_pasv: Vsftpd, Lftp, Pasv;
    direct_vsftpd_lftp_port: Vsftpd, Lftp, Port;
    direct_pyftpd_curl_epsv: Pyftpd, Curl, Epsv;
    direct_pyftpd_curl_pasv: Pyftpd, Curl, Pasv;
    direct_pyftpd_curl_eprt: Pyftpd, Curl, Eprt;
    direct_pyftpd_curl_port: Pyftpd, Curl, Port;
    direct_pyftpd_ftplib_epsv: Pyftpd, Ftplib, Epsv;
    direct_pyftpd_ftplib_pasv: Pyftpd, Ftplib, Pasv;
    direct_pyftpd_ftplib_eprt: Pyftpd, Ftplib, Eprt;
    direct_pyftpd_ftplib_port: Pyftpd, Ftplib, Port;
    direct_pyftpd_lftp_epsv: Pyftpd, Lftp, Epsv;
    direct_pyftpd_lftp_pasv: Pyftpd, Lftp, Pasv;
    direct_pyftpd_lftp_port: Pyftpd, Lftp, Port;
}

/// `ssh -N -L` as a stand-in tunnel: control works, the PASV data connection cannot.
fn plain_ssh_forward_carries_control_only(kind: ServerKind) {
    let lab = Lab::new(kind, Forwarding::Yes).expect("lab");
    let port = free_port().expect("free port");
    let child = Command::new("ssh")
        .args(["-N", "-T", "-p"])
        .arg(lab.sshd.port().to_string())
        .arg("-i")
        .arg(lab.sshd.client_key())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            lab.sshd.known_hosts().display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-F",
            "/dev/null",
            "-L",
        ])
        .arg(format!("127.0.0.1:{port}:127.0.0.1:{}", lab.server.port()))
        .arg(format!("root@{}", lab.sshd.addr()))
        .stdin(Stdio::null())
        .spawn()
        .expect("ssh");
    let mut ssh = ChildGuard(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut ftp, greeting) = poll_until(Duration::from_secs(15), || {
        if let Some(status) = ssh.0.try_wait()? {
            return Err(ftp_tunnel_e2e::Error::Setup(format!(
                "ssh exited: {status}"
            )));
        }
        Ok(RawFtp::connect(addr, Duration::from_secs(10)).ok())
    })
    .expect("control connection through ssh -L");
    assert_eq!(greeting.code, 220, "{greeting:?}");
    ftp.login(lab.server.user(), lab.server.pass())
        .expect("login through ssh -L");
    assert_eq!(ftp.cmd("PWD").expect("PWD").code, 257);

    let data = ftp.pasv().expect("PASV reply");
    // The server really listens for the data connection inside the namespace...
    assert!(
        lab.ns.listening_ports().expect("ss").contains(&data.port()),
        "server does not listen on {data}"
    );
    // ...but it is unreachable from the root namespace, where the FTP client is.
    let attempt = TcpStream::connect_timeout(&data, Duration::from_secs(3));
    assert!(
        attempt.is_err(),
        "a data connection to {data} succeeded outside SSH: the namespace isolation is broken"
    );
    assert_eq!(ftp.cmd("NOOP").expect("NOOP").class(), 2);
}

#[test]
fn plain_ssh_forward_vsftpd_control_only() {
    plain_ssh_forward_carries_control_only(ServerKind::Vsftpd);
}

#[test]
fn plain_ssh_forward_pyftpd_control_only() {
    plain_ssh_forward_carries_control_only(ServerKind::Pyftpd);
}

/// The FTP server's port is not reachable from the root namespace at all.
#[test]
fn ftp_server_is_unreachable_outside_namespace() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let addr = SocketAddr::from(([127, 0, 0, 1], lab.server.port()));
    // Port 21 might be served by something else on this machine; what must not happen
    // is reaching *our* vsftpd, which greets with a 220.
    if let Ok((_, greeting)) = RawFtp::connect(addr, Duration::from_secs(2)) {
        assert!(
            !greeting.text.contains("vsFTPd"),
            "reached the namespaced vsftpd from outside"
        );
    }
    let veth = SocketAddr::from((lab.ns.ns_ip(), lab.server.port()));
    assert!(TcpStream::connect_timeout(&veth, Duration::from_secs(2)).is_err());
}

/// The whole harness (fixtures, clients, transfer-line parsing) against
/// `tests/tools/fake_tunnel.py`, an OpenSSH-based stand-in for ftp-tunnel: when this passes
/// and the real binary's cases fail, the fault is in the binary, not in the harness.
fn through_fake_tunnel(kind: ServerKind, client: Client, mode: Mode) {
    use ftp_tunnel_e2e::tunnel::{Tunnel, ssh_args};
    let lab = Lab::new(kind, Forwarding::Yes).expect("lab");
    let fake = ftp_tunnel_e2e::workspace_root().join("tests/tools/fake_tunnel.py");
    let mut args = ssh_args(&lab.sshd);
    args.push("-L".into());
    args.push(format!("ftp/127.0.0.1:0:127.0.0.1:{}", lab.server.port()));
    args.push(lab.sshd.addr().to_string());
    let tunnel = Tunnel::start_program(&fake, &args, 1).expect("fake tunnel");
    let src = lab.scratch().join("src.bin");
    let out = lab.scratch().join("out.bin");
    let size = 512 * 1024;
    let sum = random_file(&src, size).expect("random file");
    let name = "via-fake.bin";
    let rt = round_trip(client, mode, &lab.target(&tunnel), &src, name, &out).expect("round trip");
    assert!(rt.listing.contains(name));
    assert_eq!(sha256_file(&out).expect("hash"), sum);
    let wait = Duration::from_secs(10);
    tunnel
        .wait_transfer(wait, |t| t.to_server == size && t.mode == mode.kind())
        .expect("upload line");
    tunnel
        .wait_transfer(wait, |t| t.to_client == size && t.mode == mode.kind())
        .expect("download line");
}

#[test]
fn fake_tunnel_vsftpd_curl_epsv() {
    through_fake_tunnel(ServerKind::Vsftpd, Client::Curl, Mode::Epsv);
}

#[test]
fn fake_tunnel_pyftpd_ftplib_port() {
    through_fake_tunnel(ServerKind::Pyftpd, Client::Ftplib, Mode::Port);
}
