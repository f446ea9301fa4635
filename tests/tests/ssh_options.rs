//! OpenSSH's algorithm and connection options against a real sshd, checked in sshd's own
//! log: `-c`/`-m`/`-C` reach the key exchange, `-4 -T -N -A` are accepted, a cipher the
//! server does not offer fails with exit 255; `Include` and `IdentitiesOnly` in
//! `~/.ssh/config`; `ConnectTimeout` against a server that never speaks.

use std::time::{Duration, Instant};

use ftp_tunnel_e2e::login::{Agent, home_env, run};
use ftp_tunnel_e2e::netns::NetNs;
use ftp_tunnel_e2e::open_tempdir;
use ftp_tunnel_e2e::sshd::{Forwarding, Sshd, keygen};
use ftp_tunnel_e2e::tunnel::ssh_args;

const DEADLINE: Duration = Duration::from_secs(30);

/// Port, user, key, known_hosts, no ssh config, one FTP forward, then `extra` and the host.
fn args(sshd: &Sshd, extra: &[&str]) -> Vec<String> {
    let mut a = ssh_args(sshd);
    a.extend(["-F", "none", "-L", "ftp/127.0.0.1:0:127.0.0.1:21"].map(String::from));
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(sshd.addr().to_string());
    a
}

#[test]
fn ciphers_macs_and_compression_reach_the_key_exchange() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    let out = run(
        &args(
            &sshd,
            &[
                "-4",
                "-T",
                "-N",
                "-A",
                "-C",
                "-c",
                "aes128-ctr",
                "-m",
                "hmac-sha2-256-etm@openssh.com",
            ],
        ),
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert!(out.listening.is_some(), "not logged in:\n{}", out.stderr);
    let log = sshd.log();
    assert!(
        log.contains(
            "client->server cipher: aes128-ctr MAC: hmac-sha2-256-etm@openssh.com compression: zlib"
        ),
        "sshd negotiated other algorithms:\n{log}"
    );

    // A cipher this server does not offer: no common cipher, exit 255, nothing logged in.
    // (Same address and port as the first server, which goes first.)
    drop(sshd);
    let strict =
        Sshd::start_with(&ns, Forwarding::Yes, "Ciphers aes256-ctr\n").expect("one-cipher sshd");
    let out = run(
        &args(&strict, &["-c", "aes128-gcm@openssh.com"]),
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert!(out.listening.is_none(), "{}", out.stderr);
    assert_eq!(out.status.code(), Some(255), "{}", out.stderr);
    assert!(
        out.stderr.to_ascii_lowercase().contains("cipher"),
        "says what could not be agreed: {}",
        out.stderr
    );
    assert_eq!(strict.accepted_logins(), 0);
}

#[test]
fn include_and_identities_only_in_ssh_config() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    // The agent holds the key the server knows; the configuration names another one.
    let agent = Agent::start(home.path()).expect("ssh-agent");
    agent.add(&sshd.client_key()).expect("ssh-add");
    let stranger = home.path().join("stranger");
    keygen(&stranger).expect("keygen");
    let ssh_dir = home.path().join(".ssh");
    std::fs::create_dir_all(ssh_dir.join("conf.d")).expect("mkdir");
    let write_config = |identities_only: &str| {
        std::fs::write(ssh_dir.join("config"), "Include conf.d/*.conf\n").expect("config");
        std::fs::write(
            ssh_dir.join("conf.d/gw.conf"),
            format!(
                "Host gw\n  HostName {addr}\n  Port {port}\n  User root\n  IdentityFile {key}\n\
                 IdentitiesOnly {identities_only}\n  UserKnownHostsFile {kh}\n\
                 StrictHostKeyChecking yes\n  LocalForward ftp/127.0.0.1:0 127.0.0.1:21\n",
                addr = sshd.addr(),
                port = sshd.port(),
                key = stranger.display(),
                kh = sshd.known_hosts().display(),
            ),
        )
        .expect("included file");
    };
    let env = home_env(home.path(), &[("SSH_AUTH_SOCK", agent.socket())]);
    let gw = ["-N".to_string(), "gw".to_string()];

    // IdentitiesOnly no: the agent's key is offered too, and it is the one that works.
    write_config("no");
    let out = run(&gw, &env, DEADLINE).expect("run");
    assert!(out.listening.is_some(), "not logged in:\n{}", out.stderr);
    assert_eq!(sshd.accepted_logins(), 1, "{}", sshd.log());

    // IdentitiesOnly yes: only the configured (stranger's) key: denied.
    write_config("yes");
    let out = run(&gw, &env, DEADLINE).expect("run");
    assert!(out.listening.is_none(), "{}", out.stderr);
    assert_eq!(out.status.code(), Some(255), "{}", out.stderr);
    assert!(
        out.stderr.contains("Permission denied (publickey"),
        "{}",
        out.stderr
    );
    assert_eq!(sshd.accepted_logins(), 1, "{}", sshd.log());
}

#[test]
fn connect_timeout_against_a_server_that_never_speaks() {
    // Connections complete in the kernel's backlog, but nothing ever answers: no SSH banner.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port().to_string();
    let home = open_tempdir("ftpt-home-").expect("home");
    let started = Instant::now();
    let out = run(
        &[
            "-F".into(),
            "none".into(),
            "-p".into(),
            port,
            "-o".into(),
            "ConnectTimeout=2".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-L".into(),
            "ftp/127.0.0.1:0:127.0.0.1:21".into(),
            "127.0.0.1".into(),
        ],
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(255), "{}", out.stderr);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "gave up after {took:?}: {}",
        out.stderr
    );
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    drop(silent);
}
