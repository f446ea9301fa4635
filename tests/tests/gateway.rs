//! Gateway mode (`-g`): FTP clients on another host. The client runs in the test's network
//! namespace (another host, as far as the network goes) and reaches the tunnel on the root
//! namespace's end of the veth link; passive replies must name that address, and active
//! mode must reach the client's own data listener over the link.

use std::time::Duration;

use ftp_tunnel_e2e::clients::{Client, Mode, round_trip};
use ftp_tunnel_e2e::files::{random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::{Tunnel, ssh_args};

fn from_another_host(client: Client, mode: Mode) {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let mut args = ssh_args(&lab.sshd);
    args.push("-g".into());
    args.push("-L".into());
    args.push(format!("ftp/0:127.0.0.1:{}", lab.server.port()));
    args.push(lab.sshd.addr().to_string());
    let tunnel = Tunnel::start(&args, 1).expect("tunnel");
    assert_eq!(
        tunnel.first_host(),
        "0.0.0.0",
        "-g listens on every address"
    );

    // The client is on the other side of the link: it reaches us on our veth address.
    let gateway = lab.ns.host_ip().to_string();
    let target = lab.target_at(&gateway, tunnel.port(), Some(lab.ns.name()));
    let src = lab.scratch().join("src.bin");
    let out = lab.scratch().join("out.bin");
    let size = 700 * 1024;
    let sum = random_file(&src, size).expect("random file");
    let name = format!("gw-{client}-{}.bin", mode.verb());
    let rt = round_trip(client, mode, &target, &src, &name, &out).expect("round trip");
    assert!(rt.listing.contains(&name), "listing:\n{}", rt.listing);
    assert_eq!(sha256_file(&lab.uploaded(&name)).expect("hash"), sum);
    assert_eq!(sha256_file(&out).expect("hash"), sum);
    tunnel
        .wait_transfer(Duration::from_secs(15), |t| {
            t.to_client == size && t.mode == mode.kind()
        })
        .expect("the download crossed SSH");

    if mode == Mode::Pasv {
        // The 227 names the address the client reached us on, not loopback.
        let comma = gateway.replace('.', ",");
        assert!(
            tunnel
                .lines()
                .iter()
                .any(|l| l.contains("rewrote") && l.contains(&format!("({comma},"))),
            "a 227 naming {gateway}:\n{}",
            tunnel.lines().join("\n")
        );
    }
}

#[test]
fn gateway_curl_pasv() {
    from_another_host(Client::Curl, Mode::Pasv);
}

#[test]
fn gateway_curl_epsv() {
    from_another_host(Client::Curl, Mode::Epsv);
}

#[test]
fn gateway_curl_port() {
    from_another_host(Client::Curl, Mode::Port);
}

#[test]
fn gateway_ftplib_eprt() {
    from_another_host(Client::Ftplib, Mode::Eprt);
}
