//! A whole test bench: namespace, sshd, one FTP server, and helpers to point clients at it.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::clients::Target;
use crate::files::random_file;
use crate::netns::NetNs;
use crate::pyftpd::Pyftpd;
use crate::rawftp::RawFtp;
use crate::sshd::{Forwarding, Sshd};
use crate::tunnel::Tunnel;
use crate::vsftpd::Vsftpd;
use crate::{Error, FtpServer, Result};

/// Which FTP server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// vsftpd, anonymous, uploads in `pub/`.
    Vsftpd,
    /// The same vsftpd listening on `::1` only.
    VsftpdIpv6,
    /// pyftpdlib, `user`/`pass`.
    Pyftpd,
}

/// Namespace + sshd + FTP server. Fields drop in order: server, sshd, then the namespace.
pub struct Lab {
    /// The FTP server (inside the namespace, 127.0.0.1).
    pub server: Box<dyn FtpServer>,
    /// The SSH server (inside the namespace, on its veth address).
    pub sshd: Sshd,
    /// The namespace.
    pub ns: NetNs,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("server", &self.server.name())
            .field("ns", &self.ns)
            .finish()
    }
}

impl Lab {
    /// Sets everything up; `forwarding` is sshd's `AllowTcpForwarding`.
    pub fn new(kind: ServerKind, forwarding: Forwarding) -> Result<Self> {
        Self::with_sshd_config(kind, forwarding, "")
    }

    /// Like [`Lab::new`], with `extra` lines appended to sshd_config.
    pub fn with_sshd_config(kind: ServerKind, forwarding: Forwarding, extra: &str) -> Result<Self> {
        let ns = NetNs::new()?;
        let sshd = Sshd::start_with(&ns, forwarding, extra)?;
        let server: Box<dyn FtpServer> = match kind {
            ServerKind::Vsftpd => Box::new(Vsftpd::start(&ns)?),
            ServerKind::VsftpdIpv6 => Box::new(Vsftpd::start_v6(&ns)?),
            ServerKind::Pyftpd => Box::new(Pyftpd::start(&ns)?),
        };
        Ok(Lab { server, sshd, ns })
    }

    /// An FTP tunnel to this lab's FTP server, listening on 127.0.0.1.
    pub fn tunnel(&self) -> Result<Tunnel> {
        Tunnel::ftp(&self.sshd, self.server.port())
    }

    /// A control connection through `tunnel`'s listener on 127.0.0.1: greeted with `220`,
    /// logged in, in binary mode; its reads time out after `timeout`.
    pub fn ftp_session(&self, tunnel: &Tunnel, timeout: Duration) -> Result<RawFtp> {
        let addr = SocketAddr::from(([127, 0, 0, 1], tunnel.port()));
        let (mut ftp, greeting) = RawFtp::connect(addr, timeout)?;
        if greeting.code != 220 {
            return Err(Error::Ftp(format!("greeted with {greeting:?}")));
        }
        ftp.login(self.server.user(), self.server.pass())?;
        let binary = ftp.cmd("TYPE I")?;
        if binary.class() != 2 {
            return Err(Error::Ftp(format!("TYPE I refused: {binary:?}")));
        }
        Ok(ftp)
    }

    /// A file of `size` random bytes on the server, and a logged-in session through `tunnel`
    /// downloading it (EPSV) with its first MiB already read: a transfer in full flight for
    /// a fault to hit. Reads time out after `timeout`.
    pub fn download_under_way(
        &self,
        tunnel: &Tunnel,
        size: u64,
        timeout: Duration,
    ) -> Result<(RawFtp, TcpStream)> {
        let name = "under-way.bin";
        random_file(&self.uploaded(name), size)?;
        let mut ftp = self.ftp_session(tunnel, timeout)?;
        let mut data = ftp.start_retr(&format!("{}/{name}", self.server.upload_dir()), timeout)?;
        let mut first = vec![0u8; 1 << 20];
        data.read_exact(&mut first)?;
        Ok((ftp, data))
    }

    /// Where a client reaches the server through `tunnel`'s first listener.
    pub fn target(&self, tunnel: &Tunnel) -> Target {
        let host = tunnel.first_host();
        self.target_at(&host, tunnel.port(), None)
    }

    /// Where a client reaches `host:port` (optionally from inside the namespace).
    pub fn target_at(&self, host: &str, port: u16, netns: Option<&str>) -> Target {
        Target {
            host: host.to_string(),
            port,
            user: self.server.user().to_string(),
            pass: self.server.pass().to_string(),
            dir: self.server.upload_dir().to_string(),
            netns: netns.map(str::to_string),
        }
    }

    /// The local path of an uploaded file named `name`.
    pub fn uploaded(&self, name: &str) -> std::path::PathBuf {
        self.server.upload_dir_local().join(name)
    }

    /// A scratch directory for the test's local files.
    pub fn scratch(&self) -> &Path {
        self.sshd.dir()
    }
}
