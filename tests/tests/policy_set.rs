//! The policy sandbox in-process, against real components built from `policies/`: the
//! examples decide as documented; misbehaving policies (spinning, hoarding memory, trapping,
//! reaching for files or the clock) fail closed within their deadline, and the next call is
//! served by a fresh instance; files that are not policies are refused with a clear message.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ftp_tunnel::policy::{
    Command, DataForward, DataMode, PolicyError, PolicyLimits, PolicySet, PolicySpec,
};
use ftp_tunnel_core::contract::Verdict;
use ftp_tunnel_e2e::policies::policy;

/// Far above any deadline used here: a call that has not returned by then never will.
const HANG: Duration = Duration::from_secs(20);

fn spec(name: &str, settings: &[(&str, &str)]) -> PolicySpec {
    PolicySpec {
        path: policy(name),
        settings: settings
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

async fn load(specs: &[PolicySpec]) -> PolicySet {
    PolicySet::load(specs, PolicyLimits::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn command(verb: &str, argument: &str) -> Command {
    Command {
        session: 42,
        ssh_user: "admin".to_owned(),
        client: "127.0.0.1".to_owned(),
        server: "127.0.0.1:21".to_owned(),
        ftp_user: Some("anonymous".to_owned()),
        verb: verb.to_owned(),
        argument: argument.to_owned(),
    }
}

fn forward(host: &str, port: u16) -> DataForward {
    DataForward {
        session: 42,
        mode: DataMode::Passive,
        host: host.to_owned(),
        port,
    }
}

fn denied(verdict: Verdict) -> String {
    match verdict {
        Verdict::Deny(reason) => reason,
        Verdict::Allow => panic!("expected a denial, got Allow"),
    }
}

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = tokio::time::timeout(HANG, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {HANG:?}"));
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_denies_writes_and_allows_reads() {
    let set = load(&[spec("read-only", &[])]).await;
    for verb in [
        "STOR", "STOU", "APPE", "DELE", "RNFR", "RNTO", "MKD", "RMD", "SITE", "XMKD",
    ] {
        let reason = denied(set.check_command(&command(verb, "x")).await);
        assert!(
            reason.contains(verb) && reason.contains("read-only"),
            "{reason}"
        );
    }
    for verb in [
        "USER", "PASS", "RETR", "LIST", "NLST", "CWD", "EPSV", "PASV", "SIZE", "QUIT",
    ] {
        assert_eq!(
            set.check_command(&command(verb, "x")).await,
            Verdict::Allow,
            "{verb}"
        );
    }
    assert_eq!(
        set.check_forward(&forward("10.1.2.3", 20)).await,
        Verdict::Allow
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_hosts_admits_only_listed_hosts_and_ports() {
    let set = load(&[spec(
        "allow-hosts",
        &[
            ("allow", "127.0.0.1:*"),
            ("allow", "ftp.internal:30000-30100"),
            ("allow", "10.0.0.0/8:21"),
            ("allow", "[fd00::/8]:*"),
        ],
    )])
    .await;
    for (host, port) in [
        ("127.0.0.1", 5000),
        ("FTP.internal", 30050),
        ("10.200.1.1", 21),
        ("fd00::5", 1),
    ] {
        assert_eq!(
            set.check_forward(&forward(host, port)).await,
            Verdict::Allow,
            "{host}:{port}"
        );
    }
    for (host, port) in [
        ("127.0.0.2", 5000),
        ("ftp.internal", 30101),
        ("10.200.1.1", 22),
        ("fe80::1", 1),
        ("evil.example", 21),
    ] {
        let reason = denied(set.check_forward(&forward(host, port)).await);
        assert!(reason.contains(&format!("{host}:{port}")), "{reason}");
    }
    assert_eq!(
        set.check_command(&command("STOR", "x")).await,
        Verdict::Allow
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_must_allow_and_the_first_denial_wins() {
    let set = load(&[
        spec("allow-hosts", &[("allow", "127.0.0.1:*")]),
        spec("read-only", &[]),
        spec("echo", &[("mark", "second")]),
    ])
    .await;
    // read-only denies before echo is asked.
    assert!(denied(set.check_command(&command("DELE", "f")).await).contains("read-only"));
    // Both earlier ones allow RETR: echo denies, showing what policies are given.
    let reason = denied(set.check_command(&command("RETR", "dir/f.bin")).await);
    assert_eq!(
        reason,
        "session=42 ssh-user=admin client=127.0.0.1 server=127.0.0.1:21 ftp-user=anonymous \
         verb=RETR argument=dir/f.bin settings=[mark=second]"
    );
    // allow-hosts denies before echo is asked.
    assert!(denied(set.check_forward(&forward("10.0.0.1", 20)).await).contains("10.0.0.1:20"));
    assert_eq!(
        denied(set.check_forward(&forward("127.0.0.1", 20)).await),
        "session=42 mode=passive host=127.0.0.1 port=20"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_reach_a_policy() {
    let set = load(&[spec("echo", &[])]).await;
    let reason = denied(set.check_command(&command("PASS", "hunter2")).await);
    assert!(
        reason.contains("argument=***") && !reason.contains("hunter2"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_policies_fail_closed_within_the_deadline_and_recover() {
    let limits = PolicyLimits::default();
    for (name, words) in [
        ("spin", "took too long"),
        ("hog", "used too much memory"),
        ("trap", "crashed"),
        ("reads-file", "capability"),
        ("clock", "capability"),
    ] {
        let set = load(&[spec(name, &[])]).await;
        for round in 0..2 {
            let (verdict, took) =
                bounded(name, set.check_command(&command("RETR", "misbehave.txt"))).await;
            let reason = denied(verdict);
            assert!(
                reason.contains(name.replace('-', "_").as_str()) && reason.contains(words),
                "{name}: {reason}"
            );
            // A fresh instance (instantiation, configure) plus the deadline, with room for
            // a loaded machine; a policy that ignored the deadline would never get here.
            assert!(
                took < limits.timeout * 3 + Duration::from_millis(500),
                "{name}: {took:?}"
            );
            if name == "spin" {
                assert!(
                    took >= limits.timeout * 8 / 10,
                    "{name} stopped early: {took:?}"
                );
            }
            // The next call is served normally, by a fresh instance.
            assert_eq!(
                set.check_command(&command("RETR", "fine.txt")).await,
                Verdict::Allow,
                "{name} round {round}"
            );
            let (verdict, _) =
                bounded(name, set.check_forward(&forward("misbehave.invalid", 20))).await;
            assert!(denied(verdict).contains(words), "{name} forward");
            assert_eq!(
                set.check_forward(&forward("127.0.0.1", 20)).await,
                Verdict::Allow,
                "{name} forward round {round}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_configurable() {
    let limits = PolicyLimits {
        timeout: Duration::from_millis(60),
        memory: 2 << 20,
    };
    let set = PolicySet::load(&[spec("spin", &[])], limits).await.unwrap();
    let (verdict, took) = bounded("spin", set.check_command(&command("X", "misbehave"))).await;
    assert!(denied(verdict).contains("took too long"));
    assert!(took >= Duration::from_millis(48), "stopped early: {took:?}");
    // Policies start at about 1 MiB; the examples work under a 2 MiB cap.
    let set = PolicySet::load(&[spec("read-only", &[])], limits)
        .await
        .unwrap();
    assert!(denied(set.check_command(&command("STOR", "f")).await).contains("read-only"));
}

/// On a single-threaded runtime, calls to a well-behaved policy go on while another session's
/// policy call spins until its deadline: a spinning policy yields at every epoch tick.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_policy_does_not_stall_other_sessions() {
    let limits = PolicyLimits {
        timeout: Duration::from_millis(600),
        ..PolicyLimits::default()
    };
    let set = std::sync::Arc::new(PolicySet::load(&[spec("spin", &[])], limits).await.unwrap());
    let slow_set = set.clone();
    let slow = tokio::spawn(async move {
        let verdict = slow_set.check_command(&command("RETR", "misbehave")).await;
        (verdict, Instant::now())
    });
    tokio::task::yield_now().await;
    let mut served = Vec::new();
    for i in 0..20 {
        let verdict = set.check_command(&command("RETR", &format!("f{i}"))).await;
        assert_eq!(verdict, Verdict::Allow);
        served.push(Instant::now());
    }
    let (verdict, slow_done) = tokio::time::timeout(HANG, slow).await.unwrap().unwrap();
    assert!(denied(verdict).contains("took too long"));
    let last = *served.last().unwrap();
    assert!(
        last < slow_done,
        "the quick calls waited for the spinning one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_errors_refuse_the_policy_at_startup() {
    let error = PolicySet::load(&[spec("allow-hosts", &[])], PolicyLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(error, PolicyError::Configure { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("allow_hosts.wasm") && message.contains("no allow="),
        "{message}"
    );

    let error = PolicySet::load(
        &[spec("allow-hosts", &[("allow", "127.0.0.1:99999")])],
        PolicyLimits::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("allow=127.0.0.1:99999") && error.contains("not a port"),
        "{error}"
    );

    let error = PolicySet::load(
        &[spec("read-only", &[("mode", "x")])],
        PolicyLimits::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("takes no settings"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_policies_are_refused_with_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let refuse = |path: PathBuf| async move {
        let spec = PolicySpec {
            path,
            settings: Vec::new(),
        };
        PolicySet::load(&[spec], PolicyLimits::default())
            .await
            .unwrap_err()
            .to_string()
    };

    let message = refuse(policy("half-policy")).await;
    assert!(
        message.contains("ftp-tunnel:policy@0.1.0")
            && message.contains("does not export check-command, check-forward"),
        "{message}"
    );

    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "just text").unwrap();
    assert!(refuse(text).await.contains("not a WebAssembly file"));

    // The smallest core module: header only.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    assert!(refuse(core).await.contains("core module, not a component"));

    let missing = dir.path().join("missing.wasm");
    let message = refuse(missing).await;
    assert!(
        message.contains("missing.wasm") && message.contains("cannot read"),
        "{message}"
    );

    let truncated = dir.path().join("truncated.wasm");
    let bytes = std::fs::read(policy("read-only")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(refuse(truncated).await.contains("not a valid component"));
}
