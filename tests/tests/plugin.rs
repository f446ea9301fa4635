//! `--plugin FILE.wasm` and files that are not what the admin said they are.
//!
//! A replacement rewrite component (here: the built-in one's bytes, written to a file) runs
//! the tunnel end to end against sshd and vsftpd; a component of another world, given as a
//! plugin or as a policy, is refused at startup with exit status 2 and a message that names
//! the file and what is missing.

use std::process::{Command, Stdio};
use std::time::Duration;

use ftp_tunnel_e2e::files::{random_file, sha256_file};
use ftp_tunnel_e2e::lab::{Lab, ServerKind};
use ftp_tunnel_e2e::policies::policy;
use ftp_tunnel_e2e::sshd::Forwarding;
use ftp_tunnel_e2e::tunnel::{Tunnel, run_to_exit};

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_plugin_file_replaces_the_built_in_component() {
    let lab = Lab::new(ServerKind::Vsftpd, Forwarding::Yes).expect("lab");
    let scratch = tempfile::tempdir().unwrap();
    let plugin = scratch.path().join("rewrite.wasm");
    std::fs::write(&plugin, ftp_tunnel::runtime::EMBEDDED_COMPONENT).unwrap();
    let sha = random_file(&lab.server.upload_dir_local().join("p.bin"), 200_000).unwrap();
    let plugin_arg = plugin.display().to_string();
    let tunnel = Tunnel::ftp_with(
        &lab.sshd,
        "127.0.0.1",
        lab.server.port(),
        &["--plugin", &plugin_arg],
    )
    .expect("tunnel");
    assert!(
        tunnel
            .lines()
            .iter()
            .any(|l| l.contains("rewrite component:") && l.contains("rewrite.wasm")),
        "the plugin is not announced:\n{}",
        tunnel.lines().join("\n")
    );
    let got = scratch.path().join("got.bin");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-o"])
        .arg(&got)
        .arg(format!("ftp://127.0.0.1:{}/pub/p.bin", tunnel.port()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_file(&got).unwrap(), sha);
}

/// Runs the binary with `admin` arguments and a forward; SSH is never reached.
fn refused(admin: &[&str]) -> String {
    let mut args: Vec<String> = admin.iter().map(|a| a.to_string()).collect();
    args.extend(["-L", "ftp/127.0.0.1:0:127.0.0.1:21", "127.0.0.1"].map(String::from));
    let finished = run_to_exit(&args, TIMEOUT).expect("exits by itself");
    assert_eq!(
        finished.status.code(),
        Some(2),
        "exit status; stderr:\n{}",
        finished.stderr
    );
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
    finished.stderr
}

#[test]
fn a_policy_is_not_a_plugin_and_a_plugin_is_not_a_policy() {
    let read_only = policy("read-only").display().to_string();
    let stderr = refused(&["--plugin", &read_only]);
    assert!(
        stderr.contains("read_only.wasm") && stderr.contains("ftp-tunnel:plugin"),
        "{stderr}"
    );

    let scratch = tempfile::tempdir().unwrap();
    let plugin = scratch.path().join("rewrite.wasm");
    std::fs::write(&plugin, ftp_tunnel::runtime::EMBEDDED_COMPONENT).unwrap();
    let stderr = refused(&["--policy", plugin.to_str().unwrap()]);
    assert!(
        stderr.contains("rewrite.wasm")
            && stderr.contains("configure, check-command, check-forward"),
        "{stderr}"
    );

    let stderr = refused(&["--policy", "/nonexistent/p.wasm"]);
    assert!(stderr.contains("/nonexistent/p.wasm"), "{stderr}");
}
