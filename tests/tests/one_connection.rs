//! Every channel of a tunnel on one SSH connection: 200 transfers, 8 sessions at once,
//! passive and active, downloads and uploads, checked byte for byte, and the real sshd's
//! log shows exactly one authentication for all of it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use sha2::{Digest, Sha256};

use ftp_tunnel_e2e::files::{hex, random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::Forwarding;

const SESSIONS: usize = 8;
const PER_SESSION: usize = 25;
const FILE_SIZE: u64 = 256 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Kind {
    PassiveRetr,
    ActiveRetr,
    PassiveStor,
    ActiveStor,
}

impl Kind {
    fn of(i: usize) -> Kind {
        [
            Kind::PassiveRetr,
            Kind::ActiveRetr,
            Kind::PassiveRetr,
            Kind::ActiveRetr,
            Kind::PassiveStor,
            Kind::ActiveStor,
        ][i % 6]
    }
}

#[test]
fn two_hundred_transfers_eight_at_once_one_authentication() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let tunnel = lab.tunnel().expect("tunnel");
    let addr = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
    let expected = random_file(&lab.uploaded("small.bin"), FILE_SIZE).expect("file");

    let sessions: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let (user, pass) = (lab.server.user().to_owned(), lab.server.pass().to_owned());
            let expected = expected.clone();
            let uploads = lab.server.upload_dir_local();
            std::thread::spawn(move || {
                let (mut ftp, _) = RawFtp::connect(addr, TIMEOUT).expect("connect");
                ftp.login(&user, &pass).expect("login");
                assert_eq!(ftp.cmd("TYPE I").expect("TYPE").class(), 2);
                for i in 0..PER_SESSION {
                    let kind = Kind::of(s + i);
                    match kind {
                        Kind::PassiveRetr | Kind::ActiveRetr => {
                            let got = retr(&mut ftp, kind, "pub/small.bin");
                            assert_eq!(got, expected, "session {s} transfer {i} ({kind:?})");
                        }
                        Kind::PassiveStor | Kind::ActiveStor => {
                            let name = format!("up-{s}-{i}.bin");
                            let body: Vec<u8> = (0..FILE_SIZE as usize)
                                .map(|n| (n.wrapping_mul(31) ^ (s * 7 + i)) as u8)
                                .collect();
                            stor(&mut ftp, kind, &format!("pub/{name}"), &body);
                            let on_server = sha256_file(&uploads.join(&name)).expect("hash");
                            assert_eq!(
                                on_server,
                                hex(&Sha256::digest(&body)),
                                "session {s} upload {i} ({kind:?})"
                            );
                        }
                    }
                }
                let _ = ftp.cmd("QUIT");
            })
        })
        .collect();
    for s in sessions {
        s.join().expect("session thread");
    }

    let total = SESSIONS * PER_SESSION;
    let lines = ftp_tunnel_e2e::poll_until(Duration::from_secs(15), || {
        let l = tunnel.transfer_lines();
        Ok((l.len() >= total).then_some(l))
    })
    .expect("every transfer logged by the tunnel");
    assert!(lines.iter().any(|l| l.mode == "passive"));
    assert!(lines.iter().any(|l| l.mode == "active"));

    let log = lab.sshd.log();
    assert_eq!(
        log.matches("Accepted publickey").count(),
        1,
        "{total} transfers must use one SSH connection and one authentication"
    );
}

/// A data connection: passive (EPSV, we connect) or active (PORT, the server connects to
/// our listener through the tunnel's remote forward). Returns it after `verb` got its
/// preliminary reply.
fn open_data(ftp: &mut RawFtp, kind: Kind, verb: &str) -> TcpStream {
    let passive = matches!(kind, Kind::PassiveRetr | Kind::PassiveStor);
    let stream = if passive {
        let data_addr = ftp.epsv().expect("EPSV");
        let data = TcpStream::connect_timeout(&data_addr, TIMEOUT).expect("data connection");
        let r = ftp.cmd(verb).expect(verb);
        assert_eq!(r.class(), 1, "{verb}: {r:?}");
        data
    } else {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let r = ftp
            .cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff))
            .expect("PORT");
        assert_eq!(r.class(), 2, "PORT: {r:?}");
        let r = ftp.cmd(verb).expect(verb);
        assert_eq!(r.class(), 1, "{verb}: {r:?}");
        let (data, _) = accept_within(&listener, TIMEOUT);
        data
    };
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

fn accept_within(listener: &TcpListener, limit: Duration) -> (TcpStream, SocketAddr) {
    listener.set_nonblocking(true).expect("nonblocking");
    let result = ftp_tunnel_e2e::poll_until(limit, || match listener.accept() {
        Ok(accepted) => Ok(Some(accepted)),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e.into()),
    })
    .expect("the server's data connection arrived");
    result.0.set_nonblocking(false).expect("blocking");
    result
}

/// Downloads `path`; returns the sha256 of what arrived, after the completion reply.
fn retr(ftp: &mut RawFtp, kind: Kind, path: &str) -> String {
    let mut data = open_data(ftp, kind, &format!("RETR {path}"));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = data.read(&mut buf).expect("read data");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let done = ftp.read_reply().expect("completion reply");
    assert_eq!(done.class(), 2, "RETR {path}: {done:?}");
    hex(&hasher.finalize())
}

/// Uploads `body` as `path` and waits for the completion reply.
fn stor(ftp: &mut RawFtp, kind: Kind, path: &str, body: &[u8]) {
    let mut data = open_data(ftp, kind, &format!("STOR {path}"));
    data.write_all(body).expect("write data");
    data.shutdown(std::net::Shutdown::Write).expect("shutdown");
    // The server closes its side once it has everything.
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    let done = ftp.read_reply().expect("completion reply");
    assert_eq!(done.class(), 2, "STOR {path}: {done:?}");
}
