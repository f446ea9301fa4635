//! Uploads, listings and downloads through ftp-tunnel: every server × client × mode.
//!
//! Each case asserts the data is intact (SHA-256 on both ends) and that its bytes really
//! crossed the SSH connection (the tunnel's `data transfer finished` lines).

use ftp_tunnel_e2e::checked::checked_round_trip;
use ftp_tunnel_e2e::clients::{Client, Mode};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::Tunnel;

const MIB: u64 = 1024 * 1024;

fn transfer(kind: ServerKind, client: Client, mode: Mode, size: u64) {
    let lab = Lab::new(kind, Forwarding::Yes).expect("lab");
    // lftp sends EPRT only on an IPv6 control connection, so that case listens on [::1].
    let bind = if client == Client::Lftp && mode == Mode::Eprt {
        "[::1]"
    } else {
        "127.0.0.1"
    };
    let tunnel = Tunnel::ftp_with(&lab.sshd, bind, lab.server.port(), &[]).expect("tunnel");
    let target = lab.target(&tunnel);
    checked_round_trip(
        &tunnel,
        lab.server.as_ref(),
        &target,
        client,
        mode,
        lab.scratch(),
        size,
    );
}

macro_rules! transfer_cases {
    ($($name:ident: $kind:ident, $client:ident, $mode:ident, $mib:expr;)*) => {$(
        #[test]
        fn $name() {
            transfer(ServerKind::$kind, Client::$client, Mode::$mode, $mib * MIB);
        }
    )*};
}

transfer_cases! {
    vsftpd_curl_epsv: Vsftpd, Curl, Epsv, 20;
    vsftpd_curl_pasv: Vsftpd, Curl, Pasv, 1;
    vsftpd_curl_eprt: Vsftpd, Curl, Eprt, 1;
    vsftpd_curl_port: Vsftpd, Curl, Port, 1;
    vsftpd_ftplib_epsv: Vsftpd, Ftplib, Epsv, 1;
    vsftpd_ftplib_pasv: Vsftpd, Ftplib, Pasv, 1;
    vsftpd_ftplib_eprt: Vsftpd, Ftplib, Eprt, 1;
    vsftpd_ftplib_port: Vsftpd, Ftplib, Port, 1;
    vsftpd_lftp_epsv: Vsftpd, Lftp, Epsv, 1;
    vsftpd_lftp_pasv: Vsftpd, Lftp, Pasv, 1;
    vsftpd_lftp_eprt: Vsftpd, Lftp, Eprt, 1;
    vsftpd_lftp_port: Vsftpd, Lftp, Port, 1;
    pyftpd_curl_epsv: Pyftpd, Curl, Epsv, 1;
    pyftpd_curl_pasv: Pyftpd, Curl, Pasv, 1;
    pyftpd_curl_eprt: Pyftpd, Curl, Eprt, 1;
    pyftpd_curl_port: Pyftpd, Curl, Port, 1;
    pyftpd_ftplib_epsv: Pyftpd, Ftplib, Epsv, 1;
    pyftpd_ftplib_pasv: Pyftpd, Ftplib, Pasv, 1;
    pyftpd_ftplib_eprt: Pyftpd, Ftplib, Eprt, 1;
    pyftpd_ftplib_port: Pyftpd, Ftplib, Port, 1;
    pyftpd_lftp_epsv: Pyftpd, Lftp, Epsv, 1;
    pyftpd_lftp_pasv: Pyftpd, Lftp, Pasv, 1;
    pyftpd_lftp_eprt: Pyftpd, Lftp, Eprt, 1;
    pyftpd_lftp_port: Pyftpd, Lftp, Port, 1;
}
