//! dropbear (the SSH server of many appliances), with its own host key, on either side of a
//! test's namespace link.
//!
//! dropbear reads authorized keys only from the user's `~/.ssh`; it runs in a mount namespace
//! of its own (`unshare -m`) where a scratch directory is bind-mounted over root's `~/.ssh`,
//! so the machine's own keys are neither read nor touched.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::netns::NetNs;
use crate::sshd::{Side, SshServer, keygen};
use crate::{Error, Result, run_checked};

/// The port dropbear listens on.
pub const DROPBEAR_PORT: u16 = 2223;

/// A running dropbear; killed (with its per-connection children) on Drop.
#[derive(Debug)]
pub struct Dropbear {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: std::net::Ipv4Addr,
}

impl Dropbear {
    /// Starts dropbear on `side` of `ns`'s veth link and waits until it accepts connections.
    pub fn start(ns: &NetNs, side: Side) -> Result<Self> {
        let dir = crate::open_tempdir("ftpt-dropbear-")?;
        let d = dir.path();
        let host_key = d.join("host_key");
        run_checked(
            Command::new("dropbearkey")
                .args(["-t", "ed25519", "-f"])
                .arg(&host_key),
        )?;
        let public = run_checked(
            Command::new("dropbearkey")
                .arg("-y")
                .arg("-f")
                .arg(&host_key),
        )?;
        let line = public
            .lines()
            .find(|l| l.starts_with("ssh-ed25519 "))
            .ok_or_else(|| Error::Setup(format!("no public key in dropbearkey -y: {public}")))?;
        let mut fields = line.split_whitespace();
        let (Some(kind), Some(key)) = (fields.next(), fields.next()) else {
            return Err(Error::Setup("unreadable dropbear public key".into()));
        };
        let addr = match side {
            Side::Namespace => ns.ns_ip(),
            Side::Host => ns.host_ip(),
        };
        fs::write(
            d.join("known_hosts"),
            format!("[{addr}]:{DROPBEAR_PORT} {kind} {key}\n"),
        )?;
        keygen(&d.join("client_key"))?;
        let ssh_dir = d.join("dot-ssh");
        fs::create_dir_all(&ssh_dir)?;
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700))?;
        fs::copy(d.join("client_key.pub"), ssh_dir.join("authorized_keys"))?;
        fs::set_permissions(
            ssh_dir.join("authorized_keys"),
            fs::Permissions::from_mode(0o600),
        )?;
        // The mount point must exist; an empty directory is all this adds to the machine.
        let home_ssh = home_ssh_dir();
        fs::create_dir_all(&home_ssh)?;
        let script = format!(
            "mount --bind '{ssh}' '{home}' && exec dropbear -F -E -s -p {addr}:{DROPBEAR_PORT} -r '{key}'",
            ssh = ssh_dir.display(),
            home = home_ssh.display(),
            key = host_key.display(),
        );
        let log = fs::File::create(d.join("dropbear.log"))?;
        let mut command = match side {
            Side::Namespace => ns.command_in("unshare", &["-m", "sh", "-c", &script]),
            Side::Host => {
                let mut c = Command::new("unshare");
                c.args(["-m", "sh", "-c", &script]);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::Spawn("dropbear".into(), e))?;
        let server = Dropbear {
            child: Some(child),
            dir,
            addr,
        };
        if let Err(e) = side.wait_listening(ns, addr, DROPBEAR_PORT) {
            crate::dump_log("dropbear", &server.log_path());
            return Err(e);
        }
        Ok(server)
    }

    /// The server's log (its stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("dropbear.log")
    }

    /// A directory for the test's scratch files (removed with the fixture).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// root's `~/.ssh`, where dropbear looks for authorized keys.
fn home_ssh_dir() -> PathBuf {
    std::env::home_dir()
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".ssh")
}

impl SshServer for Dropbear {
    fn addr(&self) -> std::net::Ipv4Addr {
        self.addr
    }
    fn port(&self) -> u16 {
        DROPBEAR_PORT
    }
    fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }
    fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }
}

impl Drop for Dropbear {
    fn drop(&mut self) {
        crate::dump_log_if_panicking("dropbear", &self.log_path());
        if let Some(mut child) = self.child.take() {
            crate::kill_tree(&mut child);
        }
    }
}
