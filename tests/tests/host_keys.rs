//! Host keys and terminal prompts as `ssh` handles them, against a real OpenSSH sshd:
//! `StrictHostKeyChecking=ask` really asking on a pseudo-terminal (yes adds the key, no
//! refuses), `HashKnownHosts` writing a hashed name that is found again, a changed key refused
//! with OpenSSH's warning naming the offending line, an `@revoked` key refused, and a passphrase typed on the terminal.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ftp_tunnel_e2e::login::{home_env, run};
use ftp_tunnel_e2e::netns::NetNs;
use ftp_tunnel_e2e::sshd::{Forwarding, Sshd, keygen};
use ftp_tunnel_e2e::terminal::{Answer, run_on_terminal};
use ftp_tunnel_e2e::{open_tempdir, run_checked};

const DEADLINE: Duration = Duration::from_secs(30);
const HOST_KEY_PROMPT: &str =
    "Are you sure you want to continue connecting (yes/no/[fingerprint])?";

/// Everything but the known_hosts settings and the key.
fn args(sshd: &Sshd, known_hosts: &Path, strict: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-N".into(),
        "-F".into(),
        "none".into(),
        "-p".into(),
        sshd.port().to_string(),
        "-l".into(),
        "root".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "-o".into(),
        format!("StrictHostKeyChecking={strict}"),
        "-L".into(),
        "ftp/127.0.0.1:0:127.0.0.1:21".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(sshd.addr().to_string());
    a
}

#[test]
fn ask_on_a_terminal_yes_adds_the_key_and_no_refuses() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    let known_hosts = home.path().join("known_hosts");
    let key = sshd.client_key().display().to_string();

    // "no": refused, nothing written, exit 255.
    let declined = run_on_terminal(
        &args(&sshd, &known_hosts, "ask", &["-i", &key]),
        &home_env(home.path(), &[]),
        &[Answer {
            prompt: HOST_KEY_PROMPT,
            typed: "no".into(),
        }],
        DEADLINE,
    )
    .expect("run");
    assert_eq!(declined.answered, 1, "{}", declined.screen);
    assert!(declined.listening.is_none(), "{}", declined.screen);
    assert_eq!(declined.code, Some(255), "{}", declined.screen);
    assert!(
        declined.screen.contains("Host key verification failed")
            || declined.screen.contains("declined"),
        "{}",
        declined.screen
    );
    assert!(!known_hosts.exists() || std::fs::read_to_string(&known_hosts).unwrap().is_empty());
    assert_eq!(sshd.accepted_logins(), 0);

    // "yes": logged in, and the key is recorded as OpenSSH does it.
    let accepted = run_on_terminal(
        &args(&sshd, &known_hosts, "ask", &["-i", &key]),
        &home_env(home.path(), &[]),
        &[Answer {
            prompt: HOST_KEY_PROMPT,
            typed: "yes".into(),
        }],
        DEADLINE,
    )
    .expect("run");
    assert!(accepted.listening.is_some(), "{}", accepted.screen);
    assert_eq!(accepted.code, Some(0), "{}", accepted.screen);
    assert!(
        accepted.screen.contains("Permanently added")
            && accepted.screen.contains("to the list of known hosts"),
        "{}",
        accepted.screen
    );
    let recorded = std::fs::read_to_string(&known_hosts).expect("known_hosts written");
    assert!(recorded.contains(&sshd.host_key()), "{recorded}");
    assert!(
        recorded.starts_with(&format!("[{}]:{} ", sshd.addr(), sshd.port())),
        "{recorded}"
    );
    assert_eq!(sshd.accepted_logins(), 1, "{}", sshd.log());

    // Now known: no question asked, under the strictest setting.
    let known = run_on_terminal(
        &args(&sshd, &known_hosts, "yes", &["-i", &key]),
        &home_env(home.path(), &[]),
        &[],
        DEADLINE,
    )
    .expect("run");
    assert!(known.listening.is_some(), "{}", known.screen);
    assert!(!known.screen.contains(HOST_KEY_PROMPT), "{}", known.screen);
}

#[test]
fn hashed_known_hosts_are_written_and_found_and_a_changed_key_is_refused() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    let known_hosts = home.path().join("known_hosts");
    let key = sshd.client_key().display().to_string();

    let learnt = run(
        &args(
            &sshd,
            &known_hosts,
            "accept-new",
            &["-i", &key, "-o", "HashKnownHosts=yes"],
        ),
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert!(learnt.listening.is_some(), "{}", learnt.stderr);
    let recorded = std::fs::read_to_string(&known_hosts).expect("known_hosts written");
    assert!(recorded.starts_with("|1|"), "a hashed name: {recorded}");
    assert!(!recorded.contains(&sshd.addr().to_string()), "{recorded}");
    // OpenSSH's own tools find the hashed entry...
    let found = run_checked(Command::new("ssh-keygen").args([
        "-F",
        &format!("[{}]:{}", sshd.addr(), sshd.port()),
        "-f",
        &known_hosts.display().to_string(),
    ]))
    .expect("ssh-keygen -F");
    assert!(found.contains(&sshd.host_key()), "{found}");
    // ...and so does ftp-tunnel, under StrictHostKeyChecking=yes.
    let again = run(
        &args(&sshd, &known_hosts, "yes", &["-i", &key]),
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert!(again.listening.is_some(), "{}", again.stderr);

    // Another key recorded for the host, on line 2: refused, naming that line, exit 255.
    let other = home.path().join("other");
    keygen(&other).expect("keygen");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let mut fields = other_pub.split_whitespace();
    let forged = format!(
        "# first line\n[{}]:{} {} {}\n",
        sshd.addr(),
        sshd.port(),
        fields.next().expect("type"),
        fields.next().expect("key")
    );
    let changed_file = home.path().join("known_hosts_changed");
    std::fs::write(&changed_file, forged).expect("write");
    let changed = run(
        &args(&sshd, &changed_file, "yes", &["-i", &key]),
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert!(changed.listening.is_none(), "{}", changed.stderr);
    assert_eq!(changed.status.code(), Some(255), "{}", changed.stderr);
    assert!(
        changed
            .stderr
            .contains("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!"),
        "{}",
        changed.stderr
    );
    assert!(
        changed
            .stderr
            .contains(&format!("Offending key in {}:2", changed_file.display())),
        "{}",
        changed.stderr
    );
    assert_eq!(sshd.accepted_logins(), 2, "no login with the changed key");

    // The right key, but marked @revoked (for every host) on line 1: refused, exit 255.
    let revoked_file = home.path().join("known_hosts_revoked");
    let valid = std::fs::read_to_string(sshd.known_hosts()).expect("known_hosts");
    std::fs::write(
        &revoked_file,
        format!("@revoked * {}\n{valid}", sshd.host_key()),
    )
    .expect("write");
    let revoked = run(
        &args(&sshd, &revoked_file, "yes", &["-i", &key]),
        &home_env(home.path(), &[]),
        DEADLINE,
    )
    .expect("run");
    assert!(revoked.listening.is_none(), "{}", revoked.stderr);
    assert_eq!(revoked.status.code(), Some(255), "{}", revoked.stderr);
    assert!(
        revoked
            .stderr
            .contains(&format!("revoked in {}:1", revoked_file.display())),
        "{}",
        revoked.stderr
    );
    assert_eq!(sshd.accepted_logins(), 2, "no login with a revoked key");
}

#[test]
fn a_passphrase_typed_on_the_terminal() {
    let ns = NetNs::new().expect("netns");
    let sshd = Sshd::start(&ns, Forwarding::Yes).expect("sshd");
    let home = open_tempdir("ftpt-home-").expect("home");
    // A copy of the client key, protected by a passphrase.
    let key = home.path().join("id_locked");
    std::fs::copy(sshd.client_key(), &key).expect("copy key");
    run_checked(Command::new("ssh-keygen").args([
        "-q",
        "-p",
        "-P",
        "",
        "-N",
        "open sesame",
        "-f",
        &key.display().to_string(),
    ]))
    .expect("set a passphrase");
    let key_arg = key.display().to_string();
    let prompt = "Enter passphrase for key";

    let wrong = run_on_terminal(
        &args(
            &sshd,
            &sshd.known_hosts(),
            "yes",
            &["-i", &key_arg, "-o", "NumberOfPasswordPrompts=2"],
        ),
        &home_env(home.path(), &[]),
        &[
            Answer {
                prompt,
                typed: "guess".into(),
            },
            Answer {
                prompt,
                typed: "guess again".into(),
            },
        ],
        DEADLINE,
    )
    .expect("run");
    assert_eq!(wrong.answered, 2, "asked twice: {}", wrong.screen);
    assert_eq!(wrong.code, Some(255), "{}", wrong.screen);
    assert!(
        wrong.screen.contains("Permission denied (publickey"),
        "{}",
        wrong.screen
    );
    assert!(
        !wrong.screen.contains("guess"),
        "the passphrase is not echoed: {}",
        wrong.screen
    );

    let right = run_on_terminal(
        &args(&sshd, &sshd.known_hosts(), "yes", &["-i", &key_arg]),
        &home_env(home.path(), &[]),
        &[Answer {
            prompt,
            typed: "open sesame".into(),
        }],
        DEADLINE,
    )
    .expect("run");
    assert!(right.listening.is_some(), "{}", right.screen);
    assert_eq!(right.code, Some(0), "{}", right.screen);
    assert_eq!(sshd.accepted_logins(), 1, "{}", sshd.log());
}
