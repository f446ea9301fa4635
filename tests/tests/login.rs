//! Logging in as an admin's `ssh` would, against a real OpenSSH sshd: ssh-agent keys,
//! passphrase-protected keys through SSH_ASKPASS, passwords, a `~/.ssh/config` alias and a
//! jump host; each with its failing case (OpenSSH's message, exit 255).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ftp_tunnel_e2e::login::{
    Agent, TEST_PASSWORD, TEST_USER, askpass_script, ensure_test_user, home_env,
    password_sshd_lines, run,
};
use ftp_tunnel_e2e::netns::NetNs;
use ftp_tunnel_e2e::sshd::{Forwarding, Side, Sshd, keygen};
use ftp_tunnel_e2e::{open_tempdir, run_checked};

const DEADLINE: Duration = Duration::from_secs(30);

/// Port, known_hosts, no ssh config, one FTP forward: everything but the credentials.
fn args(sshd: &Sshd, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-N".into(),
        "-p".into(),
        sshd.port().to_string(),
        "-o".into(),
        format!("UserKnownHostsFile={}", sshd.known_hosts().display()),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-F".into(),
        "none".into(),
        "-L".into(),
        "ftp/127.0.0.1:0:127.0.0.1:21".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// [`home_env`] with `script` as SSH_ASKPASS, used even without a display or terminal.
fn askpass_env(home: &Path, script: &Path) -> BTreeMap<String, String> {
    home_env(
        home,
        &[
            ("SSH_ASKPASS", script),
            ("SSH_ASKPASS_REQUIRE", Path::new("force")),
        ],
    )
}

fn assert_denied(out: &ftp_tunnel_e2e::login::Outcome, methods: &str) {
    assert!(out.listening.is_none(), "logged in: {}", out.stderr);
    assert_eq!(out.status.code(), Some(255), "{}", out.stderr);
    let want = format!("Permission denied ({methods}).");
    assert!(
        out.stderr.contains(&want),
        "want {want:?} in:\n{}",
        out.stderr
    );
}

#[test]
fn agent_key_logs_in_and_an_agent_without_it_is_denied() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    let host = sshd.addr().to_string();

    let agent = Agent::start(home.path()).expect("ssh-agent");
    agent.add(&sshd.client_key()).expect("ssh-add");
    let out = run(
        &args(&sshd, &["-l", "root", &host]),
        &home_env(home.path(), &[("SSH_AUTH_SOCK", agent.socket())]),
        DEADLINE,
    )
    .expect("run");
    assert!(out.listening.is_some(), "not logged in:\n{}", out.stderr);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(sshd.accepted_logins(), 1, "{}", sshd.log());

    // An agent holding another key: denied, nothing else to try.
    let other_dir = open_tempdir("ftpt-agent2-").expect("dir");
    let stranger = other_dir.path().join("stranger");
    keygen(&stranger).expect("keygen");
    let empty = Agent::start(other_dir.path()).expect("ssh-agent");
    empty.add(&stranger).expect("ssh-add");
    let out = run(
        &args(&sshd, &["-l", "root", &host]),
        &home_env(home.path(), &[("SSH_AUTH_SOCK", empty.socket())]),
        DEADLINE,
    )
    .expect("run");
    assert_denied(&out, "publickey");
    // IdentityAgent none: the good agent is not asked.
    let out = run(
        &args(&sshd, &["-o", "IdentityAgent=none", "-l", "root", &host]),
        &home_env(home.path(), &[("SSH_AUTH_SOCK", agent.socket())]),
        DEADLINE,
    )
    .expect("run");
    assert_eq!(out.status.code(), Some(255), "{}", out.stderr);
}

#[test]
fn passphrase_key_through_askpass_and_a_wrong_passphrase() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    let host = sshd.addr().to_string();
    let key = home.path().join("locked");
    run_checked(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "s3cret phrase",
                "-C",
                "locked",
                "-f",
            ])
            .arg(&key),
    )
    .expect("keygen");
    let public = std::fs::read_to_string(home.path().join("locked.pub")).expect("pub");
    let authorized = sshd.dir().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).expect("authorized_keys");
    keys.push_str(&public);
    std::fs::write(&authorized, keys).expect("authorize");

    let good = askpass_script(home.path(), "good", "s3cret phrase").expect("askpass");
    let key_arg = key.display().to_string();
    let out = run(
        &args(&sshd, &["-i", &key_arg, "-l", "root", &host]),
        &askpass_env(home.path(), &good),
        DEADLINE,
    )
    .expect("run");
    assert!(out.listening.is_some(), "not logged in:\n{}", out.stderr);
    let asked = std::fs::read_to_string(home.path().join("good.prompts")).expect("prompts");
    assert!(
        asked.contains(&format!("Enter passphrase for key '{key_arg}'")),
        "{asked}"
    );

    let bad = askpass_script(home.path(), "bad", "wrong").expect("askpass");
    let out = run(
        &args(&sshd, &["-i", &key_arg, "-l", "root", &host]),
        &askpass_env(home.path(), &bad),
        DEADLINE,
    )
    .expect("run");
    assert_denied(&out, "publickey");
    assert!(
        out.stderr.contains("incorrect passphrase"),
        "{}",
        out.stderr
    );
}

/// What [`secret_then_a_wrong_one`] saw.
struct SecretRuns {
    /// The prompts the right answer was given to.
    asked_right: String,
    /// The run with the wrong answer.
    wrong: ftp_tunnel_e2e::login::Outcome,
    /// The prompts the wrong answer was given to.
    asked_wrong: String,
}

/// [`TEST_USER`] logs in to `sshd` with its password given through SSH_ASKPASS (sshd's log
/// must show `Accepted <accepted> for`), then tries with a wrong one, twice.
fn secret_then_a_wrong_one(sshd: &Sshd, accepted: &str) -> SecretRuns {
    let home = open_tempdir("ftpt-home-").expect("home");
    let host = sshd.addr().to_string();
    let attempt = |name: &str, answer: &str| {
        let script = askpass_script(home.path(), name, answer).expect("askpass");
        let out = run(
            &args(
                sshd,
                &["-o", "NumberOfPasswordPrompts=2", "-l", TEST_USER, &host],
            ),
            &askpass_env(home.path(), &script),
            DEADLINE,
        )
        .expect("run");
        let asked =
            std::fs::read_to_string(home.path().join(format!("{name}.prompts"))).expect("prompts");
        (out, asked)
    };
    let (right, asked_right) = attempt("right", TEST_PASSWORD);
    assert!(
        right.listening.is_some(),
        "not logged in:\n{}",
        right.stderr
    );
    let want = format!("Accepted {accepted} for {TEST_USER}");
    assert!(sshd.log().contains(&want), "{want:?} in:\n{}", sshd.log());
    let (wrong, asked_wrong) = attempt("wrong", "not-it");
    SecretRuns {
        asked_right,
        wrong,
        asked_wrong,
    }
}

#[test]
fn password_through_askpass_and_a_wrong_password() {
    ensure_test_user().expect("test user");
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start_at(
        &ns,
        Side::Namespace,
        Forwarding::Yes,
        &password_sshd_lines(),
    )
    .expect("sshd");
    let runs = secret_then_a_wrong_one(&sshd, "password");
    let asked = &runs.asked_right;
    assert!(
        asked.contains(&format!("{TEST_USER}@{}'s password:", sshd.addr())),
        "{asked}"
    );
    assert_denied(&runs.wrong, "publickey,password");
    assert_eq!(runs.asked_wrong.lines().count(), 2, "{}", runs.asked_wrong);
    assert!(
        runs.wrong
            .stderr
            .contains("Permission denied, please try again."),
        "{}",
        runs.wrong.stderr
    );
}

#[test]
fn keyboard_interactive_through_pam_and_a_wrong_answer() {
    ensure_test_user().expect("test user");
    let ns = NetNs::new().expect("netns");
    // PAM asks the questions; for this user keyboard-interactive is the only way in.
    let sshd = Sshd::start_with_flags(
        &ns,
        Side::Namespace,
        Forwarding::Yes,
        &format!("Match User {TEST_USER}\n  AuthenticationMethods keyboard-interactive\n"),
        &["-o", "UsePAM=yes", "-o", "KbdInteractiveAuthentication=yes"],
    )
    .expect("sshd");
    let runs = secret_then_a_wrong_one(&sshd, "keyboard-interactive/pam");
    assert!(
        runs.asked_right.contains("Password"),
        "PAM's question: {}",
        runs.asked_right
    );
    assert_denied(&runs.wrong, "keyboard-interactive");
}

#[test]
fn ssh_config_alias_with_f_and_match_refused() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    let config = home.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host other\n  Port 1\nHost gw\n  HostName {addr}\n  Port {port}\n  User root\n\
             IdentityFile {key}\n  UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n\
             LocalForward ftp/127.0.0.1:0 127.0.0.1:21\n  ControlMaster auto\n",
            addr = sshd.addr(),
            port = sshd.port(),
            key = sshd.client_key().display(),
            kh = sshd.known_hosts().display(),
        ),
    )
    .expect("config");
    let cfg = config.display().to_string();
    let out = run(
        &["-N".into(), "-F".into(), cfg.clone(), "gw".into()],
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert!(out.listening.is_some(), "not logged in:\n{}", out.stderr);
    assert_eq!(sshd.accepted_logins(), 1);

    std::fs::write(&config, "Host gw\n  Port 22\n\nMatch host gw\n  User x\n").expect("config");
    let out = run(
        &["-F".into(), cfg.clone(), "gw".into()],
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{cfg} line 4: Match is not supported")),
        "{}",
        out.stderr
    );
}

#[test]
fn jump_host_and_an_unreachable_one() {
    let ns = NetNs::new().expect("netns");
    let target = Sshd::start(&ns, Forwarding::Yes).expect("target sshd");
    let jump = Sshd::start_at(&ns, Side::Host, Forwarding::Yes, "").expect("jump sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    let config = home.path().join("ssh_config");
    let block = |name: &str, s: &Sshd| {
        format!(
            "Host {name}\n  HostName {}\n  Port {}\n  User root\n  IdentityFile {}\n\
             UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n",
            s.addr(),
            s.port(),
            s.client_key().display(),
            s.known_hosts().display()
        )
    };
    std::fs::write(
        &config,
        format!(
            "{}  ProxyJump bastion\n{}Host dead\n  HostName 127.0.0.1\n  Port 1\n",
            block("target", &target),
            block("bastion", &jump)
        ),
    )
    .expect("config");
    let cfg = config.display().to_string();
    let fwd = "ftp/127.0.0.1:0:127.0.0.1:21".to_string();
    let out = run(
        &[
            "-F".into(),
            cfg.clone(),
            "-L".into(),
            fwd.clone(),
            "target".into(),
        ],
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert!(out.listening.is_some(), "not logged in:\n{}", out.stderr);
    assert_eq!(jump.accepted_logins(), 1, "{}", jump.log());
    assert_eq!(target.accepted_logins(), 1, "{}", target.log());
    assert!(jump.log().contains("direct-tcpip"), "{}", jump.log());

    let out = run(
        &[
            "-F".into(),
            cfg,
            "-J".into(),
            "dead".into(),
            "-L".into(),
            fwd,
            "target".into(),
        ],
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert_eq!(out.status.code(), Some(255), "{}", out.stderr);
    assert!(
        out.stderr.contains("through jump host root@127.0.0.1:1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);
}

#[test]
fn a_user_certificate_beside_the_key_logs_in_and_without_it_the_key_is_refused() {
    let ns = NetNs::new().expect("netns");
    let home = open_tempdir("ftpt-home-").expect("home");
    let ca = home.path().join("user_ca");
    keygen(&ca).expect("CA key");
    let sshd = Sshd::start_with(
        &ns,
        Forwarding::Yes,
        &format!("TrustedUserCAKeys {}.pub\n", ca.display()),
    )
    .expect("sshd");
    // A key the server has never seen, certified by the CA it trusts.
    let key = home.path().join("id_certified");
    keygen(&key).expect("user key");
    run_checked(Command::new("ssh-keygen").args([
        "-q",
        "-s",
        &ca.display().to_string(),
        "-I",
        "ftpt-test",
        "-n",
        "root",
        "-V",
        "-5m:+1h",
        &format!("{}.pub", key.display()),
    ]))
    .expect("sign");
    let cert = home.path().join("id_certified-cert.pub");
    assert!(cert.exists(), "ssh-keygen wrote {}", cert.display());
    let key_arg = key.display().to_string();
    let host = sshd.addr().to_string();
    let login = &[
        "-i",
        key_arg.as_str(),
        "-o",
        "IdentitiesOnly=yes",
        "-l",
        "root",
        host.as_str(),
    ];

    let out = run(&args(&sshd, login), &home_env(home.path(), &[]), DEADLINE).expect("run");
    assert!(out.listening.is_some(), "not logged in:\n{}", out.stderr);
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey for root") && log.contains("CERT"),
        "{log}"
    );

    std::fs::remove_file(&cert).expect("remove the certificate");
    let out = run(&args(&sshd, login), &home_env(home.path(), &[]), DEADLINE).expect("run");
    assert_denied(&out, "publickey");
    assert_eq!(sshd.accepted_logins(), 1, "{}", sshd.log());
}
