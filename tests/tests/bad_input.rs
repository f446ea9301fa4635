//! Hostile or broken input: bounce attempts, malformed replies, refused forwards, bad CLI.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ftp_tunnel_e2e::files::random_file;
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::netns::NetNs;
use ftp_tunnel_e2e::pyftpd::Pyftpd;
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::{Forwarding, Sshd, keygen};
use ftp_tunnel_e2e::tunnel::{Finished, Tunnel, run_to_exit, ssh_args};

const TIMEOUT: Duration = Duration::from_secs(10);

fn control(tunnel: &Tunnel) -> RawFtp {
    let addr = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
    let (ftp, greeting) = RawFtp::connect(addr, TIMEOUT).expect("connect to tunnel");
    assert_eq!(greeting.code, 220, "{greeting:?}");
    ftp
}

/// RETR `name` over EPSV on an existing session; returns the data's SHA-256.
fn retr(ftp: &mut RawFtp, name: &str) -> String {
    assert_eq!(ftp.cmd("TYPE I").expect("TYPE").class(), 2);
    let addr = ftp.epsv().expect("EPSV");
    let mut data = TcpStream::connect_timeout(&addr, TIMEOUT).expect("data connection");
    data.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let r = ftp.cmd(&format!("RETR {name}")).expect("RETR");
    assert_eq!(r.class(), 1, "{r:?}");
    let mut buf = Vec::new();
    data.read_to_end(&mut buf).expect("read data");
    let done = ftp.read_reply().expect("transfer reply");
    assert_eq!(done.class(), 2, "{done:?}");
    ftp_tunnel_e2e::files::hex(&<sha2::Sha256 as sha2::Digest>::digest(&buf))
}

#[test]
fn port_naming_a_third_host_is_refused_and_session_survives() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let tunnel = lab.tunnel().expect("tunnel");
    let name = "payload.bin";
    let sum = random_file(&lab.uploaded(name), 300 * 1024).expect("file");
    let mut ftp = control(&tunnel);
    ftp.login(lab.server.user(), lab.server.pass())
        .expect("login");

    let r = ftp
        .cmd("PORT 203,0,113,50,0,25")
        .expect("reply to bounce PORT");
    assert_eq!(r.class(), 5, "bounce PORT must get a 5xx: {r:?}");
    let r = ftp
        .cmd("EPRT |1|203.0.113.50|25|")
        .expect("reply to bounce EPRT");
    assert_eq!(r.class(), 5, "bounce EPRT must get a 5xx: {r:?}");

    // Same session, a normal transfer still works.
    assert_eq!(retr(&mut ftp, &format!("pub/{name}")), sum);

    // Nothing was opened for the bounce: the server never saw it, sshd never forwarded it.
    let server_log = std::fs::read_to_string(lab.server.log_path()).unwrap_or_default();
    assert!(
        !server_log.contains("203,0,113,50") && !server_log.contains("203.0.113.50"),
        "the bounce command reached the FTP server:\n{server_log}"
    );
    let sshd_log = lab.sshd.log();
    assert!(
        !sshd_log.contains("203.0.113.50"),
        "sshd was asked to connect to the third host"
    );
    // The only data connection here was passive, so any remote forward was for the bounce.
    assert!(
        !sshd_log.contains("rtype tcpip-forward"),
        "a remote forward was opened for a refused PORT/EPRT"
    );
    tunnel
        .wait_transfer(TIMEOUT, |t| t.to_client == 300 * 1024)
        .expect("the RETR crossed SSH");
    assert_eq!(
        tunnel.transfer_lines().len(),
        1,
        "only the RETR may move data"
    );
}

fn broken_peer_replies_are_refused(pasv_reply: &str, epsv_reply: &str) {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let peer = Pyftpd::start_broken(&ns, 2121, pasv_reply, epsv_reply).expect("broken peer");
    let tunnel = Tunnel::ftp(&sshd, 2121).expect("tunnel");
    let mut ftp = control(&tunnel);
    ftp.login("user", "pass").expect("login");
    for verb in ["PASV", "EPSV"] {
        let start = Instant::now();
        let r = ftp
            .cmd(verb)
            .expect("a reply to the malformed passive reply");
        assert!(
            matches!(r.class(), 4 | 5),
            "a malformed reply to {verb} must become a 4xx/5xx: {r:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{verb} took {:?}",
            start.elapsed()
        );
        let noop = ftp.cmd("NOOP").expect("NOOP after malformed reply");
        assert_eq!(
            noop.code,
            200,
            "session must still answer: {noop:?}\n{}",
            peer.output()
        );
    }
    assert!(
        tunnel.transfer_lines().is_empty(),
        "no data forward may be used"
    );
}

#[test]
fn malformed_227_port_out_of_range() {
    broken_peer_replies_are_refused(
        "227 Entering Passive Mode (127,0,0,1,256,0)",
        "229 Entering Extended Passive Mode (|||99999|)",
    );
}

#[test]
fn malformed_227_garbage() {
    broken_peer_replies_are_refused(
        "227 Entering Passive Mode (999,-1,x,1,2)",
        "229 Entering Extended Passive Mode (|||0|)",
    );
}

#[test]
fn active_mode_without_remote_forwarding_fails_cleanly() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Local).expect("lab");
    let tunnel = lab.tunnel().expect("tunnel");
    let name = "payload.bin";
    let sum = random_file(&lab.uploaded(name), 200 * 1024).expect("file");
    let mut ftp = control(&tunnel);
    ftp.login(lab.server.user(), lab.server.pass())
        .expect("login");

    let listener = TcpListener::bind("127.0.0.1:0").expect("client data listener");
    let p = listener.local_addr().expect("addr").port();
    let start = Instant::now();
    let r = ftp
        .cmd(&format!("PORT 127,0,0,1,{},{}", p / 256, p % 256))
        .expect("a reply to PORT");
    assert!(matches!(r.class(), 4 | 5), "PORT must be refused: {r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "PORT took {:?}",
        start.elapsed()
    );
    assert_eq!(ftp.cmd("NOOP").expect("NOOP").code, 200);

    // Passive still works on the same session.
    assert_eq!(retr(&mut ftp, &format!("pub/{name}")), sum);
}

fn expect_clean_failure(f: &Finished, keywords: &[&str]) {
    assert!(!f.status.success(), "must exit non-zero: {f:?}");
    assert!(f.elapsed < Duration::from_secs(10), "took {:?}", f.elapsed);
    let lines: Vec<&str> = f.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no error message");
    assert!(!f.stderr.contains("panicked"), "panicked:\n{}", f.stderr);
    assert!(
        !f.stderr.contains("stack backtrace"),
        "backtrace:\n{}",
        f.stderr
    );
    let lower = f.stderr.to_lowercase();
    assert!(
        keywords.iter().any(|k| lower.contains(k)),
        "stderr should say what is wrong ({keywords:?}):\n{}",
        f.stderr
    );
}

#[test]
fn bad_spec_is_rejected() {
    let args: Vec<String> = ["-L", "ftp/notaport:x", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let f = run_to_exit(&args, TIMEOUT).expect("exits");
    expect_clean_failure(&f, &["notaport", "spec", "port", "-l"]);
}

fn cli_against(sshd: &Sshd, replace: impl Fn(&mut Vec<String>)) -> Finished {
    let mut args = ssh_args(sshd);
    replace(&mut args);
    args.extend(["-L".into(), "ftp/127.0.0.1:0:127.0.0.1:21".into()]);
    args.push(sshd.addr().to_string());
    run_to_exit(&args, TIMEOUT).expect("exits by itself")
}

fn set_opt(args: &mut [String], key: &str, value: String) {
    for a in args.iter_mut() {
        if a.starts_with(&format!("{key}=")) {
            *a = format!("{key}={value}");
        }
    }
}

#[test]
fn unknown_host_key_with_strict_checking_fails() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let empty = sshd.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("write");
    let f = cli_against(&sshd, |a| {
        set_opt(a, "UserKnownHostsFile", empty.display().to_string())
    });
    expect_clean_failure(&f, &["host key", "known_hosts", "known hosts"]);
}

#[test]
fn changed_host_key_fails() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let other = sshd.dir().join("other_host_key");
    keygen(&other).expect("keygen");
    let public = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let mut f = public.split_whitespace();
    let line = format!(
        "[{}]:{} {} {}\n",
        sshd.addr(),
        sshd.port(),
        f.next().unwrap_or_default(),
        f.next().unwrap_or_default()
    );
    let kh = sshd.dir().join("wrong_known_hosts");
    std::fs::write(&kh, line).expect("write");
    for policy in ["yes", "accept-new"] {
        let f = cli_against(&sshd, |a| {
            set_opt(a, "UserKnownHostsFile", kh.display().to_string());
            set_opt(a, "StrictHostKeyChecking", policy.to_string());
        });
        expect_clean_failure(&f, &["host key", "known_hosts", "mismatch", "changed"]);
    }
}

#[test]
fn wrong_client_key_fails() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let wrong = sshd.dir().join("wrong_key");
    keygen(&wrong).expect("keygen");
    let f = cli_against(&sshd, |a| {
        if let Some(i) = a.iter().position(|x| x == "-i") {
            a[i + 1] = wrong.display().to_string();
        }
    });
    expect_clean_failure(&f, &["auth", "denied", "rejected"]);
}

#[test]
fn unreachable_ssh_server_fails() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let f = cli_against(&sshd, |a| {
        if let Some(i) = a.iter().position(|x| x == "-p") {
            a[i + 1] = "2223".into();
        }
    });
    expect_clean_failure(&f, &["connect", "refused", "unreachable"]);
}
