//! One session's stalled data connection must not stall another session's control
//! connection on the same tunnel (per-channel flow control, no head-of-line blocking).

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use ftp_tunnel_e2e::files::{hex, sparse_file, zeros_sha256};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::Forwarding;

const SIZE: u64 = 300 * 1024 * 1024;
const STALL: Duration = Duration::from_secs(10);
const COMMANDS: usize = 20;

#[test]
fn stalled_download_does_not_block_other_sessions() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let tunnel = lab.tunnel().expect("tunnel");
    let name = "big.bin";
    sparse_file(&lab.uploaded(name), SIZE).expect("sparse file");
    let expected = std::thread::spawn(|| zeros_sha256(SIZE));
    let addr = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
    let timeout = Duration::from_secs(60);

    // Session A: start the download, then leave the data socket unread.
    let (mut a, _) = RawFtp::connect(addr, timeout).expect("session A");
    a.login(lab.server.user(), lab.server.pass())
        .expect("login A");
    assert_eq!(a.cmd("TYPE I").expect("TYPE").class(), 2);
    let data_addr = a.epsv().expect("EPSV");
    let mut data = TcpStream::connect_timeout(&data_addr, timeout).expect("data connection");
    data.set_read_timeout(Some(timeout)).expect("timeout");
    let r = a.cmd(&format!("RETR pub/{name}")).expect("RETR");
    assert_eq!(r.class(), 1, "{r:?}");
    let stalled_at = Instant::now();

    // Session B on the same tunnel: its commands must answer promptly during the stall.
    // The commands are spread over the stall so they meet full buffers, not just its start.
    let (mut b, _) = RawFtp::connect(addr, timeout).expect("session B");
    b.login(lab.server.user(), lab.server.pass())
        .expect("login B");
    let pace = (STALL - Duration::from_secs(2)) / COMMANDS as u32;
    let mut worst = Duration::ZERO;
    for i in 0..COMMANDS {
        let verb = if i % 2 == 0 { "NOOP" } else { "PWD" };
        let start = Instant::now();
        let r = b.cmd(verb).expect("reply in session B");
        let rtt = start.elapsed();
        assert_eq!(r.class(), 2, "{verb}: {r:?}");
        assert!(
            rtt < Duration::from_secs(1),
            "{verb} #{i} took {rtt:?} during the stall"
        );
        worst = worst.max(rtt);
        std::thread::sleep(pace.saturating_sub(rtt));
    }
    eprintln!("session B: {COMMANDS} commands during the stall, worst round trip {worst:?}");
    if let Some(rest) = STALL.checked_sub(stalled_at.elapsed()) {
        std::thread::sleep(rest);
    }

    // Session A resumes and must get every byte.
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = data.read(&mut buf).expect("read data after the stall");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    assert_eq!(total, SIZE, "short download");
    let done = a.read_reply().expect("transfer complete reply");
    assert_eq!(done.class(), 2, "{done:?}");
    assert_eq!(
        hex(&hasher.finalize()),
        expected.join().expect("hash thread")
    );
    tunnel
        .wait_transfer(Duration::from_secs(15), |t| t.to_client == SIZE)
        .expect("the download crossed SSH");
    assert_eq!(b.cmd("NOOP").expect("NOOP").code, 200);
}
