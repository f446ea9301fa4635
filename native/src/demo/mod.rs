//! `ftp-tunnel demo`: real FTP transfers through the real tunnel, with no setup.
//!
//! Everything runs in this process on 127.0.0.1: an SSH server (russh's server side, see
//! [`ssh_server`]), an FTP server (libunftp serving a temp dir, see [`ftp_server`]), the
//! tunnel itself connecting to that SSH server as an ordinary SSH client (identity file,
//! known_hosts, `StrictHostKeyChecking=yes`), and an FTP client (suppaftp) that uploads,
//! lists, downloads and checks sha256 through the tunnel's listener in EPSV, PASV, EPRT
//! and PORT modes. The tunnel's events show what it rewrote and what each data channel
//! carried.

pub mod ftp_client;
pub mod ftp_server;
pub mod report;
pub mod ssh_server;
#[cfg(test)]
mod tests;

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use russh::keys::HashAlg;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use crate::events::TunnelEvent;
use crate::settings::FtpSettings;
use crate::spec::ForwardSpec;
use crate::ssh::{SshOptions, StrictHostKeyChecking};
use crate::tunnel::{Tunnel, TunnelConfig};
use ftp_client::{FtpMode, Payload, hex};
use ftp_server::FtpServer;
use ftp_tunnel_core::session::DataMode;
use report::{ModeReport, RewriteLine, TunnelTransfer};
use ssh_server::{SshServer, generate_ed25519, private_key_openssh};

/// How long to wait for the tunnel's last events after the client has finished.
const EVENT_GRACE: Duration = Duration::from_secs(5);

/// Largest file size the demo accepts, in MiB (it writes each payload to a temp dir twice).
const MAX_MIB: u64 = 16 * 1024;

/// What the demo transfers (also usable as `clap` arguments of a `demo` subcommand).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DemoOptions {
    /// Size of the file every mode sends, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 4)]
    pub small_mib: u64,
    /// Size of the extra file sent in the first mode (EPSV) to show throughput, in MiB; 0 = none.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub large_mib: u64,
    /// Keep the temp directory (keys, known_hosts, served files) and print its path.
    #[arg(long)]
    pub keep: bool,
}

/// Runs the demo, printing its report on stdout. Fails (with the report already printed)
/// if any mode failed.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    if opts.small_mib > MAX_MIB || opts.large_mib > MAX_MIB {
        bail!("file sizes are limited to {MAX_MIB} MiB");
    }
    let work = tempfile::Builder::new()
        .prefix("ftp-tunnel-demo-")
        .tempdir()
        .context("cannot create a temp directory")?;
    let result = run_in(&opts, work.path()).await;
    if opts.keep {
        let kept = work.keep();
        println!("Kept {}", kept.display());
    }
    result
}

async fn run_in(opts: &DemoOptions, work: &Path) -> anyhow::Result<()> {
    let ftp_root = work.join("ftp-root");
    let local = work.join("client");
    let ssh_dir = work.join("ssh");
    for dir in [&ftp_root, &local, &ssh_dir] {
        std::fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    // Keys: the client key goes to an identity file and the server's host key into a
    // known_hosts file, so the tunnel authenticates and verifies exactly as against sshd.
    let client_key = generate_ed25519();
    let identity = ssh_dir.join("id_ed25519");
    write_private(&identity, private_key_openssh(&client_key)?.as_bytes())?;
    let ssh = SshServer::start(
        (Ipv4Addr::LOCALHOST, 0).into(),
        generate_ed25519(),
        client_key.public_key().clone(),
    )
    .await
    .context("cannot start the in-process SSH server")?;
    let known_hosts = ssh_dir.join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", ssh.known_hosts_line()?))
        .with_context(|| format!("cannot write {}", known_hosts.display()))?;

    let ftp = FtpServer::start(&ftp_root)
        .await
        .context("cannot start the FTP server")?;

    let small = make_payload(&local.join("small.bin"), opts.small_mib << 20)?;
    let large = if opts.large_mib > 0 {
        Some(make_payload(
            &local.join("large.bin"),
            opts.large_mib << 20,
        )?)
    } else {
        None
    };

    let spec = format!("ftp/127.0.0.1:0:127.0.0.1:{}", ftp.local_addr().port());
    let forward: ForwardSpec = spec
        .parse()
        .with_context(|| format!("bad forward {spec}"))?;
    let ssh_options = SshOptions {
        host: "127.0.0.1".to_owned(),
        port: ssh.local_addr().port(),
        user: "demo".to_owned(),
        identity_files: vec![identity],
        known_hosts: known_hosts.clone(),
        strict_host_key_checking: StrictHostKeyChecking::Yes,
        connect_timeout: Duration::from_secs(10),
        ..SshOptions::new("127.0.0.1", 0, "demo")
    };
    let tunnel = Tunnel::start(TunnelConfig {
        ssh: ssh_options,
        forwards: vec![forward],
        remote_forwards: vec![],
        ftp: FtpSettings::default(),
        admin: Default::default(),
    })
    .await
    .context("the tunnel could not start")?;
    let listen = *tunnel
        .listen_addrs()
        .first()
        .context("the tunnel opened no listener")?;
    tunnel.announce();
    let mut events = tunnel.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let tunnel_task = tokio::spawn(tunnel.run(async {
        let _ = stopped.await;
    }));

    println!("ftp-tunnel demo: real FTP through a real SSH tunnel, all on this machine");
    println!(
        "  SSH server   {}  in-process russh; host key {} checked via known_hosts (StrictHostKeyChecking=yes)",
        ssh.local_addr(),
        ssh.host_public_key().fingerprint(HashAlg::Sha256)
    );
    println!(
        "  FTP server   {}  libunftp 0.24 serving a temp dir",
        ftp.local_addr()
    );
    println!("  tunnel       {listen}  -L {spec}");
    println!(
        "  FTP client   suppaftp 12 → {listen}; {} per mode{}",
        report::bytes(small.len),
        large
            .as_ref()
            .map(|l| format!(", plus {} in EPSV", report::bytes(l.len)))
            .unwrap_or_default()
    );
    println!();
    let _ = std::io::stdout().flush();

    let mut outcomes = Vec::new();
    let mut collected: Vec<TunnelEvent> = Vec::new();
    for mode in FtpMode::ALL {
        let mut payloads = vec![small.clone()];
        if mode == FtpMode::Epsv
            && let Some(large) = &large
        {
            payloads.push(large.clone());
        }
        let outcome = ftp_client::run_mode(listen, mode, &payloads).await;
        drain(&mut events, &mut collected);
        outcomes.push((mode, outcome));
    }

    // Data-channel events may trail the client's last 226 a little: poll with a deadline.
    let expected: usize = outcomes.iter().map(|(_, o)| o.transfers.len()).sum();
    let deadline = tokio::time::Instant::now() + EVENT_GRACE;
    while count_transfers(&collected) < expected {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) => collected.push(event),
            Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                tracing::warn!(missed = n, "demo missed tunnel events");
            }
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
        }
    }

    let _ = stop.send(());
    let tunnel_result = tunnel_task.await;

    let modes: Vec<ModeReport> = outcomes
        .into_iter()
        .map(|(mode, outcome)| mode_report(mode, outcome, &collected))
        .collect();
    print!("{}", report::render_rewrites(&modes));
    println!();
    print!("{}", report::render_transfers(&modes));
    println!();
    let stats = ssh.stats();
    println!(
        "SSH server saw: {} direct-tcpip channels, {} remote forwards ({} cancelled), {} forwarded-tcpip channels",
        stats.direct_tcpip,
        stats.forwards_requested,
        stats.forwards_cancelled,
        stats.forwarded_tcpip
    );
    if ftp.eprt_rewrites() > 0 {
        println!(
            "Note: libunftp has no EPRT; a line filter in front of it turned {} EPRT into PORT.",
            ftp.eprt_rewrites()
        );
    }
    println!("{}", report::render_verdict(&modes));
    let _ = std::io::stdout().flush();

    match tunnel_result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!("the tunnel stopped with an error: {e}"),
        Err(e) => bail!("the tunnel task failed: {e}"),
    }
    let failed: Vec<String> = modes
        .iter()
        .filter(|m| !m.ok())
        .filter_map(|m| {
            m.mode
                .map(|mode| format!("{mode}: {}", m.error.as_deref().unwrap_or("no transfers")))
        })
        .collect();
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// Writes a private key file readable by its owner only, as ssh clients expect.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `len` random bytes to `path` and returns it with its sha256.
fn make_payload(path: &Path, len: u64) -> anyhow::Result<Payload> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        rand::Rng::fill(&mut rand::rng(), &mut chunk[..n]);
        hasher.update(&chunk[..n]);
        file.write_all(&chunk[..n])
            .with_context(|| format!("cannot write {}", path.display()))?;
        left -= n as u64;
    }
    file.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Payload {
        path: PathBuf::from(path),
        len,
        sha256: hex(&hasher.finalize()),
    })
}

/// Moves every event already queued into `into`.
fn drain(events: &mut broadcast::Receiver<TunnelEvent>, into: &mut Vec<TunnelEvent>) {
    loop {
        match events.try_recv() {
            Ok(event) => into.push(event),
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "demo missed tunnel events");
            }
            Err(_) => break,
        }
    }
}

fn count_transfers(events: &[TunnelEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, TunnelEvent::TransferFinished { .. }))
        .count()
}

/// The tunnel session whose control connection came from `client`.
fn session_of(events: &[TunnelEvent], client: SocketAddr) -> Option<u64> {
    events.iter().find_map(|e| match e {
        TunnelEvent::SessionOpened { session, client: c } if *c == client => Some(*session),
        _ => None,
    })
}

fn mode_report(
    mode: FtpMode,
    outcome: ftp_client::ModeOutcome,
    events: &[TunnelEvent],
) -> ModeReport {
    let session = outcome.client_addr.and_then(|a| session_of(events, a));
    let mut rewrites = Vec::new();
    let mut tunnel_transfers = Vec::new();
    for event in events {
        match event {
            TunnelEvent::Rewrite {
                session: s,
                kind,
                original,
                rewritten,
            } if Some(*s) == session => rewrites.push(RewriteLine {
                kind: kind.clone(),
                original: original.trim_end().to_owned(),
                rewritten: rewritten.trim_end().to_owned(),
            }),
            TunnelEvent::TransferFinished {
                session: s,
                mode: data_mode,
                to_server,
                to_client,
                elapsed,
                ..
            } if Some(*s) == session => tunnel_transfers.push(TunnelTransfer {
                active: matches!(data_mode, DataMode::Active),
                to_server: *to_server,
                to_client: *to_client,
                elapsed: *elapsed,
            }),
            _ => {}
        }
    }
    let mut error = outcome.result.err().map(|e| e.to_string());
    if error.is_none() {
        if session.is_none() {
            error = Some("the tunnel reported no session for this control connection".to_owned());
        } else if tunnel_transfers.len() != outcome.transfers.len() {
            error = Some(format!(
                "the tunnel reported {} data channels for {} transfers",
                tunnel_transfers.len(),
                outcome.transfers.len()
            ));
        } else if let Some(t) = tunnel_transfers
            .iter()
            .find(|t| t.active != mode.is_active())
        {
            error = Some(format!(
                "a data channel went {} in {mode} mode",
                if t.active { "active" } else { "passive" }
            ));
        }
    }
    ModeReport {
        mode: Some(mode),
        transfers: outcome.transfers,
        tunnel_transfers,
        rewrites,
        error,
    }
}
