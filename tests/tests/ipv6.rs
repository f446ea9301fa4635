//! IPv6: an FTP server listening on `::1` only, reached by FTP clients over IPv6 and over
//! IPv4, in every mode the client offers. Data must reach the server's own address family:
//! an active transfer for an IPv4 client becomes `EPRT |2|...` towards the server, and the
//! remote listener binds on `::1`.

use std::time::Duration;

use ftp_tunnel_e2e::clients::{Client, Mode, round_trip};
use ftp_tunnel_e2e::files::{random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::{Tunnel, ssh_args};

fn transfer(client_over_ipv6: bool, client: Client, mode: Mode) {
    let lab = Lab::new(ServerKind::VsftpdIpv6, Forwarding::Yes).expect("lab");
    let bind = if client_over_ipv6 {
        "[::1]"
    } else {
        "127.0.0.1"
    };
    let mut args = ssh_args(&lab.sshd);
    args.push("-L".into());
    args.push(format!("ftp/{bind}:0:[::1]:{}", lab.server.port()));
    args.push(lab.sshd.addr().to_string());
    let tunnel = Tunnel::start(&args, 1).expect("tunnel");
    let target = lab.target(&tunnel);

    let src = lab.scratch().join("src.bin");
    let out = lab.scratch().join("out.bin");
    let size = 512 * 1024;
    let sum = random_file(&src, size).expect("random file");
    let name = format!("v6-{client}-{}.bin", mode.verb());
    let rt = round_trip(client, mode, &target, &src, &name, &out).expect("round trip");
    assert!(rt.listing.contains(&name), "listing:\n{}", rt.listing);
    assert_eq!(sha256_file(&lab.uploaded(&name)).expect("hash"), sum);
    assert_eq!(sha256_file(&out).expect("hash"), sum);

    let wait = Duration::from_secs(15);
    tunnel
        .wait_transfer(wait, |t| t.to_client == size && t.mode == mode.kind())
        .expect("the download crossed SSH");
    if mode.kind() == "active" {
        // What the FTP server was told: an address of its own family.
        let log = std::fs::read_to_string(lab.server.log_path()).unwrap_or_default();
        assert!(
            log.contains("EPRT |2|::1|"),
            "the server got EPRT |2|::1|...:\n{log}"
        );
    }
}

macro_rules! cases {
    ($($name:ident: $v6:expr, $client:ident, $mode:ident;)*) => {$(
        #[test]
        fn $name() {
            transfer($v6, Client::$client, Mode::$mode);
        }
    )*};
}

cases! {
    ipv6_client_curl_epsv: true, Curl, Epsv;
    ipv6_client_curl_eprt: true, Curl, Eprt;
    ipv6_client_ftplib_epsv: true, Ftplib, Epsv;
    ipv6_client_lftp_eprt: true, Lftp, Eprt;
    ipv4_client_curl_pasv: false, Curl, Pasv;
    ipv4_client_curl_epsv: false, Curl, Epsv;
    ipv4_client_ftplib_port: false, Ftplib, Port;
    ipv4_client_curl_eprt: false, Curl, Eprt;
}
