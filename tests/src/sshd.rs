//! OpenSSH sshd in a test's namespace, with its own config, host key and client key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::NetNs;
use crate::{Error, Result, run_checked};

/// The port sshd listens on inside its namespace; not 22, so known_hosts uses `[ip]:port`
/// and the client's `-p` is exercised.
pub const SSHD_PORT: u16 = 2222;

/// Which TCP forwarding the server allows (`AllowTcpForwarding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// Local and remote forwarding: passive and active FTP both work.
    Yes,
    /// Only local (`direct-tcpip`): `tcpip-forward` is refused, so active mode cannot work.
    Local,
}

/// Where an SSH server fixture runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Inside the namespace, on its veth address (`-L` tests: the FTP server is in there).
    Namespace,
    /// In the root namespace, on the root's end of the namespace's veth link (`-R` tests:
    /// the tunnel and the FTP server are in the namespace, the FTP client outside).
    Host,
}

impl Side {
    /// Waits up to 10 s until a server started on this side of `ns` listens on `addr:port`
    /// (inside the namespace the namespace's own view; on the host a connection attempt).
    pub fn wait_listening(self, ns: &NetNs, addr: std::net::Ipv4Addr, port: u16) -> Result<()> {
        let timeout = Duration::from_secs(10);
        match self {
            Side::Namespace => ns.wait_listening(port, timeout),
            Side::Host => {
                crate::wait_connectable(std::net::SocketAddr::from((addr, port)), timeout)
            }
        }
    }
}

/// What the tunnel fixture needs of an SSH server (OpenSSH's sshd or dropbear).
pub trait SshServer {
    /// The address it listens on.
    fn addr(&self) -> std::net::Ipv4Addr;
    /// The port it listens on.
    fn port(&self) -> u16;
    /// The client's private key (authorized for root).
    fn client_key(&self) -> PathBuf;
    /// A known_hosts file naming this server's host key as `[ip]:port`.
    fn known_hosts(&self) -> PathBuf;
}

/// A running sshd; killed (with its per-connection children) on Drop.
#[derive(Debug)]
pub struct Sshd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: std::net::Ipv4Addr,
}

/// Generates an ed25519 key pair at `path` (and `path.pub`), mode 0600.
pub fn keygen(path: &Path) -> Result<()> {
    let p = path.to_string_lossy();
    run_checked(
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "ftpt", "-f", &p]),
    )?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

impl Sshd {
    /// Starts sshd inside `ns`, listening on the namespace's veth address, and waits for it.
    pub fn start(ns: &NetNs, forwarding: Forwarding) -> Result<Self> {
        Self::start_at(ns, Side::Namespace, forwarding, "")
    }

    /// Like [`Sshd::start`], with `extra` lines appended to sshd_config.
    pub fn start_with(ns: &NetNs, forwarding: Forwarding, extra: &str) -> Result<Self> {
        Self::start_at(ns, Side::Namespace, forwarding, extra)
    }

    /// Starts sshd on `side` of `ns`'s veth link, with `extra` lines of configuration.
    pub fn start_at(ns: &NetNs, side: Side, forwarding: Forwarding, extra: &str) -> Result<Self> {
        Self::start_with_flags(ns, side, forwarding, extra, &[])
    }

    /// Like [`Sshd::start_at`], with `flags` on sshd's command line: `-o Keyword=value` there
    /// wins over the configuration file, also for keywords a `Match` block cannot set
    /// (`UsePAM`).
    pub fn start_with_flags(
        ns: &NetNs,
        side: Side,
        forwarding: Forwarding,
        extra: &str,
        flags: &[&str],
    ) -> Result<Self> {
        let addr = match side {
            Side::Namespace => ns.ns_ip(),
            Side::Host => ns.host_ip(),
        };
        let dir = tempfile::Builder::new().prefix("ftpt-sshd-").tempdir()?;
        let d = dir.path();
        keygen(&d.join("host_key"))?;
        keygen(&d.join("client_key"))?;
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))?;
        // sshd refuses to start without its privilege-separation directory.
        fs::create_dir_all("/run/sshd")?;
        let allow = match forwarding {
            Forwarding::Yes => "yes",
            Forwarding::Local => "local",
        };
        let config = format!(
            "ListenAddress {addr}:{port}\n\
             HostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             PidFile none\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             StrictModes no\n\
             UsePAM no\n\
             AllowTcpForwarding {allow}\n\
             GatewayPorts no\n\
             PermitOpen any\n\
             X11Forwarding no\n\
             MaxStartups 100\n\
             MaxSessions 100\n\
             LogLevel DEBUG1\n\
             {extra}\n",
            port = SSHD_PORT,
            d = d.display(),
        );
        fs::write(d.join("sshd_config"), config)?;
        let host_pub = fs::read_to_string(d.join("host_key.pub"))?;
        let mut fields = host_pub.split_whitespace();
        let (Some(kind), Some(key)) = (fields.next(), fields.next()) else {
            return Err(Error::Setup("unreadable host_key.pub".into()));
        };
        fs::write(
            d.join("known_hosts"),
            format!("[{addr}]:{SSHD_PORT} {kind} {key}\n"),
        )?;
        let log = fs::File::create(d.join("sshd.log"))?;
        let cfg = d.join("sshd_config");
        let mut command = match side {
            Side::Namespace => ns.command_in("/usr/sbin/sshd", &["-D", "-e", "-f"]),
            Side::Host => {
                let mut c = Command::new("/usr/sbin/sshd");
                c.args(["-D", "-e", "-f"]);
                c
            }
        };
        let child = command
            .arg(&cfg)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::Spawn("sshd".into(), e))?;
        let sshd = Sshd {
            child: Some(child),
            dir,
            addr,
        };
        if let Err(e) = side.wait_listening(ns, addr, SSHD_PORT) {
            crate::dump_log("sshd", &sshd.log_path());
            return Err(e);
        }
        Ok(sshd)
    }

    /// The address sshd listens on.
    pub fn addr(&self) -> std::net::Ipv4Addr {
        self.addr
    }

    /// The port sshd listens on.
    pub fn port(&self) -> u16 {
        SSHD_PORT
    }

    /// The client's private key (authorized for root).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file naming this server's host key as `[ip]:port`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The server's host key as known_hosts names it: `type base64`.
    pub fn host_key(&self) -> String {
        let public = fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap_or_default();
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// How many logins the log shows (`Accepted publickey`).
    pub fn accepted_logins(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// The server's log file (sshd -e output at LogLevel DEBUG1).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// The log's current contents.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A directory for the test's own scratch files (removed with the fixture).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills sshd and every per-connection child it forked, so open SSH connections drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::kill_tree(&mut child);
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        crate::dump_log_if_panicking("sshd", &self.log_path());
        self.kill();
    }
}

impl SshServer for Sshd {
    fn addr(&self) -> std::net::Ipv4Addr {
        self.addr
    }
    fn port(&self) -> u16 {
        SSHD_PORT
    }
    fn client_key(&self) -> PathBuf {
        Sshd::client_key(self)
    }
    fn known_hosts(&self) -> PathBuf {
        Sshd::known_hosts(self)
    }
}
