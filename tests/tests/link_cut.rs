//! The link between ftp-tunnel and the SSH server cut in the middle of a download, with no
//! clean close (the namespace's veth end taken down): ServerAliveInterval x
//! ServerAliveCountMax later the tunnel gives up with one line and exit status 255, and the
//! FTP client's connections are closed rather than left hanging.

use std::io::Read;
use std::time::{Duration, Instant};

use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::peers::control_ends_promptly;
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::Tunnel;

const TIMEOUT: Duration = Duration::from_secs(20);
const ALIVE_INTERVAL_S: u64 = 1;
const ALIVE_COUNT: u64 = 3;

#[test]
fn a_cut_ssh_link_ends_the_tunnel_within_server_alive_with_255() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let interval = format!("ServerAliveInterval={ALIVE_INTERVAL_S}");
    let count = format!("ServerAliveCountMax={ALIVE_COUNT}");
    let mut tunnel = Tunnel::ftp_with(
        &lab.sshd,
        "127.0.0.1",
        lab.server.port(),
        &["-o", &interval, "-o", &count],
    )
    .expect("tunnel");
    // Larger than every buffer on the way, so that the download is still running when the
    // link goes.
    let (mut ftp, mut data) = lab
        .download_under_way(&tunnel, 256 * 1024 * 1024, TIMEOUT)
        .expect("a download under way");

    lab.ns.cut_link().expect("cut the link");
    let cut_at = Instant::now();

    // The tunnel notices within interval x count (plus a round of slack for the timer
    // that was already running), says so once, and exits 255.
    let status = tunnel.wait_exit(TIMEOUT).expect("the tunnel exits");
    let took = cut_at.elapsed();
    let budget = Duration::from_secs(ALIVE_INTERVAL_S * (ALIVE_COUNT + 2));
    assert_eq!(status.code(), Some(255), "{:#?}", tunnel.lines());
    assert!(
        took <= budget,
        "noticed after {took:?}, more than {budget:?}: {:#?}",
        tunnel.lines()
    );
    let errors: Vec<String> = tunnel
        .lines()
        .into_iter()
        .filter(|l| l.contains("ERROR") || l.starts_with("ftp-tunnel:"))
        .collect();
    eprintln!("noticed after {took:?}: {errors:?}");
    assert_eq!(errors.len(), 1, "one line says why: {errors:#?}");
    assert!(
        errors[0].contains("Timeout, server") && errors[0].contains("not responding"),
        "OpenSSH's words: {errors:#?}"
    );

    // The FTP client is not left hanging: both its connections end (closed or reset), well
    // before their read timeout.
    let started = Instant::now();
    let mut rest = Vec::new();
    let data_end = data.read_to_end(&mut rest);
    assert!(
        started.elapsed() < TIMEOUT,
        "the data connection hung: {data_end:?}"
    );
    control_ends_promptly(&mut ftp, TIMEOUT.saturating_sub(started.elapsed()))
        .expect("the control connection ends");
}
