//! The FTP server dies in the middle of a transfer (vsftpd's session processes killed with
//! SIGKILL: the kernel resets the upload's data connection, which has unread bytes, and closes
//! the rest): the FTP client's connections end promptly instead of hanging, the tunnel keeps
//! running, and the next session is served with a checked round trip.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ftp_tunnel_e2e::checked::checked_round_trip;
use ftp_tunnel_e2e::clients::{Client, Mode};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::netns::NetNs;
use ftp_tunnel_e2e::peers::control_ends_promptly;
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::Tunnel;
use ftp_tunnel_e2e::{descendants, kill_pid, poll_until};

const TIMEOUT: Duration = Duration::from_secs(20);
/// How soon the client must see its connections end once the server is gone.
const PROMPTLY: Duration = Duration::from_secs(10);

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Kills vsftpd's per-session processes in `ns` (not its listener); returns how many.
fn kill_vsftpd_sessions(ns: &NetNs) -> usize {
    let vsftpd: Vec<u32> = ns
        .pids()
        .into_iter()
        .filter(|&p| comm(p) == "vsftpd")
        .collect();
    let listener = vsftpd
        .iter()
        .copied()
        .find(|&p| parent(p).is_none_or(|pp| comm(pp) != "vsftpd"))
        .expect("vsftpd's listener");
    let sessions = descendants(listener);
    for &pid in &sessions {
        kill_pid(pid, "KILL");
    }
    sessions.len()
}

/// The tunnel is still up and serves the next session in full.
fn serves_on(lab: &Lab, tunnel: &mut Tunnel) {
    assert!(
        tunnel.wait_exit(Duration::ZERO).is_err(), // one look: still running
        "the tunnel exited: {:#?}",
        tunnel.lines()
    );
    checked_round_trip(
        tunnel,
        lab.server.as_ref(),
        &lab.target(tunnel),
        Client::Curl,
        Mode::Epsv,
        lab.scratch(),
        512 * 1024,
    );
}

#[test]
fn the_ftp_server_dying_mid_upload_ends_that_session_only() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let mut tunnel = lab.tunnel().expect("tunnel");
    let mut ftp = lab
        .ftp_session(&tunnel, TIMEOUT)
        .expect("logged-in session");
    let data_addr = ftp.epsv().expect("EPSV");
    let mut data =
        std::net::TcpStream::connect_timeout(&data_addr, TIMEOUT).expect("data connection");
    data.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    let reply = ftp
        .cmd(&format!("STOR {}/dying.bin", lab.server.upload_dir()))
        .expect("STOR");
    assert_eq!(reply.class(), 1, "{reply:?}");
    let chunk = vec![0x5au8; 64 * 1024];
    for _ in 0..16 {
        data.write_all(&chunk).expect("the first MiB goes");
    }
    let uploading = std::thread::spawn(move || {
        let mut sent = 0u64;
        let error = loop {
            match data.write_all(&chunk) {
                Ok(()) => sent += chunk.len() as u64,
                Err(e) => break e,
            }
        };
        (sent, error, Instant::now())
    });
    // Something of the upload has reached the server before it dies.
    poll_until(TIMEOUT, || {
        Ok(std::fs::metadata(lab.uploaded("dying.bin"))
            .is_ok_and(|m| m.len() > 0)
            .then_some(()))
    })
    .expect("the upload reaches the server");

    assert!(kill_vsftpd_sessions(&lab.ns) > 0, "vsftpd had sessions");
    let killed_at = Instant::now();
    poll_until(PROMPTLY, || Ok(uploading.is_finished().then_some(())))
        .expect("the client's data connection ends promptly: writes fail");
    let (_, error, failed_at) = uploading.join().expect("writer");
    assert!(
        !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "the data connection hung, then timed out: {error}"
    );
    assert!(failed_at.duration_since(killed_at) < PROMPTLY);
    control_ends_promptly(&mut ftp, PROMPTLY).expect("the control connection ends");
    serves_on(&lab, &mut tunnel);
}

#[test]
fn the_ftp_server_dying_mid_download_ends_that_session_only() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let mut tunnel = lab.tunnel().expect("tunnel");
    let size = 256 * 1024 * 1024;
    let (mut ftp, mut data) = lab
        .download_under_way(&tunnel, size, TIMEOUT)
        .expect("a download under way");
    let first = 1 << 20;

    assert!(kill_vsftpd_sessions(&lab.ns) > 0, "vsftpd had sessions");
    let started = Instant::now();
    let mut rest = Vec::new();
    let end = data.read_to_end(&mut rest);
    assert!(
        started.elapsed() < PROMPTLY,
        "the data connection hung: {end:?}"
    );
    assert!(
        (first + rest.len()) < size as usize,
        "the download cannot be complete"
    );
    control_ends_promptly(&mut ftp, PROMPTLY).expect("the control connection ends");
    serves_on(&lab, &mut tunnel);
}
