//! End to end: policies and the audit log in a real tunnel (OpenSSH sshd, vsftpd, curl, lftp).
//!
//! The read-only example denies STOR with its reason in curl's output while LIST and RETR
//! work; each misbehaving policy fails closed and the next FTP session is served as usual;
//! the JSON audit lines parse and their byte counts equal the files' sizes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ftp_tunnel_e2e::files::{random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::policies::policy;
use ftp_tunnel_e2e::poll_until;
use ftp_tunnel_e2e::rawftp::RawFtp;
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::Tunnel;

/// Runs curl with `args` against the tunnel; returns (success, stdout + stderr transcript).
fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "30"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn tunnel_with(lab: &Lab, extra: &[String]) -> Tunnel {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    Tunnel::ftp_with(&lab.sshd, "127.0.0.1", lab.server.port(), &extra).expect("tunnel")
}

fn url(tunnel: &Tunnel, path: &str) -> String {
    format!("ftp://127.0.0.1:{}/{path}", tunnel.port())
}

/// A file on the server, in its upload directory; returns its sha256.
fn server_file(lab: &Lab, name: &str, size: u64) -> String {
    random_file(&lab.server.upload_dir_local().join(name), size).expect("server file")
}

fn download_matches(tunnel: &Tunnel, name: &str, sha: &str, scratch: &Path) {
    let out = scratch.join(format!("got-{name}"));
    let (ok, transcript) = curl(&[
        "-o",
        out.to_str().unwrap(),
        &url(tunnel, &format!("pub/{name}")),
    ]);
    assert!(ok, "RETR {name} failed:\n{transcript}");
    assert_eq!(sha256_file(&out).unwrap(), sha, "RETR {name}: wrong bytes");
}

#[test]
fn read_only_denies_stor_with_the_reason_while_list_and_retr_work() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let scratch = tempfile::tempdir().unwrap();
    let sha = server_file(&lab, "data.bin", 300_000);
    let tunnel = tunnel_with(
        &lab,
        &["--policy".into(), policy("read-only").display().to_string()],
    );

    let (ok, listing) = curl(&[&url(&tunnel, "pub/")]);
    assert!(
        ok && listing.contains("data.bin"),
        "LIST failed:\n{listing}"
    );
    download_matches(&tunnel, "data.bin", &sha, scratch.path());

    let upload = scratch.path().join("up.bin");
    random_file(&upload, 10_000).unwrap();
    let (ok, transcript) = curl(&["-T", upload.to_str().unwrap(), &url(&tunnel, "pub/")]);
    assert!(!ok, "STOR went through:\n{transcript}");
    assert!(
        transcript.contains("550 denied by policy: STOR is not allowed: this server is read-only"),
        "curl does not show the reason:\n{transcript}"
    );
    assert!(
        !lab.server.upload_dir_local().join("up.bin").exists(),
        "the file reached the server"
    );

    // lftp too: a listing and a download in one session after the denial.
    let got = scratch.path().join("lftp-data.bin");
    let script = format!(
        "set net:max-retries 1; open -p {} 127.0.0.1; user anonymous x; cls pub/; get pub/data.bin -o {}; bye",
        tunnel.port(),
        got.display()
    );
    let out = Command::new("lftp")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lftp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("data.bin"));
    assert_eq!(sha256_file(&got).unwrap(), sha);
}

#[test]
fn misbehaving_policies_fail_closed_and_the_next_session_is_served() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let scratch = tempfile::tempdir().unwrap();
    let sha = server_file(&lab, "ok.bin", 100_000);
    server_file(&lab, "misbehave.bin", 10);
    for (name, words) in [
        ("spin", "took too long"),
        ("hog", "used too much memory"),
        ("trap", "crashed"),
        ("reads-file", "capability"),
        ("clock", "capability"),
    ] {
        let tunnel = tunnel_with(
            &lab,
            &["--policy".into(), policy(name).display().to_string()],
        );
        let started = std::time::Instant::now();
        let (ok, transcript) = curl(&["-o", "/dev/null", &url(&tunnel, "pub/misbehave.bin")]);
        assert!(
            !ok,
            "{name}: the triggering RETR went through:\n{transcript}"
        );
        assert!(
            transcript.contains("550 denied by policy") && transcript.contains(words),
            "{name}: {transcript}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: too slow"
        );
        // The next FTP session is served as if nothing happened.
        download_matches(&tunnel, "ok.bin", &sha, scratch.path());
        let log = tunnel.lines().join("\n");
        assert!(
            log.contains(&format!("{}.wasm", name.replace('-', "_")))
                && log.contains("check-command"),
            "{name}: the failure is not logged with the policy and the export:\n{log}"
        );
    }
}

#[test]
fn json_audit_lines_agree_with_the_transfers() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let scratch = tempfile::tempdir().unwrap();
    let size = 250_000u64;
    let sha = server_file(&lab, "audited.bin", size);
    let audit = scratch.path().join("audit.jsonl");
    let tunnel = tunnel_with(
        &lab,
        &[
            "--policy".into(),
            policy("read-only").display().to_string(),
            "--log-format".into(),
            "json".into(),
            "-o".into(),
            format!("AuditLog={}", audit.display()),
        ],
    );
    download_matches(&tunnel, "audited.bin", &sha, scratch.path());
    let upload = scratch.path().join("denied.bin");
    random_file(&upload, 1000).unwrap();
    let (ok, _) = curl(&["-T", upload.to_str().unwrap(), &url(&tunnel, "pub/")]);
    assert!(!ok);
    // vsftpd lets anonymous in after USER alone, so curl sends no PASS: a third session
    // sends one, which must never reach the log (nor a policy) in clear.
    let address = format!("127.0.0.1:{}", tunnel.port()).parse().unwrap();
    let (mut raw, _) = RawFtp::connect(address, Duration::from_secs(10)).expect("connect");
    raw.cmd("USER anonymous").expect("USER");
    raw.cmd("PASS s3cret-word").expect("PASS");
    raw.cmd("QUIT").expect("QUIT");
    drop(raw);

    let records: Vec<serde_json::Value> = poll_until(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let sessions = records.iter().filter(|r| r["record"] == "session").count();
        Ok((sessions >= 3).then_some(records))
    })
    .expect("three session records");
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        !text.contains("s3cret") && text.contains("\"PASS ***\""),
        "{text}"
    );
    let retr = records
        .iter()
        .find(|r| r["record"] == "transfer" && r["verb"] == "RETR")
        .unwrap_or_else(|| panic!("no RETR record:\n{text}"));
    assert_eq!(retr["bytes"], size, "{text}");
    assert_eq!(retr["reply_code"], 226);
    assert_eq!(retr["direction"], "download");
    assert!(retr["path"].as_str().unwrap().ends_with("audited.bin"));
    let denial = records
        .iter()
        .find(|r| r["record"] == "denial")
        .unwrap_or_else(|| panic!("no denial record:\n{text}"));
    assert!(
        denial["what"].as_str().unwrap().starts_with("STOR"),
        "{text}"
    );
    assert_eq!(denial["ssh_user"], "root");
    for session in records.iter().filter(|r| r["record"] == "session") {
        assert_eq!(session["ftp_user"], "anonymous", "{text}");
        assert_eq!(
            session["server"],
            format!("127.0.0.1:{}", lab.server.port())
        );
    }
}

#[test]
fn allow_hosts_denies_data_connections_elsewhere_and_allows_listed_ones() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let scratch = tempfile::tempdir().unwrap();
    let sha = server_file(&lab, "hosts.bin", 120_000);
    let audit = scratch.path().join("audit.jsonl");
    // Only a documentation address (192.0.2.0/24) is allowed: the FTP server's data port
    // (passive) and curl's own listener (active) are not.
    let policy_arg = format!("{},allow=192.0.2.0/24:*", policy("allow-hosts").display());
    let tunnel = tunnel_with(
        &lab,
        &[
            "--policy".into(),
            policy_arg,
            "--log-format".into(),
            "json".into(),
            "-o".into(),
            format!("AuditLog={}", audit.display()),
        ],
    );
    let (ok, transcript) = curl(&["-o", "/dev/null", &url(&tunnel, "pub/hosts.bin")]);
    assert!(!ok, "passive RETR went through:\n{transcript}");
    assert!(
        transcript.contains("425")
            && transcript.contains("denied by policy: passive data connection to 127.0.0.1:"),
        "curl does not show the passive denial:\n{transcript}"
    );
    let (ok, transcript) = curl(&["-P", "-", "-o", "/dev/null", &url(&tunnel, "pub/hosts.bin")]);
    assert!(!ok, "active RETR went through:\n{transcript}");
    assert!(
        transcript.contains("denied by policy: active data connection to 127.0.0.1:"),
        "curl does not show the active denial:\n{transcript}"
    );
    let denials = poll_until(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let denials: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["record"] == "denial" && r["subject"] == "data-connection")
            .collect();
        Ok((denials.len() >= 2).then_some(denials))
    })
    .expect("denial records for both data connections");
    assert!(denials.iter().any(|d| {
        d["what"]
            .as_str()
            .is_some_and(|w| w.starts_with("active 127.0.0.1:"))
    }));

    // Listed: the same transfers go through, in both modes.
    let policy_arg = format!("{},allow=127.0.0.1:*", policy("allow-hosts").display());
    let tunnel = tunnel_with(&lab, &["--policy".into(), policy_arg]);
    download_matches(&tunnel, "hosts.bin", &sha, scratch.path());
    let out = scratch.path().join("active.bin");
    let (ok, transcript) = curl(&[
        "-P",
        "-",
        "-o",
        out.to_str().unwrap(),
        &url(&tunnel, "pub/hosts.bin"),
    ]);
    assert!(ok, "active RETR failed:\n{transcript}");
    assert_eq!(sha256_file(&out).unwrap(), sha);
}
