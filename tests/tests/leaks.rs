//! Thousands of transfers in one FTP session leave nothing behind: every data forward is
//! closed when its transfer ends — no listener, no remote forward on the SSH server, no
//! file descriptor in the tunnel.

use std::process::Command;
use std::time::Duration;

use ftp_tunnel_e2e::files::random_file;
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::{poll_until, python, run_checked};

const TRANSFERS_PER_MODE: usize = 1000;

/// RETRs `name` `count` times in passive (EPSV) and then active (PORT) mode, in one session.
const SCRIPT: &str = r#"
import ftplib, sys
host, port, user, password, name, count = sys.argv[1:7]
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=20)
ftp.login(user, password)
expected = None
for passive in (True, False):
    ftp.set_pasv(passive)
    for _ in range(int(count)):
        chunks = []
        ftp.retrbinary("RETR " + name, chunks.append)
        data = b"".join(chunks)
        expected = expected or data
        assert data == expected and len(data) > 0, "transfer returned different bytes"
print(ftp.sendcmd("NOOP"))
ftp.quit()
"#;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(usize::MAX)
}

#[test]
fn thousands_of_transfers_leak_no_forward() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let tunnel = lab.tunnel().expect("tunnel");
    let pid = tunnel.pid().expect("tunnel pid");
    let name = "small.bin";
    random_file(&lab.uploaded(name), 2048).expect("file");
    let listening_before = lab.ns.listening_ports().expect("ports in namespace");
    let fds_before = open_fds(pid);

    run_checked(Command::new(python()).args([
        "-c",
        SCRIPT,
        "127.0.0.1",
        &tunnel.port().to_string(),
        lab.server.user(),
        lab.server.pass(),
        &format!("pub/{name}"),
        &TRANSFERS_PER_MODE.to_string(),
    ]))
    .expect("2 × 1000 transfers through the tunnel");

    let crossed = tunnel
        .transfer_lines()
        .iter()
        .filter(|line| line.to_client == 2048)
        .count();
    assert_eq!(
        crossed,
        2 * TRANSFERS_PER_MODE,
        "every transfer crossed SSH"
    );

    // The session is closed now; whatever it opened must be gone, on both sides.
    poll_until(Duration::from_secs(10), || {
        let listening = lab.ns.listening_ports()?;
        Ok((listening == listening_before).then_some(()))
    })
    .expect("no remote forward left listening on the SSH server");
    // Idle pooled data connections may stay (at most 8 sockets).
    poll_until(Duration::from_secs(10), || {
        Ok((open_fds(pid) <= fds_before + 8).then_some(()))
    })
    .unwrap_or_else(|_| {
        panic!(
            "file descriptors leaked: {} before, {} after",
            fds_before,
            open_fds(pid)
        )
    });
}
