//! One session's stalled download must not stall anything else on the same tunnel, which
//! carries everything on one SSH connection (per-channel flow control, no head-of-line
//! blocking): another session's commands answer promptly, ftp-tunnel's memory stays bounded
//! by the channel window, the server's keepalives and rekeys go through, and the download
//! completes intact once the client reads again.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use ftp_tunnel_e2e::files::{hex, sparse_file, zeros_sha256};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::Forwarding;

const SIZE: u64 = 1024 * 1024 * 1024;
const STALL: Duration = Duration::from_secs(10);
/// Session B's commands are spread over this first part of the stall; the rest is quiet,
/// so that sshd's keepalive probes (`ClientAliveInterval`) are the only traffic.
const BUSY: Duration = Duration::from_secs(6);
const COMMANDS: usize = 16;
const MAX_RSS_GROWTH_KIB: u64 = 8 * 1024;

/// Keepalive probes after a second of silence, disconnect after three unanswered ones; a
/// rekey every 64 MiB and every 2 seconds.
const SSHD_EXTRA: &str = "ClientAliveInterval 1\nClientAliveCountMax 3\nRekeyLimit 64M 2s\n";

#[test]
fn stalled_download_does_not_block_other_sessions() {
    let lab = Lab::with_sshd_config(ServerKind::Vsftpd, Forwarding::Yes, SSHD_EXTRA).expect("lab");
    let tunnel = lab.tunnel().expect("tunnel");
    let pid = tunnel.pid().expect("tunnel pid");
    let name = "big.bin";
    sparse_file(&lab.uploaded(name), SIZE).expect("sparse file");
    let expected = std::thread::spawn(|| zeros_sha256(SIZE));
    let addr = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
    let timeout = Duration::from_secs(60);

    // Session B first, so that its login is not part of the measurement.
    let (mut b, _) = RawFtp::connect(addr, timeout).expect("session B");
    b.login(lab.server.user(), lab.server.pass())
        .expect("login B");

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
    let rss_before = rss_kib(pid);
    let rekeys_before = rekeys(&lab);

    // Session B's commands must answer promptly during the stall; spread over it so that
    // they meet full buffers, not just its start.
    let pace = BUSY / COMMANDS as u32;
    let mut worst = Duration::ZERO;
    let mut rss_max = rss_before;
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
        rss_max = rss_max.max(rss_kib(pid));
        std::thread::sleep(pace.saturating_sub(rtt));
    }
    // The quiet part: nothing but sshd's keepalives, which must be answered.
    while stalled_at.elapsed() < STALL {
        rss_max = rss_max.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let rekeys_during = rekeys(&lab) - rekeys_before;
    eprintln!(
        "stall: session B worst round trip {worst:?}; RSS {rss_before} KiB -> max {rss_max} KiB; \
         {rekeys_during} rekeys"
    );
    assert!(
        rss_max - rss_before <= MAX_RSS_GROWTH_KIB,
        "ftp-tunnel's RSS grew by {} KiB during the stall",
        rss_max - rss_before
    );
    assert!(
        rekeys_during >= 2,
        "sshd completed {rekeys_during} rekeys during the stall"
    );
    assert_eq!(b.cmd("NOOP").expect("NOOP after the quiet part").code, 200);

    // Session A resumes and must get every byte.
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 18];
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

    let log = lab.sshd.log();
    assert!(
        !log.contains("not responding"),
        "sshd gave up on the client's keepalive answers"
    );
    assert_eq!(
        log.matches("Accepted publickey").count(),
        1,
        "two sessions and a download on one SSH connection"
    );
}

/// The resident set size of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Key exchanges sshd has completed so far (the first one included).
fn rekeys(lab: &Lab) -> usize {
    lab.sshd.log().matches("SSH2_MSG_NEWKEYS received").count()
}
