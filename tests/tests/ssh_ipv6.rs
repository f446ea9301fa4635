//! An SSH server reached over IPv6: sshd in the namespace listens on the veth link's IPv6
//! address as well as its IPv4 one, and the tunnel is told `-6` and the IPv6 literal. The FTP
//! server listens on the namespace's 127.0.0.1, which nothing outside reaches but sshd, so
//! every checked transfer crossed the IPv6 SSH connection; sshd's log names the IPv6 peer.
//! The FTP clients come over IPv4 and over IPv6 (the mixed cases), passive and active.

use std::net::SocketAddr;
use std::time::Duration;

use ftp_tunnel_e2e::checked::checked_round_trip;
use ftp_tunnel_e2e::clients::{Client, Mode};
use ftp_tunnel_e2e::lab::Lab;
use ftp_tunnel_e2e::login::{home_env, run};
use ftp_tunnel_e2e::netns::NetNs;
use ftp_tunnel_e2e::open_tempdir;
use ftp_tunnel_e2e::sshd::{Forwarding, SSHD_PORT, Sshd};
use ftp_tunnel_e2e::tunnel::{Tunnel, ssh_args};
use ftp_tunnel_e2e::vsftpd::Vsftpd;

/// A lab whose sshd also listens on the namespace's IPv6 address, with that address in the
/// client's known_hosts.
fn ipv6_lab() -> Lab {
    let ns = NetNs::new().expect("netns");
    let listen = format!("ListenAddress [{}]:{SSHD_PORT}\n", ns.ns_ip6());
    let sshd = Sshd::start_with(&ns, Forwarding::Yes, &listen).expect("sshd");
    // start_with waited for the port; the IPv6 listener may come a moment after the IPv4 one.
    let ipv6_listener = SocketAddr::from((ns.ns_ip6(), SSHD_PORT));
    ns.wait_listening_on(ipv6_listener, Duration::from_secs(10))
        .expect("sshd listens on IPv6");
    // The host key under the IPv6 name too, as `ssh` would have recorded it.
    let known = std::fs::read_to_string(sshd.known_hosts()).expect("known_hosts");
    let line = format!("[{}]:{SSHD_PORT} {}\n", ns.ns_ip6(), sshd.host_key());
    std::fs::write(sshd.known_hosts(), format!("{known}{line}")).expect("known_hosts");
    let server = Box::new(Vsftpd::start(&ns).expect("vsftpd"));
    Lab { server, sshd, ns }
}

/// `-6`, port, user, key and known_hosts, an FTP forward on `bind`, and the IPv6 literal.
fn args_over_ipv6(lab: &Lab, bind: &str) -> Vec<String> {
    let mut args = ssh_args(&lab.sshd);
    args.push("-6".into());
    args.push("-L".into());
    args.push(format!("ftp/{bind}:0:127.0.0.1:{}", lab.server.port()));
    args.push(lab.ns.ns_ip6().to_string());
    args
}

fn transfer(client_over_ipv6: bool, client: Client, mode: Mode) {
    let lab = ipv6_lab();
    let bind = if client_over_ipv6 {
        "[::1]"
    } else {
        "127.0.0.1"
    };
    let tunnel = Tunnel::start(&args_over_ipv6(&lab, bind), 1).expect("tunnel");
    let peer = format!("from {} port", lab.ns.host_ip6());
    let log = lab.sshd.log();
    assert!(
        log.contains("Accepted publickey for root") && log.contains(&peer),
        "sshd saw the login come over IPv6 ({peer}):\n{log}"
    );
    let target = lab.target(&tunnel);
    checked_round_trip(
        &tunnel,
        lab.server.as_ref(),
        &target,
        client,
        mode,
        lab.scratch(),
        1024 * 1024,
    );
}

#[test]
fn ipv4_client_curl_epsv() {
    transfer(false, Client::Curl, Mode::Epsv);
}

#[test]
fn ipv4_client_ftplib_port() {
    transfer(false, Client::Ftplib, Mode::Port);
}

#[test]
fn ipv6_client_lftp_eprt() {
    transfer(true, Client::Lftp, Mode::Eprt);
}

#[test]
fn ipv6_client_curl_epsv() {
    transfer(true, Client::Curl, Mode::Epsv);
}

#[test]
fn minus_4_with_an_ipv6_literal_is_refused_as_ssh_refuses_it() {
    let lab = ipv6_lab();
    let mut args = args_over_ipv6(&lab, "127.0.0.1");
    let six = args.iter().position(|a| a == "-6").expect("-6");
    args[six] = "-4".into();
    let home = open_tempdir("ftpt-home-").expect("home");
    let out = run(&args, &home_env(home.path(), &[]), Duration::from_secs(30)).expect("run");
    assert_eq!(out.status.code(), Some(255), "{}", out.stderr);
    assert!(out.listening.is_none(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Address family for hostname not supported"),
        "OpenSSH's words: {}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("Address family").count(),
        1,
        "said once: {}",
        out.stderr
    );
    assert_eq!(lab.sshd.accepted_logins(), 0);
}
