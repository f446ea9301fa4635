//! ftp-tunnel's own settings file (`--config`), end to end: a tunnel named in it starts with
//! the file's forwards, `-o` options and policies (a relative policy path is found beside the
//! file), and it is enforced on a real FTP session; a broken file or a broken policy listed
//! in it stops the start with one line naming the file, and exit status 2.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::policies::policy;
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::{Tunnel, run_to_exit};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A settings file for `lab` with one tunnel, `gw`, and `policy_path` listed as its policy.
fn settings(lab: &Lab, policy_path: &str) -> String {
    format!(
        r#"[ftp]
data_timeout = 30

[tunnel.gw]
destination = "root@{addr}"
local = ["ftp/127.0.0.1:0:127.0.0.1:{ftp}"]
options = [
    "Port={port}",
    "IdentityFile={key}",
    "UserKnownHostsFile={known_hosts}",
    "StrictHostKeyChecking=yes",
    "MaxSessions=1",
]

[[tunnel.gw.policies]]
path = "{policy_path}"
"#,
        addr = lab.sshd.addr(),
        ftp = lab.server.port(),
        port = lab.sshd.port(),
        key = lab.sshd.client_key().display(),
        known_hosts = lab.sshd.known_hosts().display(),
    )
}

fn start(config: &Path) -> Tunnel {
    Tunnel::start(
        &[
            "--config".into(),
            config.display().to_string(),
            "-F".into(),
            "none".into(),
            "gw".into(),
        ],
        1,
    )
    .expect("the tunnel named in the file starts")
}

#[test]
fn a_named_tunnel_runs_with_the_files_forwards_options_and_policies() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let dir = tempfile::tempdir().expect("dir");
    // The policy beside the file, named relative to it.
    std::fs::copy(policy("read-only"), dir.path().join("read-only.wasm")).expect("copy policy");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, settings(&lab, "read-only.wasm")).expect("write config");
    let tunnel = start(&config);

    let mut ftp = lab
        .ftp_session(&tunnel, TIMEOUT)
        .expect("logged-in session");
    // The file's policy: STOR denied with its reason, before any data path is opened.
    let stor = ftp.cmd("STOR pub/x.bin").expect("STOR");
    assert_eq!(stor.code, 550, "{stor:?}");
    assert!(stor.text.contains("read-only"), "{stor:?}");
    assert_eq!(ftp.cmd("NOOP").expect("NOOP").code, 200);

    // The file's -o MaxSessions=1: a second control session is turned away with 421.
    let addr = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
    let (_second, greeting) = RawFtp::connect(addr, TIMEOUT).expect("connect again");
    assert_eq!(greeting.code, 421, "{greeting:?}");
    assert_eq!(lab.sshd.accepted_logins(), 1, "{}", lab.sshd.log());
}

#[test]
fn a_broken_file_or_a_broken_policy_in_it_is_one_line_and_exit_2() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config.toml");
    let run = |config: &Path| {
        run_to_exit(
            &[
                "--config".into(),
                config.display().to_string(),
                "-F".into(),
                "none".into(),
                "gw".into(),
            ],
            TIMEOUT,
        )
        .expect("exits")
    };

    // A misspelt key on line 2.
    std::fs::write(&config, "[ftp]\ndata_timout = 3\n").expect("write");
    let out = run(&config);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(said.len(), 1, "one line: {said:#?}");
    assert!(
        said[0].contains(&config.display().to_string())
            && said[0].contains("line 2")
            && said[0].contains("data_timout"),
        "{said:#?}"
    );

    // A policy listed in the file that is not a component.
    std::fs::write(dir.path().join("junk.wasm"), b"not wasm").expect("junk");
    std::fs::write(&config, settings(&lab, "junk.wasm")).expect("write");
    let out = run(&config);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&dir.path().join("junk.wasm").display().to_string()),
        "names the policy file: {}",
        out.stderr
    );
    assert_eq!(lab.sshd.accepted_logins(), 0, "refused before logging in");
}
