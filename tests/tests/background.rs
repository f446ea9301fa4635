//! `-f` and `-E`, as with `ssh -f -E LOGFILE`: the command returns once logged in with every
//! forward up, the tunnel goes on serving in the background and logs to the file; a login
//! that fails returns its error and status in the foreground and leaves nothing running.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ftp_tunnel_e2e::clients::{Client, Mode, round_trip};
use ftp_tunnel_e2e::files::{random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::sshd::{Forwarding, keygen};
use ftp_tunnel_e2e::tunnel::{binary, parse_listening, ssh_args};
use ftp_tunnel_e2e::{kill_pid, poll_until};

const DEADLINE: Duration = Duration::from_secs(30);

/// PIDs of processes whose command line contains `marker` (this test's unique log path).
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

/// Kills every process left with `marker` (by PID), so that a failing test leaves none.
struct Reaper(String);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in processes_with(&self.0) {
            kill_pid(pid, "KILL");
        }
    }
}

fn run_foreground(args: &[String]) -> std::process::Output {
    let mut child = Command::new(binary())
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let exited = poll_until(DEADLINE, || Ok(child.try_wait()?));
    if exited.is_err() {
        kill_pid(pid, "KILL");
    }
    let out = child.wait_with_output().expect("output");
    assert!(exited.is_ok(), "-f did not return: {out:?}");
    out
}

/// `ssh_args` with `identity` as the key, then `-f -E log`, `extra`, one FTP forward and the
/// host.
fn background_args(lab: &Lab, identity: &Path, log: &str, extra: &[&str]) -> Vec<String> {
    let mut args = ssh_args(&lab.sshd);
    let i = args.iter().position(|a| a == "-i").expect("-i");
    args[i + 1] = identity.display().to_string();
    args.extend(["-f", "-E", log].map(String::from));
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend([
        "-L".into(),
        format!("ftp/127.0.0.1:0:127.0.0.1:{}", lab.server.port()),
        lab.sshd.addr().to_string(),
    ]);
    args
}

fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn f_returns_once_up_and_the_tunnel_serves_from_the_background_logging_to_e() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let log = lab.scratch().join("tunnel-bg.log");
    let marker = log.display().to_string();
    let _reaper = Reaper(marker.clone());
    let args = background_args(&lab, &lab.sshd.client_key(), &marker, &["-N"]);

    let out = run_foreground(&args);
    assert!(out.status.success(), "{out:?}");
    // Already up when -f returns: the listener is in the log, and a process serves it.
    let (host, port) = log_text(&log)
        .lines()
        .find_map(parse_listening)
        .unwrap_or_else(|| panic!("no listener logged in {marker}:\n{}", log_text(&log)));
    let background = processes_with(&marker);
    assert_eq!(
        background.len(),
        1,
        "one background process: {background:?}"
    );

    // A real round trip through the backgrounded tunnel.
    let src = lab.scratch().join("bg-src.bin");
    let got = lab.scratch().join("bg-out.bin");
    let sum = random_file(&src, 2 * 1024 * 1024).expect("file");
    let target = lab.target_at(&host, port, None);
    round_trip(Client::Curl, Mode::Epsv, &target, &src, "bg.bin", &got).expect("round trip");
    assert_eq!(sha256_file(&got).expect("hash"), sum);
    assert_eq!(sha256_file(&lab.uploaded("bg.bin")).expect("hash"), sum);
    poll_until(Duration::from_secs(10), || {
        Ok(log_text(&log)
            .contains("data transfer finished")
            .then_some(()))
    })
    .expect("the background tunnel logs its transfers to -E's file");
    assert_eq!(lab.sshd.accepted_logins(), 1, "{}", lab.sshd.log());

    // Stopped by its PID, it ends.
    kill_pid(background[0], "TERM");
    poll_until(Duration::from_secs(10), || {
        Ok(processes_with(&marker).is_empty().then_some(()))
    })
    .expect("the background tunnel exits on SIGTERM");
}

#[test]
fn f_with_a_failing_login_reports_in_the_foreground_and_leaves_nothing() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let log = lab.scratch().join("tunnel-bg-fail.log");
    let marker = log.display().to_string();
    let _reaper = Reaper(marker.clone());
    let stranger = lab.scratch().join("stranger");
    keygen(&stranger).expect("keygen");
    // A key the server does not know, and nothing else to try.
    let args = background_args(
        &lab,
        &stranger,
        &marker,
        &["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"],
    );
    let out = run_foreground(&args);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stderr), log_text(&log));
    assert!(said.contains("Permission denied (publickey"), "{said}");
    assert!(
        processes_with(&marker).is_empty(),
        "nothing left running after a failed -f"
    );
}
